"""The Ray executor: one Ray task per trial, on a cluster or a local Ray instance.

The driver (the ``helmholtz sweep`` process) claims each trial with a lease
in the results database before it submits the task, keeps the leases alive
with a heartbeat, loads each data set once and puts it in Ray's object store.
A task compresses the data at its level on its own device, trains, and
returns the record with the final weights; the driver writes the weights (under
a name of their own) and the row as soon as the task finishes, or keeps both
for the next run when the database cannot take them. Workers never touch the database, so
the cluster needs no shared file system, and the database only ever holds
whole trials. When a node dies, Ray runs its tasks again elsewhere
(``max_retries``); a trial is stored once whatever happens, because rows are
unique by key.

``trials_per_device=K`` asks for ``1/K`` of a GPU per task (CUDA sweeps), so
Ray packs K trials on each GPU.

Needs ``pip install 'helmholtz-ml[ray]'``.
"""

from __future__ import annotations

import os
import socket
import sys
from contextlib import suppress
from pathlib import Path
from typing import Any, Callable, Sequence

from .._extras import require
from ..errors import ClusterUnavailable, StoreError
from .local import WorkerReport, store_finished, timing_from_env
from .progress import log_stderr, progress_bar, summary_line
from .spec import TrialSpec
from .store import Heartbeat, Owner, ResultStore
from .trial import DataCache, check_source

__all__ = ["run_trials_ray", "connect", "CONNECT_TIMEOUT_S", "TASK_RETRIES"]

#: Seconds to wait for a cluster's address to answer before giving up.
CONNECT_TIMEOUT_S = 10.0
#: How often Ray runs a trial again after its worker or node died.
TASK_RETRIES = 3


def _probe(address: str) -> None:
    """Fail fast, naming the address, when nothing answers at ``host:port`` (``ray.init`` would retry for minutes)."""
    target = address.split("://", 1)[-1]
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"--ray-address must be 'auto', 'host:port' or 'ray://host:port'; got {address!r}")
    try:
        with socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        raise ClusterUnavailable(_unavailable(address, exc)) from None


def _unavailable(address: str, why: Any) -> str:
    return f"no Ray cluster answers at {address} ({why}); start one with `ray start --head` or check the address"


def connect(address: str | None, num_cpus: int | None) -> tuple[Any, bool]:
    """Join the cluster at ``address`` or start a local Ray instance; returns ``(ray, started_here)``."""
    ray = require("ray", purpose="--executor ray")
    if ray.is_initialized():
        return ray, False
    if address:
        if address != "auto":
            _probe(address)
        try:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
        except ConnectionError as exc:  # something answered, but not a Ray cluster (or it went away)
            raise ClusterUnavailable(_unavailable(address, exc)) from None
        return ray, True
    # a local instance's workers inherit this environment: make sure they import this helmholtz
    root = str(Path(__file__).resolve().parents[2])
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
    return ray, True


def _trial_task(spec_dict: dict, dataset: Any, device: str, compile: bool, num_threads: int, source: str) -> dict:
    """Body of the Ray task: run one trial in the worker (no database access there)."""
    import torch

    from .runners import TrainOptions, runner_for
    from .trial import run_trial

    torch.set_num_threads(max(1, num_threads))
    spec = TrialSpec(**spec_dict)
    runner_for(spec.dataset).check_data(dataset, [spec.level])
    record = run_trial(spec, dataset, TrainOptions(device=device, compile=compile, progress=False, num_threads=num_threads), source=source)
    record["ray_node"] = socket.gethostname()
    import ray

    extra = dict(record.get("extra") or {})
    extra["ray_node_id"] = ray.get_runtime_context().get_node_id()
    record["extra"] = extra
    return record


def run_trials_ray(
    specs: Sequence[TrialSpec],
    store: ResultStore,
    *,
    run: str,
    data_dir: str | None,
    device: str,
    trials_per_device: int = 1,
    compile: bool = False,
    address: str | None = None,
    num_cpus: int | None = None,
    progress: bool | None = None,
    total: int,
    already_done: int = 0,
    log: Callable[[str], None] = log_stderr,
    cache: DataCache | None = None,
) -> WorkerReport:
    """Run ``specs`` as Ray tasks and write each record to ``store`` as it arrives.

    ``cache`` holds data the caller loaded and checked already.

    Ctrl-C cancels the tasks still running and gives their trials back.
    """
    ray, started_here = connect(address, num_cpus)
    timing = timing_from_env()
    owner = Owner(run=run)
    cuda = device.startswith("cuda")
    task = ray.remote(num_cpus=1, num_gpus=(1.0 / trials_per_device) if cuda else 0, max_retries=TASK_RETRIES, retry_exceptions=False)(_trial_task)
    report = WorkerReport()
    bar = progress_bar(total, "sweep (ray)", progress, leave=True, position=0)
    bar.update(already_done)
    refs: dict[Any, TrialSpec] = {}
    try:
        with Heartbeat(store.path, owner, timing["heartbeat_s"]):
            groups: dict[tuple, list[TrialSpec]] = {}
            for s in specs:
                groups.setdefault(s.data_group(), []).append(s)
            cache = cache if cache is not None else DataCache()
            for group, members in groups.items():
                if report.error:
                    break
                ds, sha = cache.data(members[0], data_dir)
                check_source(store.path, group, sha, store.source_fingerprints(*group))
                data_ref = ray.put(ds)
                for s in members:
                    if report.error:
                        break
                    try:
                        claimed = store.claim([s.key()], owner, stale_after=timing["stale_after"])
                    except StoreError as exc:  # stop submitting; the tasks already running are still kept
                        report.error = f"{exc}; the trials not yet submitted go to the next run"
                        break
                    if claimed is None:
                        log(f"{s.key()}: being trained by another sweep; skipped here")
                        continue
                    # a CUDA task sees only its own GPU, as cuda:0
                    refs[task.remote(s.to_dict(), data_ref, "cuda" if cuda else "cpu", compile, 1, sha)] = s
            while refs:
                ready, _ = ray.wait(list(refs), num_returns=1)
                for ref in ready:
                    spec = refs.pop(ref)
                    try:
                        record = ray.get(ref)
                    except ray.exceptions.RayError as exc:
                        why = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
                        with suppress(StoreError):
                            store.mark_failed(spec.key(), owner, why)
                        report.failed.append((spec.key(), why))
                        log(f"failed: {spec.key()}: {why}")
                        continue
                    node = record.pop("ray_node", None)
                    record["host"] = node or record.get("host")
                    record["owner"] = f"{owner.id} (ray task on {record['host']})"
                    if store_finished(store, record, owner, report, log):
                        bar.update(1)
                        bar.write(summary_line(record), file=sys.stderr)
    except KeyboardInterrupt:
        report.interrupted = True
        for ref, spec in refs.items():
            try:
                ray.cancel(ref, force=True)
            except Exception:  # noqa: BLE001 - best effort while stopping
                pass
            try:
                store.release(spec.key(), owner)
            except StoreError:
                pass
    finally:
        bar.close()
        if started_here:
            ray.shutdown()
    return report
