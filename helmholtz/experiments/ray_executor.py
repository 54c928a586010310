"""The Ray executor of :mod:`helmholtz.sweep`: one Ray task per trial.

The driver loads the data (subset) once and puts it in Ray's object store;
each task compresses it at its own level on its own device (one GPU per
trial where the sweep runs on CUDA), trains, and returns the record, which
the driver writes to the results database as soon as the task finishes. So
the database only ever has whole trials, whatever happens to the cluster.

Needs ``pip install helmholtz[ray]``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Sequence

from .._extras import require

__all__ = ["run_trials_ray", "import_ray"]


def import_ray() -> Any:
    """Import ray or raise a RuntimeError naming the extra to install."""
    return require("ray", purpose="--executor ray")


def _trial_task(spec_dict: dict, dataset: Any, device: str, num_threads: int) -> dict:
    """Body of the Ray task: run one trial in the worker (no database access there)."""
    import torch

    from .spec import TrialSpec
    from .sweep import run_trial

    torch.set_num_threads(max(1, num_threads))
    return run_trial(TrialSpec(**spec_dict), dataset, device=device, progress=False)


def run_trials_ray(
    specs: Sequence[Any],
    store: Any,
    result: Any,
    *,
    data_dir: str | None,
    device: str,
    address: str | None = None,
    num_cpus: int | None = None,
    progress: bool | None = None,
    log: Callable[[str], None] = print,
) -> None:
    """Run ``specs`` as Ray tasks and write each record to ``store`` as it arrives.

    Connects to the cluster at ``address`` or starts a local Ray instance
    (with ``num_cpus`` CPUs) that is shut down at the end. Ctrl-C cancels the
    tasks still running and sets ``result.interrupted``.
    """
    from dataclasses import asdict

    from .progress import progress_bar, summary_line
    from .sweep import load_trial_data

    ray = import_ray()
    started_here = False
    if not ray.is_initialized():
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            # local workers inherit this environment: make sure they import this helmholtz
            root = str(Path(__file__).resolve().parent.parent.parent)
            saved = os.environ.get("PYTHONPATH")
            paths = (saved or "").split(os.pathsep)
            if root not in paths:
                os.environ["PYTHONPATH"] = os.pathsep.join([root] + [p for p in paths if p])
            try:
                ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, configure_logging=False)
            finally:  # the Ray processes have their copy; leave ours as it was
                if saved is None:
                    os.environ.pop("PYTHONPATH", None)
                else:
                    os.environ["PYTHONPATH"] = saved
        started_here = True
    cuda = device.startswith("cuda")
    cpus_per_task = 1
    task = ray.remote(num_cpus=cpus_per_task, num_gpus=1 if cuda else 0, max_retries=1)(_trial_task)
    bar = progress_bar(result.planned, "sweep (ray)", progress, leave=True, position=0)
    bar.update(result.skipped)
    refs: dict[Any, Any] = {}
    try:
        groups: dict[tuple, list] = {}
        for s in specs:
            groups.setdefault((s.dataset, s.train_subset, s.test_subset), []).append(s)
        for (dataset, tr, te), group in groups.items():
            data_ref = ray.put(load_trial_data(dataset, data_dir, tr, te))
            for s in group:
                # a CUDA task sees only its own GPU, as cuda:0
                refs[task.remote(asdict(s), data_ref, "cuda" if cuda else "cpu", cpus_per_task)] = s
        while refs:
            ready, _ = ray.wait(list(refs), num_returns=1)
            for ref in ready:
                spec = refs.pop(ref)
                try:
                    record = ray.get(ref)
                except ray.exceptions.RayTaskError as exc:
                    result.failed.append((spec.key(), str(exc).splitlines()[-1]))
                    log(f"trial {spec.key()} failed: {str(exc).splitlines()[-1]}")
                    continue
                store.add(record)
                result.ran += 1
                bar.update(1)
                bar.write(summary_line(record))
    except KeyboardInterrupt:
        result.interrupted = True
        for ref in refs:
            try:
                ray.cancel(ref, force=True)
            except Exception:  # noqa: BLE001 - best effort while stopping
                pass
    finally:
        bar.close()
        if started_here:
            ray.shutdown()
