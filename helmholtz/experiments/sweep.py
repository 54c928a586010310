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

import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from .._version import __version__
from ..data import get_spec, resolve_data_dir
from .progress import log_stderr, progress_bar, summary_line
from .recipes import get_recipe
from .runners import TrialRunner, runner_for
from .spec import TrialSpec

__all__ = [
    "plan_trials",
    "run_trial",
    "run_sweep",
    "SweepResult",
    "load_trial_data",
    "DEFAULT_QUALITIES",
]

DEFAULT_QUALITIES = (1, 5, 10, 15, 20, 25, 50, 75, 100)


_DATA_CACHE: dict[tuple, Any] = {}


def load_trial_data(dataset: str, data_dir: str | None, train_subset: int | None, test_subset: int | None, download: bool = False):
    """The (subset of the) data set a trial trains on; cached per process."""
    spec = get_spec(dataset)
    root = str(resolve_data_dir(data_dir)) if not download else data_dir
    key = (dataset, root, train_subset, test_subset)
    if key not in _DATA_CACHE:
        full = spec.loader(root, download=True) if download else spec.loader(root)
        _DATA_CACHE.clear()  # hold one data set at a time
        _DATA_CACHE[key] = full.subset(train_subset, test_subset) if (train_subset or test_subset) else full
    return _DATA_CACHE[key]


def _environment(device: str) -> dict:
    import torch

    dev = device
    if device.startswith("cuda") and torch.cuda.is_available():
        dev = f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    return {"device": dev, "host": platform.node(), "helmholtz_version": __version__, "torch_version": torch.__version__}


def run_trial(
    spec: TrialSpec,
    dataset: Any,
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
    runner = runner_for(spec.dataset)
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
    runner = runner_for(dataset)
    get_recipe(recipe)
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
    log = log or log_stderr
    result = SweepResult(planned=len(specs))
    with ResultStore(out) as store:
        done = store.finished_keys()
        pending = [s for s in specs if s.key() not in done]
        result.skipped = len(specs) - len(pending)
        if result.skipped:
            log(f"{result.skipped} of {len(specs)} trials already finished in {store.path}; skipping them")
        if executor == "ray":
            from .ray_executor import run_trials_ray

            if pending:
                run_trials_ray(pending, store, result, data_dir=data_dir, device=device, address=ray_address, num_cpus=ray_num_cpus, progress=progress, log=log)
            return result
        groups: dict[tuple, list[TrialSpec]] = {}
        for s in specs:
            groups.setdefault((s.dataset, s.train_subset, s.test_subset), []).append(s)
        bar = progress_bar(len(specs), "sweep", progress, leave=True, position=0)
        bar.update(result.skipped)
        try:
            for (dataset, tr, te), group in groups.items():
                todo = [s for s in group if s.key() not in done]
                finished = [s for s in group if s.key() in done]
                runner = runner_for(dataset)
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
                    bar.write(summary_line(record), file=sys.stderr)
                del compressed
        except KeyboardInterrupt:
            result.interrupted = True
        finally:
            bar.close()
    return result


def _missing_rate(store, spec: TrialSpec) -> bool:
    return store.missing_rate(spec.key())
