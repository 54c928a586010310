"""Evaluations of finished trials: cross-quality accuracy, adversarial attacks and JPEG as a defence.

An evaluation loads a finished trial's final weights and measures one number
on its test set; training is never repeated. Each evaluation is stored once,
under its own key, in the ``evaluations`` table of the same database, so
adding evaluations to a finished sweep computes only the missing ones, and a
sweep killed during evaluations resumes where it stopped.

The protocol (image trials, ``helmholtz sweep ... --eval-qualities ...
--attacks fgsm,pgd --eps 2,8 --attack-subset 64 --defense-qualities 20,50``):

clean, cross-quality
    The trial's test set compressed at each quality of ``--eval-qualities``
    (``none``: uncompressed; the preset ``cifar10-c`` stands for CIFAR-10-C's
    JPEG qualities 80, 65, 58, 50, 40), one accuracy each: with every training
    quality this is a train-quality x test-quality matrix per model.
attacks, threat model (a): the model alone
    FGSM and PGD (L-infinity; PGD 10 steps of eps/4 from a seeded random
    start) on the first ``--attack-subset`` test images compressed at the
    model's own training quality (``eval_quality`` = training quality).
attacks, threat model (b): JPEG as an input defence
    The attacker sees ``x -> JPEG_q(x) -> model`` and perturbs the
    *uncompressed* test images ``x`` (``eval_quality`` = none), through the
    exact codec with its straight-through gradient (BPDA), for each ``q`` of
    ``--defense-qualities`` (``defense_quality`` = q).

``eps`` is in units of 1/255; eps 0 is the clean accuracy of the same images
under the same threat model. The same ``--attack-subset`` images are attacked
for every model of a data set (its first N test images).

Audio trials are evaluated across bitrates (``--eval-bitrates``); attacks on
the spectrogram models are not run, and the sweep says so.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np

from .._ml.attacks import ATTACKS

__all__ = ["EVAL_PRESETS", "ATTACKS", "EvalPlan", "EvalRequest", "parse_eval_qualities", "parse_eps", "parse_attacks", "requests_for", "eval_key"]

#: Named sets of test-time qualities: CIFAR-10-C's JPEG corruption, severities 1-5.
EVAL_PRESETS: dict[str, tuple[int, ...]] = {"cifar10-c": (80, 65, 58, 50, 40)}


def parse_eval_qualities(text: str) -> tuple[int | None, ...]:
    """``"cifar10-c,none,10"`` -> ``(80, 65, 58, 50, 40, None, 10)`` (order kept, repeats dropped)."""
    out: list[int | None] = []
    for part in str(text).split(","):
        part = part.strip().lower()
        if not part:
            continue
        if part in EVAL_PRESETS:
            out += list(EVAL_PRESETS[part])
        elif part == "none":
            out.append(None)
        else:
            try:
                q = int(part)
            except ValueError:
                raise ValueError(f"--eval-qualities takes qualities 1..100, 'none' or a preset ({', '.join(EVAL_PRESETS)}); got {part!r}") from None
            if not 1 <= q <= 100:
                raise ValueError(f"--eval-qualities: quality must be in 1..100; got {q}")
            out.append(q)
    return tuple(dict.fromkeys(out))


def parse_eps(text: str) -> tuple[float, ...]:
    """``"2,8"`` -> ``(2.0, 8.0)``: L-infinity radii in units of 1/255, each in 0..255."""
    out = []
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        try:
            v = float(part)
        except ValueError:
            raise ValueError(f"--eps takes numbers in units of 1/255 (e.g. 2,8); got {part!r}") from None
        if not 0 <= v <= 255 or v != v:
            raise ValueError(f"--eps must be in 0..255 (units of 1/255); got {part}")
        out.append(v)
    return tuple(dict.fromkeys(out))


def parse_attacks(text: str) -> tuple[str, ...]:
    """``"fgsm,pgd"`` -> ``("fgsm", "pgd")``; unknown names are refused."""
    names = tuple(dict.fromkeys(p.strip().lower() for p in str(text).split(",") if p.strip()))
    unknown = [n for n in names if n not in ATTACKS]
    if unknown:
        raise ValueError(f"--attacks must be among {', '.join(ATTACKS)}; got {', '.join(unknown)}")
    return names


@dataclass(frozen=True)
class EvalRequest:
    """One evaluation of one trial.

    ``eval`` is ``"clean"``, ``"fgsm"`` or ``"pgd"``; ``eval_quality`` (or
    ``eval_bitrate`` for audio) is the test-time compression, None for none;
    ``eps`` is in 1/255; ``defense_quality`` is the JPEG defence of threat
    model (b), None otherwise; ``images`` is how many test images (None: all).
    """

    eval: str
    eval_quality: int | None = None
    eval_bitrate: float | None = None
    eps: float = 0.0
    defense_quality: int | None = None
    images: int | None = None
    seed: int = 0

    def key(self, trial_key: str) -> str:
        """The evaluation's unique key in the database."""
        def text(v: Any) -> str:
            return "none" if v is None else f"{v:g}" if isinstance(v, float) else str(v)

        level = f"q={text(self.eval_quality)}" if self.eval_bitrate is None else f"kbps={text(self.eval_bitrate)}"
        return (f"{trial_key}|eval={self.eval}|{level}|eps={text(self.eps)}|defense={text(self.defense_quality)}"
                f"|n={text(self.images)}|seed={self.seed}")


