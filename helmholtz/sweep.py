"""``helmholtz sweep``: the Helmholtz experiment, resumable, on CPU, GPU or a Ray cluster.

A sweep is the product models x compression levels x seeds on one data set.
Each trial compresses the train and test sets at its level with the codec on
the training device, trains a model from scratch with a recipe, evaluates it
on the test set after every epoch, and writes one row to the results
database (:mod:`helmholtz.store`) in one transaction when it ends. Finished
trials are skipped when the same command runs again.

Trials dispatch on the data set's ``kind`` through :data:`TRIAL_RUNNERS`:
``"image"`` (JPEG at a quality) is built in; an audio data set registers its
own runner (compression at a bitrate) with :func:`register_runner` and a
:class:`helmholtz.data.DatasetSpec` of that kind. The audio data sets
``fsdd`` and ``audio-folder`` (MP3 at a bitrate, :mod:`helmholtz.audio_sweep`)
register themselves the first time the sweep looks one of them up; the
bitrate ``pcm`` (``bitrate=None``) is the uncompressed 16-bit baseline.

Heavy imports (torch, tqdm, ray) happen when a sweep runs.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from . import data as _data
from ._version import __version__

__all__ = [
    "TrialSpec",
    "Recipe",
    "RECIPES",
    "TrialRunner",
    "TRIAL_RUNNERS",
    "register_runner",
    "plan_trials",
    "run_trial",
    "run_sweep",
    "convergence_epoch",
    "register",
    "main",
    "cli",
    "run_args",
    "SweepResult",
    "load_trial_data",
    "DEFAULT_QUALITIES",
]

DEFAULT_QUALITIES = (1, 5, 10, 15, 20, 25, 50, 75, 100)


# ------------------------------------------------------------------------------------ trials
@dataclass(frozen=True)
class TrialSpec:
    """One trial: what to train on what, identified by :meth:`key`.

    ``quality`` (JPEG 1..100) or ``bitrate`` (kbps) is the compression level;
    ``train_subset`` / ``test_subset`` of None mean the whole split.
    """

    dataset: str
    model: str
    quality: int | None
    seed: int
    recipe: str
    epochs: int
    train_subset: int | None = None
    test_subset: int | None = None
    bitrate: float | None = None

    @property
    def level(self) -> int | float | None:
        """The compression level: the quality, else the bitrate (None: uncompressed PCM audio)."""
        return self.quality if self.quality is not None else self.bitrate

    def _level_text(self, sep: str) -> str:
        if self.quality is not None:
            return f"q={self.quality}"
        if self.bitrate is None:
            return "pcm"
        return f"kbps={self.bitrate:g}" if sep == "=" else f"{self.bitrate:g} kbps"

    def key(self) -> str:
        """The unique key of this trial in the results database."""
        level = self._level_text("=")
        sub = lambda v: "all" if v is None else str(v)  # noqa: E731
        return (
            f"{self.dataset}|{self.model}|{level}|seed={self.seed}|{self.recipe}|epochs={self.epochs}"
            f"|train={sub(self.train_subset)}|test={sub(self.test_subset)}"
        )

    def label(self) -> str:
        level = self._level_text(" ")
        return f"{self.model} {level} seed={self.seed}"


def convergence_epoch(accuracy: Sequence[float], window: int = 10, ratio: float = 0.99) -> int | None:
    """The authors' convergence epoch, counted from 1.

    The first epoch ``i`` (0-based) with ``mean(acc[i:i+window]) > ratio * max(acc)``;
    returned as ``i + 1``. Near the end the window is shorter, as in the
    authors' slicing. None for an empty curve.
    """
    acc = np.asarray(accuracy, dtype=float)
    if acc.size == 0:
        return None
    target = ratio * acc.max()
    for i in range(acc.size):
        if acc[i : i + window].mean() > target:
            return i + 1
    return int(acc.size)  # only reached if every window mean is <= target (e.g. all zeros)


# ----------------------------------------------------------------------------------- recipes
@dataclass(frozen=True)
class Recipe:
    """A training recipe.

    Attributes
    ----------
    name : str
    batch_size : int
    default_epochs : int
    shift : float
        Random shift as a fraction of the size (Keras' shift ranges).
    flip : bool
        Random horizontal flips.
    label_smoothing : float
    mixed_precision : bool
        bf16 autocast on CUDA.
    channels_last : bool
        Channels-last memory format on CUDA.
    make_optimizer : callable
        ``(model, steps_per_epoch, epochs) -> (optimizer, per-step scheduler or None)``.
    """

    name: str
    batch_size: int
    default_epochs: int
    make_optimizer: Callable[[Any, int, int], tuple[Any, Any]]
    shift: float = 0.1
    flip: bool = True
    label_smoothing: float = 0.0
    mixed_precision: bool = False
    channels_last: bool = False
    description: str = ""
    small_batch_size: int | None = None
    small_data: int = 10_000

    def batch_for(self, train_images: int) -> int:
        """The batch size for a training set of ``train_images`` (smaller sets may take smaller batches)."""
        if self.small_batch_size is not None and train_images < self.small_data:
            return self.small_batch_size
        return self.batch_size


def _paper_optimizer(model, steps_per_epoch, epochs):
    """Keras 2.1.5 SGD(lr=0.01, decay=1e-6, momentum=0.9, nesterov=True): lr / (1 + decay * iterations)."""
    import torch

    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda it: 1.0 / (1.0 + 1e-6 * it))
    return opt, sched


def _fast_optimizer(model, steps_per_epoch, epochs):
    """One-cycle AdamW (peak lr 2e-3, decoupled weight decay 0.05 on weights, not biases).

    Adam-type updates suit these networks, which have no normalisation layers,
    better than high-lr SGD in a short schedule.
    """
    import torch

    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.0}], lr=2e-3)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _one_cycle(max(1, steps_per_epoch * epochs)))
    return opt, sched


def _one_cycle(total: int, warmup: float = 0.25, start: float = 0.1, end: float = 0.01) -> Callable[[int], float]:
    """lr factor per step: linear warm-up from ``start`` to 1, then cosine down to ``end`` (any ``total`` >= 1)."""
    warm = max(1, int(round(warmup * total)))

    def factor(t: int) -> float:
        if t < warm:
            return start + (1 - start) * t / warm
        frac = min(1.0, (t - warm) / max(1, total - warm))
        return end + (1 - end) * 0.5 * (1 + math.cos(math.pi * frac))

    return factor


RECIPES: dict[str, Recipe] = {
    "paper": Recipe(
        "paper",
        batch_size=128,
        default_epochs=200,
        make_optimizer=_paper_optimizer,
        description="the authors' protocol: SGD lr 0.01, Nesterov momentum 0.9, time decay 1e-6, batch 128, shifts 0.1 + flips, 200 epochs",
    ),
    "fast": Recipe(
        "fast",
        batch_size=128,
        default_epochs=30,
        make_optimizer=_fast_optimizer,
        label_smoothing=0.1,
        mixed_precision=True,
        channels_last=True,
        small_batch_size=64,
        description="one-cycle AdamW (peak lr 2e-3, wd 0.05), label smoothing 0.1, batch 128 (64 below 10,000 training images), "
        "shifts + flips, bf16 + channels-last on GPU, 30 epochs",
    ),
}


def _get_recipe(name: Any) -> Recipe:
    if name not in RECIPES:
        raise ValueError(f"recipe must be one of {', '.join(RECIPES)}; got {name!r}")
    return RECIPES[name]


# ------------------------------------------------------------------------------------ runners
@dataclass(frozen=True)
class TrialRunner:
    """How trials of one data-set kind compress, measure and train.

    Attributes
    ----------
    check_model : callable
        ``name -> canonical name``; raises ValueError for unknown models.
    check_level : callable
        ``level -> level``; raises ValueError for an out-of-range level.
    compress : callable
        ``(dataset, levels, device) -> {level: (train, test)}``: the
        compressed splits, all levels from one forward transform where the
        codec allows, on ``device``.
    rate : callable
        ``(dataset, levels) -> {level: {column: value}}``, e.g. ``{"bpp": 0.9}``;
        values may be None when they cannot be measured yet.
    train : callable
        ``(spec, dataset, compressed_train, compressed_test, device, progress) -> dict``
        of result columns.
    level : str
        ``"quality"`` or ``"bitrate"``: which column holds the level.
    can_measure : callable
        ``() -> bool``: whether ``rate`` can measure now; when it can, a
        rerun fills rates that finished trials lack.
    """

    check_model: Callable[[str], str]
    check_level: Callable[[Any], Any]
    compress: Callable[..., dict]
    rate: Callable[..., dict]
    train: Callable[..., dict]
    level: str = "quality"
    can_measure: Callable[[], bool] = lambda: True


TRIAL_RUNNERS: dict[str, TrialRunner] = {}


def register_runner(kind: str, runner: TrialRunner) -> None:
    """Make data sets of ``kind`` (see :class:`helmholtz.data.DatasetSpec`) runnable."""
    if not isinstance(runner, TrialRunner):
        raise TypeError(f"runner must be a TrialRunner; got {type(runner).__name__}")
    TRIAL_RUNNERS[kind] = runner


def _image_check_model(name: str) -> str:
    from .models import _check_name

    return _check_name(name)


def _image_check_level(q: Any) -> int:
    if isinstance(q, bool) or not isinstance(q, (int, np.integer)):
        raise TypeError(f"quality must be an int in 1..100; got {q!r}")
    if not 1 <= q <= 100:
        raise ValueError(f"quality must be in 1..100; got {q}")
    return int(q)


def _image_compress(ds: _data.Dataset, qualities: Sequence[int], device: str) -> dict:
    """Both splits at every quality, one forward transform (one codec call) for all of them."""
    import torch

    from .transforms import compress_many

    both = np.concatenate([ds.x_train, ds.x_test])
    out = compress_many(both, list(qualities), device=device)  # (Q, N, H, W, C) on device
    n = len(ds.x_train)
    return {int(q): (out[k, :n], out[k, n:]) for k, q in enumerate(qualities)} if isinstance(out, torch.Tensor) else {}


def _image_rate(ds: _data.Dataset, qualities: Sequence[int]) -> dict:
    """bits per pixel of the training set's entropy-coded scans, when ``jpeg.bits_many`` exists."""
    from . import jpeg

    qualities = [int(q) for q in qualities]
    if not hasattr(jpeg, "bits_many") or not qualities:
        return {q: {"bpp": None} for q in qualities}
    x = ds.x_train
    bits = np.asarray(jpeg.bits_many(x, qualities, subsampling="4:2:0"), dtype=np.int64)
    pixels = x.shape[0] * x.shape[1] * x.shape[2]
    return {q: {"bpp": float(bits[k].sum()) / pixels} for k, q in enumerate(qualities)}


def _progress_bar(total: int, desc: str, progress: bool | None, leave: bool, position: int):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=(None if progress is None else not progress), leave=leave, position=position, dynamic_ncols=True, file=sys.stderr)


