"""The Helmholtz experiment as a sweep: models x compression levels x seeds, resumable, on one machine or Ray.

Each trial compresses the train and test sets at its level with the exact
codec on the training device, trains a model from scratch with a recipe,
tests it after every epoch, and writes one row (with its fingerprints and a
pointer to its final weights) to the results database
(:mod:`helmholtz.experiments.store`) when it ends. Finished trials are skipped
when the same sweep runs again; trials are claimed with leases, so sweeps
started together on one output folder share the work instead of repeating it.

Trials dispatch on the data set's kind through the registry of trial runners
(:mod:`helmholtz.experiments.runners`): ``image`` (JPEG at a quality) and
``audio`` (MP3 at a bitrate, ``pcm`` for the uncompressed baseline).
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from .._extras import check_extras
from ..data import get_spec
from .progress import log_stderr
from .recipes import get_audio_recipe, get_recipe
from .runners import runner_for
from .spec import TrialSpec
from .evaluate import EvalPlan, check_attack_subset, requests_for
from .local import WorkerReport, run_local
from .store import INT64_MAX, ResultStore, check_output_folder, db_path
from .trial import DataCache, check_source, load_trial_data, parse_image_size_fit

__all__ = ["DEFAULT_QUALITIES", "EXECUTORS", "EvalPlan", "SweepResult", "plan_trials", "run_sweep", "check_device"]

#: The qualities of the authors' sweep.
DEFAULT_QUALITIES = (1, 5, 10, 15, 20, 25, 50, 75, 100)
EXECUTORS = ("local", "ray")


def _positive_int(value: Any, name: str, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an int >= 1{' or None' if allow_none else ''}; got {value!r}")
    if value > INT64_MAX:
        raise ValueError(f"{name} must be at most 2**63-1, the largest int the results database holds; got {value!r}")
    return int(value)


def _axis(values: Any, name: str) -> list:
    """A sweep axis as a list: a sequence (not a string or a lone number), non-empty."""
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise TypeError(f"{name} must be a sequence (list or tuple); got {type(values).__name__} {values!r}")
    values = list(values)
    if not values:
        raise ValueError(f"{name} must not be empty")
    return values


def _once(canonical: list, given: list, name: str, what: str) -> list:
    """``canonical`` if no value repeats; else a ValueError naming the repeated value (a sweep never drops one silently)."""
    seen: dict = {}
    for value, raw in zip(canonical, given):
        if value in seen:
            also = "" if raw == seen[value] else f" (given as {seen[value]!r} and {raw!r})"
            raise ValueError(f"{name} repeats {what} {value!r}{also}; give each once")
        seen[value] = raw
    return canonical


def _check_seed(seed: Any, name: str = "seeds") -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed <= INT64_MAX:
        raise ValueError(f"{name} must be ints in 0..2**63-1 (what the results database holds); got {seed!r}")
    return int(seed)


def plan_trials(
    dataset: str,
    models: Sequence[str],
    levels: Sequence[Any],
    seeds: Sequence[int],
    recipe: str,
    epochs: int,
    train_subset: int | None = None,
    test_subset: int | None = None,
    image_size: str | None = None,
) -> list[TrialSpec]:
    """Validate the sweep's axes and return its trials (models, then levels, then seeds).

    Raises
    ------
    ValueError, TypeError
        For an unknown data set, model or recipe, a level out of range, a
        model, level or seed given twice, seeds beyond 64 bits, or bad
        epochs or subset sizes. Nothing is silently dropped or converted
        (a bool is never a number).
    """
    runner = runner_for(dataset)
    (get_recipe if runner.level == "quality" else get_audio_recipe)(recipe)
    _positive_int(epochs, "epochs")
    train_subset = _positive_int(train_subset, "train_subset", allow_none=True)
    test_subset = _positive_int(test_subset, "test_subset", allow_none=True)
    if image_size is not None:
        (h, w), fit = parse_image_size_fit(image_size)
        if not get_spec(dataset).resizable:
            raise ValueError(f"--image-size applies to image folders and photo data sets (folder, imagenet, ...); {dataset} has one size already")
        image_size = f"{h}x{w}" + ("" if fit == "crop" else f":{fit}")
    models, levels, seeds = _axis(models, "models"), _axis(levels, "levels"), _axis(seeds, "seeds")
    canon_models = _once([runner.check_model(m) for m in models], models, "models", "model")
    canon_levels = _once([runner.check_level(q) for q in levels], levels, "levels", runner.level)
    canon_seeds = _once([_check_seed(s) for s in seeds], seeds, "seeds", "seed")
    out = []
    for m in canon_models:
        for q in canon_levels:
            for s in canon_seeds:
                lv = {"quality": q, "bitrate": None} if runner.level == "quality" else {"quality": None, "bitrate": None if q is None else float(q)}
                out.append(TrialSpec(dataset, m, seed=s, recipe=recipe, epochs=int(epochs), train_subset=train_subset, test_subset=test_subset,
                                     image_size=image_size, **lv))
    return out


def _check_storable(specs: list[TrialSpec]) -> None:
    """Refuse, before anything is created, a spec whose values the results database cannot hold."""
    for i, spec in enumerate(specs):
        _check_seed(spec.seed, f"specs[{i}].seed")
        _positive_int(spec.epochs, f"specs[{i}].epochs")
        _positive_int(spec.train_subset, f"specs[{i}].train_subset", allow_none=True)
        _positive_int(spec.test_subset, f"specs[{i}].test_subset", allow_none=True)
        try:
            spec.key().encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(f"specs[{i}] holds text that is not valid UTF-8, which the results database stores: {spec!r}") from None


@dataclass
class SweepResult:
    """What a sweep did.

    Attributes
    ----------
    planned, skipped, ran : int
        Trials in the plan, already finished before, trained and stored now.
    ran_keys : list of str
        The keys of the trials trained and stored now (a worker that died
        counts with what it stored before).
    missing : list of str
        The keys of the plan that are not stored when the sweep ends (they go
        to the next run).
    taken : list of str
        Trials this run finished, but that another sweep (which took over a
        lease while this one was stopped) had stored first; its result is kept.
    evaluated : int
        Evaluations computed now (see :mod:`helmholtz.experiments.evaluate`).
    notes : list of str
        What the sweep did not do and why (e.g. attacks skipped for audio trials).
    recovered : list of str
        Finished trials of an earlier run whose write had failed, recorded now.
    pending : list of str
        Files holding finished trials that could not be written now (the next run records them).
    failed : list of (key, reason)
    interrupted : bool
    error : str or None
        Why a worker stopped the sweep.
    """

    planned: int = 0
    skipped: int = 0
    ran: int = 0
    ran_keys: list = field(default_factory=list)
    missing: list = field(default_factory=list)
    taken: list = field(default_factory=list)
    evaluated: int = 0
    notes: list = field(default_factory=list)
    recovered: list = field(default_factory=list)
    pending: list = field(default_factory=list)
    failed: list = field(default_factory=list)
    interrupted: bool = False
    error: str | None = None


def _wants_evaluation(spec: TrialSpec, evals: EvalPlan, done_evals: set[str]) -> bool:
    if evals.empty:
        return False
    runner = runner_for(spec.dataset)
    if runner.evaluate is None:
        return False
    requests, _ = requests_for(evals, runner.level, spec.level)
    return any(r.key(spec.key()) not in done_evals for r in requests)


def _test_size(ds: Any) -> int:
    return len(ds.y_test) if hasattr(ds, "y_test") else int(ds.is_test.sum())


def check_device(device: Any) -> str:
    """``"cpu"``, ``"cuda"`` (every visible GPU) or ``"cuda:N"``, checked against what torch sees."""
    if not isinstance(device, str) or not (device == "cpu" or device == "cuda" or (device.startswith("cuda:") and device[5:].isdigit())):
        raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N'; got {device!r}")
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise ValueError("device 'cuda' was asked for but torch sees no CUDA GPU; use --device cpu")
        if ":" in device and int(device[5:]) >= torch.cuda.device_count():
            raise ValueError(f"device {device!r}: torch sees {torch.cuda.device_count()} GPU(s)")
    return device


def run_sweep(
    specs: Sequence[TrialSpec],
    out: str | os.PathLike,
    *,
    data_dir: str | None = None,
    device: str = "cpu",
    executor: str = "local",
    trials_per_device: int = 1,
    compile: bool = False,
    ray_address: str | None = None,
    ray_num_cpus: int | None = None,
    progress: bool | None = None,
    download: bool = False,
    evals: EvalPlan | None = None,
    log: Callable[[str], None] | None = None,
) -> SweepResult:
    """Run the trials of ``specs`` that are not yet in ``out``'s database.

    Parameters
    ----------
    specs : sequence of TrialSpec
        From :func:`plan_trials`.
    out : path
        The output folder (database ``out/results.sqlite``, weights ``out/models/``).
    data_dir : path, optional
        Default ``$HELMHOLTZ_DATA``.
    device : str
        ``"cpu"``, ``"cuda"`` (every visible GPU) or ``"cuda:N"``.
    executor : {"local", "ray"}
    trials_per_device : int
        Trials trained at once per device: worker processes locally (capped
        by the CPU cores and by the trials to run, with a message), ``1/K``
        of a GPU per task on Ray (CUDA sweeps only).
    compile : bool
        :func:`torch.compile` the models.
    ray_address, ray_num_cpus
        The Ray cluster to join (default: a local Ray instance of
        ``ray_num_cpus`` CPUs); only with ``executor="ray"``.
    progress : bool, optional
        Progress bars: always, never, or (None) when stderr is a terminal.
    download : bool
        Fetch a missing data set (CIFAR-10, MNIST) into ``data_dir`` first.
    evals : EvalPlan, optional
        Evaluations of every finished trial of ``specs`` (cross-quality,
        attacks, JPEG defence); only the missing ones are computed.
    log : callable, optional
        Where one-line messages go (default: stderr).

    Ctrl-C stops after giving the running trials back: nothing half-done is
    recorded and ``result.interrupted`` is set.

    Every argument is checked before anything is created: ``out`` must be a
    folder helmholtz may create (see :func:`helmholtz.experiments.store.check_output_folder`),
    and values the database cannot hold (seeds beyond 64 bits) are refused.
    A script that runs a sweep with ``trials_per_device > 1`` must call it
    under ``if __name__ == "__main__":`` (worker processes import the script
    again); a worker that dies or fails counts as an error in the result.
    """
    if not isinstance(executor, str) or executor not in EXECUTORS:
        raise ValueError(f"executor must be one of {', '.join(EXECUTORS)}; got {executor!r}")
    check_output_folder(out, "out")
    trials_per_device = _positive_int(trials_per_device, "trials_per_device")
    for name, value in (("compile", compile), ("download", download)):
        if not isinstance(value, bool):
            raise TypeError(f"{name} must be True or False; got {value!r}")
    if progress is not None and not isinstance(progress, bool):
        raise TypeError(f"progress must be True, False or None; got {progress!r}")
    if ray_num_cpus is not None:
        _positive_int(ray_num_cpus, "ray_num_cpus")
    if ray_address is not None and (not isinstance(ray_address, str) or not ray_address.strip()):
        raise ValueError(f"ray_address must be 'auto', 'host:port' or 'ray://host:port'; got {ray_address!r}")
    if executor != "ray":
        given = [name for name, value in (("ray_address", ray_address), ("ray_num_cpus", ray_num_cpus)) if value is not None]
        if given:
            raise ValueError(f"{' and '.join(given)} {'apply' if len(given) > 1 else 'applies'} only to executor='ray'; "
                             f"this sweep runs with executor={executor!r}")
    elif trials_per_device > 1 and not (isinstance(device, str) and device.startswith("cuda")):
        raise ValueError("trials_per_device > 1 on Ray packs trials on a GPU (1/K of one per task) and needs device='cuda'; "
                         "on CPUs each Ray task takes one CPU, so size the cluster instead")
    specs = list(specs)
    if not all(isinstance(s, TrialSpec) for s in specs):
        raise TypeError("specs must be TrialSpec objects (see plan_trials)")
    _check_storable(specs)
    # Every extra the sweep will use is checked before anything is read or written, in one message.
    needs: list = [("experiments", ("torch", "tqdm"))]
    for dataset in dict.fromkeys(s.dataset for s in specs):
        needs += runner_for(dataset).requires
    if executor == "ray":
        needs.append(("ray", ("ray",)))
    check_extras(needs, purpose="helmholtz sweep")
    device = check_device(device)
    log = log or log_stderr
    result = SweepResult(planned=len(specs))
    # Everything that can be checked is checked before anything is written: the finished
    # trials (read-only), then the data of each group against its runner and its fingerprint.
    evals = evals or EvalPlan()
    existing = db_path(out).exists()
    if existing:
        with ResultStore(out, readonly=True) as peek:
            done = peek.finished_keys()
            done_evals = peek.finished_evaluation_keys()
            stored_sources = {g: peek.source_fingerprints(*g) for g in {s.data_group() for s in specs}}
    else:
        done, done_evals, stored_sources = set(), set(), {}
    pending = [s for s in specs if s.key() not in done]
    to_evaluate = [s for s in specs if _wants_evaluation(s, evals, done_evals)]
    if specs:  # one sweep, one data set: its runner says what of the plan does not apply
        result.notes = requests_for(evals, runner_for(specs[0].dataset).level, specs[0].level)[1]
    for note in result.notes:
        log(f"note: {note}")
    if download:
        for group in dict.fromkeys(s.data_group() for s in pending):
            if get_spec(group[0]).downloadable:
                load_trial_data(group[0], data_dir, None, None, download=True)
    cache = DataCache()
    groups = list(dict.fromkeys(s.data_group() for s in pending + to_evaluate))
    for group in groups:
        members = [s for s in pending + to_evaluate if s.data_group() == group]
        ds, sha = cache.data(members[0], data_dir)
        runner_for(group[0]).check_data(ds, [s.level for s in members])
        check_source(db_path(out), group, sha, stored_sources.get(group, set()))
        check_attack_subset(evals, _test_size(ds), group[0])
    with ResultStore(out) as store:
        result.recovered = list(store.recovered)
        if result.recovered:
            log(f"recorded {len(result.recovered)} finished trial(s) that an earlier run could not write")
        for path, why in store.unrecovered:
            log(f"a finished result kept in {path} could not be recorded yet ({why}); it stays there for the next run")
        done = store.finished_keys()
        pending = [s for s in specs if s.key() not in done]
        result.skipped = len(specs) - len(pending)
        if result.skipped:
            log(f"{result.skipped} of {len(specs)} trials already finished in {store.path}; skipping them")
        if not pending and not to_evaluate:
            return result
        run = uuid.uuid4().hex[:12]
        try:
            if executor == "ray":
                from .ray_executor import run_trials_ray

                report = run_trials_ray(
                    pending, store, run=run, data_dir=data_dir, device=device, trials_per_device=trials_per_device, compile=compile,
                    address=ray_address, num_cpus=ray_num_cpus, progress=progress, total=len(specs), already_done=result.skipped, log=log,
                    cache=cache,
                ) if pending else WorkerReport()
                if not evals.empty and not report.interrupted:  # evaluations run here, in the driver
                    report.merge(run_local(
                        specs, out, run=run, data_dir=data_dir, device="cuda:0" if device.startswith("cuda") else device, trials_per_device=1,
                        compile=compile, progress=False, total=len(specs), already_done=len(specs), log=log, cache=cache, evals=evals, train=False,
                    ))
            else:
                jobs = len({s.key() for s in pending} | {s.key() for s in to_evaluate})
                report = run_local(
                    specs if not evals.empty else pending, out, run=run, data_dir=data_dir, device=device, trials_per_device=trials_per_device,
                    compile=compile, progress=progress, total=len(specs), already_done=result.skipped, log=log, cache=cache, evals=evals,
                    jobs=jobs,
                )
        finally:
            try:
                store.release_run(run)
            except Exception:  # noqa: BLE001 - an unwritable store at the very end: leases go stale on their own
                pass
    result.ran = len(report.ran)
    result.ran_keys = list(report.ran)
    result.taken = list(report.taken)
    try:
        with ResultStore(out, readonly=True) as final:
            stored = final.finished_keys()
        result.missing = [s.key() for s in specs if s.key() not in stored]
    except Exception:  # noqa: BLE001 - the database cannot be read now: say nothing rather than guess
        result.missing = []
    result.evaluated = len(report.evaluated)
    result.failed = list(report.failed)
    result.pending = list(report.pending)
    result.recovered += [k for k in report.recovered if k not in result.recovered]
    result.interrupted = report.interrupted
    result.error = report.error
    return result