def eval_key(trial_key: str, request: EvalRequest) -> str:
    """:meth:`EvalRequest.key`, as a function."""
    return request.key(trial_key)


@dataclass(frozen=True)
class EvalPlan:
    """What to evaluate on every finished trial of a sweep (see the module docstring)."""

    eval_qualities: tuple = ()
    eval_bitrates: tuple = ()
    attacks: tuple = ()
    eps: tuple = ()
    attack_subset: int | None = None
    defense_qualities: tuple = ()
    seed: int = 0

    def __post_init__(self) -> None:
        if self.attacks and not self.eps:
            raise ValueError("--attacks needs --eps (radii in units of 1/255, e.g. --eps 2,8)")
        if self.eps and not self.attacks:
            raise ValueError("--eps needs --attacks (fgsm, pgd)")
        if self.defense_qualities and not self.attacks:
            raise ValueError("--defense-qualities needs --attacks (the defence is evaluated under attack)")
        if self.attack_subset is not None and (isinstance(self.attack_subset, bool) or not isinstance(self.attack_subset, int) or self.attack_subset < 1):
            raise ValueError(f"--attack-subset must be an int >= 1; got {self.attack_subset!r}")
        for q in self.defense_qualities:
            if not isinstance(q, int) or not 1 <= q <= 100:
                raise ValueError(f"--defense-qualities must be qualities in 1..100; got {q!r}")

    @property
    def empty(self) -> bool:
        return not (self.eval_qualities or self.eval_bitrates or self.attacks)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict | None) -> "EvalPlan":
        if not d:
            return cls()
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


def requests_for(plan: EvalPlan, level: str, training_level: Any) -> tuple[list[EvalRequest], list[str]]:
    """The evaluations ``plan`` asks of a trial trained at ``training_level``, and notes on what is skipped.

    ``level`` is the runner's (``"quality"`` for images, ``"bitrate"`` for audio).
    """
    out: list[EvalRequest] = []
    notes: list[str] = []
    if level == "quality":
        for q in plan.eval_qualities:
            out.append(EvalRequest("clean", eval_quality=q, seed=plan.seed))
        for name in plan.attacks:
            for eps in plan.eps:
                out.append(EvalRequest(name, eval_quality=training_level, eps=float(eps), images=plan.attack_subset, seed=plan.seed))
                for dq in plan.defense_qualities:
                    out.append(EvalRequest(name, eval_quality=None, eps=float(eps), defense_quality=dq, images=plan.attack_subset, seed=plan.seed))
        if plan.eval_bitrates:
            notes.append("--eval-bitrates applies to audio trials; image trials take --eval-qualities")
    else:
        for b in plan.eval_bitrates:
            out.append(EvalRequest("clean", eval_bitrate=None if b is None else float(b), seed=plan.seed))
        if plan.attacks:
            notes.append("attacks on spectrogram models are not run: skipped for audio trials (cross-bitrate evaluations are)")
        if plan.eval_qualities:
            notes.append("--eval-qualities applies to image trials; audio trials take --eval-bitrates")
    return out, notes


def check_attack_subset(plan: EvalPlan, test_images: int, dataset: str) -> None:
    """Refuse, before any work, an attack subset larger than the test set."""
    if plan.attacks and plan.attack_subset is not None and plan.attack_subset > test_images:
        raise ValueError(f"--attack-subset {plan.attack_subset} is larger than the test set of {dataset} ({test_images} images)")


__all__.append("check_attack_subset")


def as_record(trial_key: str, request: EvalRequest, accuracy: float, images: int, seconds: float, extra: dict | None = None) -> dict:
    """The database row of one finished evaluation."""
    return {
        "key": request.key(trial_key),
        "trial_key": trial_key,
        "eval": request.eval,
        "eval_quality": request.eval_quality,
        "eval_bitrate": request.eval_bitrate,
        "eps": float(request.eps),
        "defense_quality": request.defense_quality,
        "accuracy": float(accuracy),
        "images": int(images),
        "seed": int(request.seed),
        "wall_time_s": float(seconds),
        "extra": extra or None,
    }


__all__.append("as_record")