def _image_train(spec: TrialSpec, ds: _data.Dataset, x_train: Any, x_test: Any, device: str, progress: bool | None) -> dict:
    """Train ``spec.model`` on the compressed splits; evaluate on the test set after every epoch."""
    import torch
    from torch.nn import functional as F

    from .models import cifar_model, count_parameters
    from .transforms import DeviceDataset, to_float_nchw

    recipe = _get_recipe(spec.recipe)
    dev = torch.device(device)
    cuda = dev.type == "cuda"
    torch.manual_seed(spec.seed)
    np.random.seed(spec.seed % 2**32)
    h, w, c = ds.image_shape
    model = cifar_model(spec.model, in_channels=c, num_classes=ds.num_classes, image_size=(h, w)).to(dev)
    channels_last = cuda and recipe.channels_last
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    params = count_parameters(model)
    train = DeviceDataset(
        x_train, ds.y_train, recipe.batch_for(len(ds.y_train)), device=dev, shuffle=True, shift=recipe.shift, flip=recipe.flip,
        channels_last=channels_last, seed=spec.seed,
    )
    x_eval = torch.as_tensor(x_test).to(dev)
    y_eval = torch.as_tensor(ds.y_test).to(dev)
    opt, sched = recipe.make_optimizer(model, len(train), spec.epochs)
    autocast = torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=cuda and recipe.mixed_precision)
    accuracy, losses = [], []
    train_time = 0.0
    bar = _progress_bar(spec.epochs, f"  {spec.label()}", progress, leave=False, position=1)
    try:
        for _epoch in range(spec.epochs):
            model.train()
            t0 = time.perf_counter()
            total_loss, seen = 0.0, 0
            for xb, yb in train:
                with autocast:
                    logits = model(xb)
                loss = F.cross_entropy(logits.float(), yb, label_smoothing=recipe.label_smoothing)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                if sched is not None:
                    sched.step()
                total_loss += float(loss.detach()) * len(yb)
                seen += len(yb)
            if cuda:
                torch.cuda.synchronize(dev)
            train_time += time.perf_counter() - t0
            if not math.isfinite(total_loss):
                raise FloatingPointError(f"{spec.label()}: the training loss diverged (non-finite)")
            model.eval()
            correct = 0
            with torch.no_grad(), autocast:
                for start in range(0, len(y_eval), 1000):
                    xb = to_float_nchw(x_eval[start : start + 1000], channels_last)
                    correct += int((model(xb).argmax(1) == y_eval[start : start + 1000]).sum())
            accuracy.append(correct / max(1, len(y_eval)))
            losses.append(total_loss / max(1, seen))
            bar.set_postfix(loss=f"{losses[-1]:.3f}", acc=f"{accuracy[-1]:.3f}")
            bar.update(1)
    finally:
        bar.close()
    best = int(np.argmax(accuracy))
    return {
        "params": params,
        "test_accuracy": accuracy[-1],
        "best_test_accuracy": accuracy[best],
        "best_epoch": best + 1,
        "convergence_epoch": convergence_epoch(accuracy),
        "accuracy_curve": accuracy,
        "loss_curve": losses,
        "train_images": int(len(ds.y_train)),
        "test_images": int(len(ds.y_test)),
        "pixels_per_image": int(h * w),
        "train_time_s": train_time,
        "images_per_s": len(ds.y_train) * spec.epochs / train_time if train_time > 0 else None,
    }


def _image_can_measure() -> bool:
    from . import jpeg

    return hasattr(jpeg, "bits_many")


register_runner(
    "image",
    TrialRunner(_image_check_model, _image_check_level, _image_compress, _image_rate, _image_train, "quality", _image_can_measure),
)


# ------------------------------------------------------------------------------ data loading
_DATA_CACHE: dict[tuple, _data.Dataset] = {}


def load_trial_data(dataset: str, data_dir: str | None, train_subset: int | None, test_subset: int | None, download: bool = False):
    """The (subset of the) data set a trial trains on; cached per process."""
    spec = _get_spec(dataset)
    root = str(_data.resolve_data_dir(data_dir)) if not download else data_dir
    key = (dataset, root, train_subset, test_subset)
    if key not in _DATA_CACHE:
        full = spec.loader(root, download=True) if download else spec.loader(root)
        _DATA_CACHE.clear()  # hold one data set at a time
        _DATA_CACHE[key] = full.subset(train_subset, test_subset) if (train_subset or test_subset) else full
    return _DATA_CACHE[key]


#: Data sets :mod:`helmholtz.audio_sweep` registers; looked up lazily so that torch is not imported early.
_AUDIO_DATASETS = ("fsdd", "audio-folder")


def _ensure_audio(dataset: Any = None, kind: Any = None) -> None:
    """Register the audio data sets and runner (:func:`helmholtz.audio_sweep.register_with_sweep`) when needed.

    Called with the data set name before looking it up, and with the kind of a
    data set before looking up its runner; does nothing for anything else or
    when the registration is already there.
    """
    if dataset in _AUDIO_DATASETS and dataset not in _data.DATASETS:
        from . import audio_sweep

        audio_sweep.register_with_sweep()
    elif kind == "audio" and "audio" not in TRIAL_RUNNERS:
        from . import audio_sweep

        register_runner("audio", audio_sweep.make_trial_runner())


def _get_spec(dataset: Any) -> _data.DatasetSpec:
    """:func:`helmholtz.data.get_spec`, registering the audio data sets on first use."""
    _ensure_audio(dataset=dataset)
    return _data.get_spec(dataset)


def _runner_for(dataset: str) -> TrialRunner:
    kind = _get_spec(dataset).kind
    _ensure_audio(kind=kind)
    if kind not in TRIAL_RUNNERS:
        raise ValueError(f"dataset {dataset!r} is of kind {kind!r}, for which no trial runner is registered")
    return TRIAL_RUNNERS[kind]


def _environment(device: str) -> dict:
    import torch

    dev = device
    if device.startswith("cuda") and torch.cuda.is_available():
        dev = f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    return {"device": dev, "host": platform.node(), "helmholtz_version": __version__, "torch_version": torch.__version__}


def run_trial(
    spec: TrialSpec,
    dataset: _data.Dataset,
    *,
    device: str = "cpu",
    compressed: tuple[Any, Any] | None = None,
    rate: dict | None = None,
    progress: bool | None = None,
) -> dict:
    """Run one trial and return its database record (nothing is written here).

    Parameters
    ----------
    spec : TrialSpec
    dataset : Dataset
        The (subset) data the trial uses, uncompressed.
    device : str
        ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    compressed : (train, test), optional
        The splits already compressed at ``spec.level`` (the local executor
        compresses all levels at once); computed here when missing.
    rate : dict, optional
        Measured rate columns (``bpp`` ...); computed here when missing.
    """
    runner = _runner_for(spec.dataset)
    t0 = time.perf_counter()
    if compressed is None:
        compressed = runner.compress(dataset, [spec.level], device)[spec.level]
    if rate is None:
        rate = runner.rate(dataset, [spec.level])[spec.level]
    result = runner.train(spec, dataset, compressed[0], compressed[1], device, progress)
    record = {k: v for k, v in asdict(spec).items()}
    record.update(key=spec.key(), **rate, **result, **_environment(device))
    record["wall_time_s"] = time.perf_counter() - t0
    return record


def plan_trials(
    dataset: str,
    models: Sequence[str],
    levels: Sequence[Any],
    seeds: Sequence[int],
    recipe: str,
    epochs: int,
    train_subset: int | None = None,
    test_subset: int | None = None,
) -> list[TrialSpec]:
    """Validate the sweep's axes and return its trials (models, then levels, then seeds).

    Raises
    ------
    ValueError, TypeError
        For an unknown data set, model or recipe, a level out of range, or
        bad epochs, seeds or subset sizes.
    """
    runner = _runner_for(dataset)
    _get_recipe(recipe)
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be an int >= 1; got {epochs!r}")
    for name, v in (("train_subset", train_subset), ("test_subset", test_subset)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise ValueError(f"{name} must be an int >= 1; got {v!r}")
    if not models or not levels or not seeds:
        raise ValueError("models, qualities (or bitrates) and seeds must each be non-empty")
    canon_models = list(dict.fromkeys(runner.check_model(m) for m in models))
    canon_levels = list(dict.fromkeys(runner.check_level(q) for q in levels))
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 0:
            raise ValueError(f"seeds must be ints >= 0; got {s!r}")
    out = []
    for m in canon_models:
        for q in canon_levels:
            for s in dict.fromkeys(int(s) for s in seeds):
                lv = {"quality": q, "bitrate": None} if runner.level == "quality" else {"quality": None, "bitrate": None if q is None else float(q)}
                out.append(TrialSpec(dataset, m, seed=s, recipe=recipe, epochs=epochs, train_subset=train_subset, test_subset=test_subset, **lv))
    return out


@dataclass
class SweepResult:
    """What a sweep did: trials planned, skipped as finished, run now; whether it was interrupted."""

    planned: int = 0
    skipped: int = 0
    ran: int = 0
    interrupted: bool = False
    failed: list = field(default_factory=list)


def _fill_missing_rates(store, pending_specs, done_specs, runner, ds) -> dict:
    """Rates for pending levels, plus NULL rates of finished trials filled in (e.g. bpp once measurable)."""
    levels = list(dict.fromkeys([s.level for s in pending_specs] + [s.level for s in done_specs]))  # None (pcm) does not sort
    rates = runner.rate(ds, levels) if levels else {}
    for s in done_specs:
        values = rates.get(s.level, {})
        if any(v is not None for v in values.values()):
            store.fill(s.key(), **values)
    return rates


def _check_device(device: str) -> str:
    if not isinstance(device, str) or not (device == "cpu" or device == "cuda" or device.startswith("cuda:")):
        raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N'; got {device!r}")
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise ValueError("device 'cuda' was asked for but torch sees no CUDA GPU; use --device cpu")
    return device


def run_sweep(
    specs: Sequence[TrialSpec],
    out: str | os.PathLike,
    *,
    data_dir: str | None = None,
    device: str = "cpu",
    executor: str = "local",
    ray_address: str | None = None,
    ray_num_cpus: int | None = None,
    progress: bool | None = None,
    download: bool = False,
    log: Callable[[str], None] | None = None,
) -> SweepResult:
    """Run the trials of ``specs`` that are not yet in ``out``'s database.

    Ctrl-C stops after closing the database cleanly: the trial that was
    running is not recorded, and ``result.interrupted`` is set.
    """
    from .store import ResultStore

    if executor not in ("local", "ray"):
        raise ValueError(f"executor must be 'local' or 'ray'; got {executor!r}")
    device = _check_device(device)
    log = log or _stderr
    result = SweepResult(planned=len(specs))
    with ResultStore(out) as store:
        done = store.finished_keys()
        pending = [s for s in specs if s.key() not in done]
        result.skipped = len(specs) - len(pending)
        if result.skipped:
            log(f"{result.skipped} of {len(specs)} trials already finished in {store.path}; skipping them")
        if executor == "ray":
            from ._ray import run_trials_ray

            if pending:
                run_trials_ray(pending, store, result, data_dir=data_dir, device=device, address=ray_address, num_cpus=ray_num_cpus, progress=progress, log=log)
            return result
        groups: dict[tuple, list[TrialSpec]] = {}
        for s in specs:
            groups.setdefault((s.dataset, s.train_subset, s.test_subset), []).append(s)
        bar = _progress_bar(len(specs), "sweep", progress, leave=True, position=0)
        bar.update(result.skipped)
        try:
            for (dataset, tr, te), group in groups.items():
                todo = [s for s in group if s.key() not in done]
                finished = [s for s in group if s.key() in done]
                runner = _runner_for(dataset)
                need_rate = [s for s in finished if _missing_rate(store, s)] if runner.can_measure() else []
                if not todo and not need_rate:
                    continue
                ds = load_trial_data(dataset, data_dir, tr, te, download)
                rates = _fill_missing_rates(store, todo, need_rate, runner, ds)
                if not todo:
                    continue
                levels = list(dict.fromkeys(s.level for s in todo))
                t0 = time.perf_counter()
                compressed = runner.compress(ds, levels, device)
                share = (time.perf_counter() - t0) / len(levels)  # compression time per level, added to its trials
                for s in todo:
                    record = run_trial(s, ds, device=device, compressed=compressed[s.level], rate=rates.get(s.level), progress=progress)
                    record["wall_time_s"] += share
                    store.add(record)
                    result.ran += 1
                    bar.update(1)
                    bar.write(_summary_line(record), file=sys.stderr)
                del compressed
        except KeyboardInterrupt:
            result.interrupted = True
        finally:
            bar.close()
    return result


def _missing_rate(store, spec: TrialSpec) -> bool:
    row = store._conn.execute("SELECT bpp, bits_per_second FROM trials WHERE key = ?", (spec.key(),)).fetchone()
    return row is not None and row[0] is None and row[1] is None


def _summary_line(r: dict) -> str:
    if r.get("quality") is not None:
        level = f"q={r['quality']}"
        rate = f"{r['bpp']:.3f} bpp" if r.get("bpp") is not None else "bpp n/a"
        speed = f"{r.get('images_per_s') or 0:.0f} img/s"
    else:
        level = "pcm" if r.get("bitrate") is None else f"{r['bitrate']:g} kbps"
        rate = f"{r['bits_per_second']:,.0f} bits/s" if r.get("bits_per_second") is not None else "bits/s n/a"
        speed = f"{r.get('train_images') or 0} clips"
    return (
        f"{r['model']} {level} seed={r['seed']}: test acc {r['test_accuracy']:.4f} (best {r['best_test_accuracy']:.4f}), "
        f"{rate}, converged at epoch {r['convergence_epoch']}, {r['wall_time_s']:.1f} s, {speed}"
    )


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------- the CLI
def _int_list(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers; got {text!r}") from None


def _bitrate_list(text: str) -> list[float | None]:
    """``"pcm,8,16"`` -> ``[None, 8.0, 16.0]``: kbps, with ``pcm`` for the uncompressed baseline."""
    out: list[float | None] = []
    for v in text.split(","):
        v = v.strip()
        if not v:
            continue
        if v.lower() == "pcm":
            out.append(None)
            continue
        try:
            out.append(float(v))
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated bitrates in kbps (or pcm); got {text!r}") from None
    return out


def _name_list(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``sweep`` sub-command to the ``helmholtz`` parser."""
    p = subparsers.add_parser(
        "sweep",
        help="train models on data compressed at several levels (resumable)",
        description="Train each model at each compression level and seed; results go to OUT/results.sqlite. "
        "Running the same command again skips finished trials.",
    )
    names = sorted(set(_data.DATASETS) | set(_AUDIO_DATASETS))
    p.add_argument("--dataset", default="cifar10", help=f"data set: one of {', '.join(names)} (default cifar10)")
    p.add_argument("--data-dir", default=None, help="data folder (default: $HELMHOLTZ_DATA)")
    p.add_argument("--download", action="store_true", help="download the data set into --data-dir if missing (checksummed)")
    p.add_argument("--models", type=_name_list, default=["A"], help="comma-separated models, e.g. A,C,F, or audio models such as conv3 (default A)")
    p.add_argument("--qualities", type=_int_list, default=None, help=f"JPEG qualities 1..100 (default {','.join(map(str, DEFAULT_QUALITIES))})")
    p.add_argument("--bitrates", type=_bitrate_list, default=None, help="MP3 bitrates in kbps for audio data sets, e.g. 8,16,32,64,96,128; pcm = uncompressed baseline")
    p.add_argument("--epochs", type=int, default=None, help="epochs per trial (default: the recipe's, paper 200, fast 30)")
    p.add_argument("--seeds", type=_int_list, default=[0], help="comma-separated seeds (default 0)")
    p.add_argument("--recipe", choices=sorted(RECIPES), default="paper", help="training recipe (default paper)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    p.add_argument("--train-subset", type=int, default=None, metavar="N", help="use N training images (a fixed random subset)")
    p.add_argument("--test-subset", type=int, default=None, metavar="N", help="use N test images (a fixed random subset)")
    p.add_argument("--executor", choices=("local", "ray"), default="local", help="run trials here, or as Ray tasks (pip install helmholtz[ray])")
    p.add_argument("--ray-address", default=None, help="Ray cluster address (default: start a local Ray instance)")
    p.add_argument("--ray-num-cpus", type=int, default=None, help="CPUs of the local Ray instance (default: all)")
    bars = p.add_mutually_exclusive_group()
    bars.add_argument("--progress", dest="progress", action="store_true", default=None, help="always show progress bars")
    bars.add_argument("--no-progress", dest="progress", action="store_false", help="never show progress bars")
    p.add_argument("--out", required=True, help="output folder; the database is OUT/results.sqlite")
    p.set_defaults(func=main)
    return p


def main(args: argparse.Namespace) -> int:
    """Run ``helmholtz sweep`` from parsed arguments; returns the exit status."""
    spec = _get_spec(args.dataset)
    runner = _runner_for(args.dataset)
    if runner.level == "quality":
        if args.bitrates is not None:
            raise ValueError(f"--bitrates applies to audio data sets; {args.dataset} is compressed by JPEG quality (use --qualities)")
        levels = args.qualities if args.qualities is not None else list(DEFAULT_QUALITIES)
    else:
        if args.qualities is not None:
            raise ValueError(f"--qualities applies to image data sets; {args.dataset} is compressed at bitrates (use --bitrates)")
        if not args.bitrates:
            raise ValueError(f"{args.dataset} needs --bitrates (kbps, e.g. --bitrates 8,16,32,64,96,128)")
        levels = args.bitrates
    recipe = _get_recipe(args.recipe)
    epochs = args.epochs if args.epochs is not None else recipe.default_epochs
    specs = plan_trials(spec.name, args.models, levels, args.seeds, recipe.name, epochs, args.train_subset, args.test_subset)
    if args.data_dir is None and not os.environ.get("HELMHOLTZ_DATA") and not args.download:
        raise ValueError("no data folder: pass --data-dir DIR or set HELMHOLTZ_DATA")
    if args.download and not args.data_dir:
        raise ValueError("--download needs --data-dir")
    if args.download and spec.name not in ("cifar10", "mnist"):
        raise ValueError(f"--download works for cifar10 and mnist, not {spec.name}")
    t0 = time.perf_counter()
    res = run_sweep(
        specs, args.out, data_dir=args.data_dir, device=args.device, executor=args.executor,
        ray_address=args.ray_address, ray_num_cpus=args.ray_num_cpus, progress=args.progress, download=args.download,
    )
    from .store import db_path

    took = time.perf_counter() - t0
    msg = f"{res.ran} trial(s) run, {res.skipped} already done, of {res.planned} in {took:.1f} s; results in {db_path(args.out)}"
    if res.interrupted:
        print(f"interrupted: {msg}. Run the same command again to resume.", file=sys.stderr)
        return 130
    print(msg)
    if res.failed:
        for key, why in res.failed:
            print(f"failed: {key}: {why}", file=sys.stderr)
        return 1
    print(f"see them with: helmholtz report {args.out}")
    return 0


def cli(argv: Sequence[str] | None = None) -> int:
    """``helmholtz sweep`` on its own (``argv`` without the sub-command name)."""
    parser = argparse.ArgumentParser(prog="helmholtz")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["sweep", *(sys.argv[1:] if argv is None else argv)])
    return run_args(args)


def run_args(args: argparse.Namespace) -> int:
    """Call ``args.func`` the way :func:`helmholtz.cli.main` does (errors -> status 2, Ctrl-C -> 130)."""
    from .cli import run_args as _run_args

    return _run_args(args)
