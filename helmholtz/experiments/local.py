"""The local executor: workers on this machine that claim trials from the store and run them.

A worker claims a trial with a lease (:meth:`ResultStore.claim`), trains it
and writes its record, until no trial is left; trials held by live workers of
other sweeps are waited for, and stale ones taken over. One worker runs in
the calling process. ``--trials-per-device K`` starts K worker processes per
device instead (spawned, so CUDA and OpenMP start clean) and splits the
CPU threads between them, so that one GPU trains K small models at once.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import sys
import time
import traceback
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

from .._codec.registry import default_threads
from .._extras import require
from ..errors import DataError, StoreError, TrialError
from .progress import log_stderr, progress_bar, summary_line
from .runners import TrainOptions, runner_for
from .spec import TrialSpec
from .store import Heartbeat, Owner, ResultStore
from .evaluate import EvalPlan, EvalRequest, as_record, requests_for
from .trial import DataCache, check_source, load_weights, run_trial, weights_payload

__all__ = ["WorkerPlan", "WorkerReport", "run_worker", "run_local", "store_finished", "worker_count", "timing_from_env"]


def timing_from_env() -> dict[str, float]:
    """Lease timing: ``HELMHOLTZ_LEASE_STALE_S`` (120), ``HELMHOLTZ_HEARTBEAT_S`` (10), ``HELMHOLTZ_POLL_S`` (2)."""
    def value(name: str, default: float) -> float:
        text = os.environ.get(name)
        if not text:
            return default
        try:
            v = float(text)
        except ValueError:
            raise ValueError(f"{name} must be a number of seconds; got {text!r}") from None
        if v <= 0:
            raise ValueError(f"{name} must be > 0; got {text!r}")
        return v

    return {"stale_after": value("HELMHOLTZ_LEASE_STALE_S", 120.0), "heartbeat_s": value("HELMHOLTZ_HEARTBEAT_S", 10.0), "poll_s": value("HELMHOLTZ_POLL_S", 2.0)}


@dataclass
class WorkerPlan:
    """What one worker does (plain values, so it crosses to a spawned process)."""

    out: str
    specs: list[dict]
    run: str
    data_dir: str | None
    device: str = "cpu"
    compile: bool = False
    progress: bool | None = None
    num_threads: int | None = None
    stale_after: float = 120.0
    heartbeat_s: float = 10.0
    poll_s: float = 2.0
    name: str = "worker"
    train: bool = True
    evals: dict | None = None


@dataclass
class WorkerReport:
    """What workers did: keys trained, failed, kept for later, stored first by others, recovered; whether they were stopped."""

    ran: list[str] = field(default_factory=list)
    evaluated: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)
    taken: list[str] = field(default_factory=list)
    interrupted: bool = False
    error: str | None = None

    def merge(self, other: "WorkerReport") -> None:
        self.ran += [k for k in other.ran if k not in self.ran]
        self.evaluated += other.evaluated
        self.failed += [tuple(f) for f in other.failed]  # type: ignore[misc]
        self.pending += other.pending
        self.recovered += [k for k in other.recovered if k not in self.recovered]
        self.taken += other.taken
        self.interrupted |= other.interrupted
        self.error = self.error or other.error


def store_finished(store: ResultStore, record: dict, owner: Owner, report: WorkerReport, log: Callable[[str], None]) -> bool:
    """Write a finished trial's weights and row (see :meth:`ResultStore.add_or_keep`); returns whether it is stored now.

    The weights go to a file of their own, which the row names; if the trial
    was stored meanwhile by a worker that took the lease over, this result
    and its file are dropped (``report.taken``); if anything cannot be
    written, record and weights wait for the next run (``report.pending``).
    """
    files = weights_payload(record)
    stored, pending = store.add_or_keep(record, owner, files=files)
    key = record["key"]
    if pending is not None:
        report.pending.append(str(pending))
        lost = " (without its weights: there was no room for them anywhere)" if files and not record.get("weights") else ""
        log(f"could not write {key} to {store.path}; the finished result is kept in {pending}{lost} and the next run records it")
    elif not stored:
        report.taken.append(key)
        log(f"{key} was stored meanwhile by another worker (which took over the lease while this one was stopped); "
            "this result is dropped and the stored one kept")
    else:
        report.ran.append(key)
    return stored


def run_worker(
    plan: WorkerPlan, *, log: Callable[[str], None] = log_stderr, on_finished: Callable[[dict], None] | None = None, cache: DataCache | None = None
) -> WorkerReport:
    """Claim and run trials of ``plan`` until none is left; returns what was done.

    Trial failures (a diverged loss, a CUDA out-of-memory error) are recorded
    in the lease and reported; the worker goes on with the next trial. Any
    other error (bad data, an unwritable store) stops it and propagates.
    Ctrl-C stops it after giving the running trial back.
    """
    torch = require("torch", purpose="helmholtz sweep")
    if plan.num_threads:
        torch.set_num_threads(plan.num_threads)
    specs = [TrialSpec(**d) for d in plan.specs]
    by_key = {s.key(): s for s in specs}
    keys = list(by_key)
    owner = Owner(run=plan.run)
    options = TrainOptions(device=plan.device, compile=plan.compile, progress=plan.progress, num_threads=plan.num_threads)
    report = WorkerReport()
    cache = cache if cache is not None else DataCache()
    checked: set[tuple] = set()
    with ResultStore(plan.out) as store, Heartbeat(store.path, owner, plan.heartbeat_s):
        report.recovered = list(store.recovered)
        kept: set[str] = set()  # finished here, but waiting in a pending file: never claimed again by this worker
        said_waiting = False
        try:
            while plan.train:
                todo = [k for k in keys if k not in kept]
                if not todo:
                    break
                key = store.claim(todo, owner, stale_after=plan.stale_after)
                if key is None:
                    blockers = store.blockers(todo, owner, stale_after=plan.stale_after)
                    if not blockers:
                        break
                    if not said_waiting:
                        who = sorted({f"pid {b['pid']} on {b['host']}" for b in blockers})
                        log(f"waiting for {len(blockers)} trial(s) being trained by {', '.join(who)}")
                        said_waiting = True
                    time.sleep(plan.poll_s)
                    continue
                said_waiting = False
                spec = by_key[key]
                try:
                    ds, source = cache.data(spec, plan.data_dir)
                    if spec.data_group() not in checked:
                        check_source(store.path, spec.data_group(), source, store.source_fingerprints(*spec.data_group()))
                        runner_for(spec.dataset).check_data(ds, [s.level for s in specs if s.data_group() == spec.data_group()])
                        checked.add(spec.data_group())
                    record = run_trial(spec, ds, options, prepared=cache.prepare(spec, options), source=source)
                    record["owner"] = owner.id
                except StoreError:
                    raise
                except (TrialError, RuntimeError) as exc:  # this trial failed (diverged, out of memory): go on
                    why = f"{type(exc).__name__}: {exc}".splitlines()[0]
                    store.mark_failed(key, owner, why)
                    report.failed.append((key, why))
                    log(f"failed: {key}: {why}")
                    continue
                except BaseException:
                    with suppress(StoreError):
                        store.release(key, owner)
                    raise
                if store_finished(store, record, owner, report, log):
                    log(summary_line(record))
                    if on_finished is not None:
                        on_finished(record)
                else:
                    kept.add(key)
            evals = EvalPlan.from_dict(plan.evals)
            if not evals.empty:
                _evaluate_finished(store, specs, evals, owner, plan, options, cache, report, log)
        except KeyboardInterrupt:
            report.interrupted = True
        except StoreError as exc:
            # The database stopped taking writes (full disk, read-only storage) after work began: what
            # finished is stored or pending; say so instead of losing the report in a traceback.
            report.error = f"{exc}; the trials not yet run go to the next run"
    return report


def _missing_evaluations(store: ResultStore, specs: list[TrialSpec], evals: EvalPlan) -> dict[str, list[EvalRequest]]:
    """Finished trials of ``specs`` -> the requests of ``evals`` not yet stored for them."""
    finished = store.finished_keys()
    done = store.finished_evaluation_keys()
    out = {}
    for spec in specs:
        if spec.key() not in finished:
            continue
        runner = runner_for(spec.dataset)
        if runner.evaluate is None:
            continue
        requests, _ = requests_for(evals, runner.level, spec.level)
        missing = [r for r in requests if r.key(spec.key()) not in done]
        if missing:
            out[spec.key()] = missing
    return out


def _evaluate_finished(store, specs, evals, owner, plan, options, cache, report, log) -> None:
    """Claim each finished trial's missing evaluations (one lease per trial) and store them one by one."""
    by_key = {s.key(): s for s in specs}
    out_dir = store.path.parent
    said_waiting = False
    while True:
        todo = _missing_evaluations(store, specs, evals)
        lease_keys = [f"evaluate|{k}" for k in todo]
        lease = store.claim(lease_keys, owner, stale_after=plan.stale_after)
        if lease is None:
            blockers = store.blockers(lease_keys, owner, stale_after=plan.stale_after)
            if not blockers:
                return
            if not said_waiting:
                log(f"waiting for the evaluations of {len(blockers)} trial(s) run by other workers")
                said_waiting = True
            time.sleep(plan.poll_s)
            continue
        said_waiting = False
        trial_key = lease.split("|", 1)[1]
        spec = by_key[trial_key]
        try:
            record = store.record(trial_key)
            state = load_weights(out_dir, record)
            ds, _ = cache.data(spec, plan.data_dir)
            results = runner_for(spec.dataset).evaluate(spec, ds, record, state, todo[trial_key], options)
        except StoreError:
            raise
        except (DataError, TrialError, RuntimeError, ValueError) as exc:  # this trial cannot be evaluated: go on with the others
            why = f"{type(exc).__name__}: {exc}".splitlines()[0]
            store.mark_failed(lease, owner, why)
            report.failed.append((lease, why))
            log(f"failed: {lease}: {why}")
            continue
        except BaseException:
            with suppress(StoreError):
                store.release(lease, owner)
            raise
        for request, acc, images, seconds in results:
            row = as_record(trial_key, request, acc, images, seconds)
            stored, pending = store.add_or_keep(row, table="evaluations")
            if pending is not None:
                report.pending.append(str(pending))
                log(f"could not write {row['key']} to {store.path}; it is kept in {pending} and the next run records it")
            elif stored:
                report.evaluated.append(row["key"])
        store.release(lease, owner)
        log(f"{spec.label()}: {len(results)} evaluation(s): " + ", ".join(_eval_text(r, a) for r, a, _, _ in results[:6])
            + (" ..." if len(results) > 6 else ""))


def _eval_text(request: EvalRequest, acc: float) -> str:
    level = f"q={request.eval_quality if request.eval_quality is not None else 'none'}" if request.eval_bitrate is None else f"{request.eval_bitrate:g} kbps"
    if request.eval == "clean":
        return f"{level} {acc:.3f}"
    defense = f" JPEG{request.defense_quality}" if request.defense_quality is not None else ""
    return f"{request.eval}{defense} eps={request.eps:g} {acc:.3f}"


def _worker_entry(plan_dict: dict, queue: Any) -> None:
    """Body of a spawned worker: run, and send the report (or the error) back."""
    plan = WorkerPlan(**plan_dict)
    try:
        report = run_worker(plan, log=lambda line: log_stderr(f"[{plan.name}] {line}"))
    except KeyboardInterrupt:
        report = WorkerReport(interrupted=True)
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which prints it and fails the sweep
        report = WorkerReport(error=f"{type(exc).__name__}: {exc}")
        if not isinstance(exc, (DataError, StoreError, ValueError, TypeError, ImportError)):
            report.error += "\n" + traceback.format_exc()
    queue.put((os.getpid(), asdict(report)))


def _devices(device: str) -> list[str]:
    if device.startswith("cuda") and ":" not in device:
        import torch

        return [f"cuda:{i}" for i in range(torch.cuda.device_count())] or ["cuda:0"]
    return [device]


def worker_count(trials_per_device: int, devices: int, cores: int, trials: int) -> int:
    """How many workers run at once: ``trials_per_device`` per device, but no more than the cores and the trials."""
    return max(1, min(trials_per_device * devices, cores, trials))


def run_local(
    specs: Sequence[TrialSpec],
    out: str | os.PathLike,
    *,
    run: str,
    data_dir: str | None,
    device: str,
    trials_per_device: int = 1,
    compile: bool = False,
    progress: bool | None = None,
    total: int,
    already_done: int,
    log: Callable[[str], None] = log_stderr,
    cache: DataCache | None = None,
    evals: EvalPlan | None = None,
    train: bool = True,
    jobs: int | None = None,
) -> WorkerReport:
    """Run ``specs`` with ``trials_per_device`` workers per device (one in this process when that makes one).

    ``device="cuda"`` means every visible GPU; ``"cuda:N"`` one of them. The
    workers are capped by the cores this process may use and by ``jobs``,
    the number of trials to train or evaluate (default ``len(specs)``), with
    a message when that lowers ``trials_per_device``. ``cache`` holds data
    the caller loaded already (used by an in-process worker).
    """
    timing = timing_from_env()
    devices = _devices(device)
    cores = default_threads()
    jobs = len(specs) if jobs is None else jobs
    wanted = trials_per_device * len(devices)
    count = worker_count(trials_per_device, len(devices), cores, jobs)
    if count < wanted:
        gpus = f" and {len(devices)} GPU(s)" if device.startswith("cuda") else ""
        log(f"note: trials_per_device={trials_per_device} asks for {wanted} worker(s); running {count}, as this machine has "
            f"{cores} CPU core(s){gpus} and the sweep has {jobs} trial(s) to run")
    slots = [(dev, j) for j in range(trials_per_device) for dev in devices][:count]
    threads = max(1, cores // len(slots)) if len(slots) > 1 else None
    plans = [
        WorkerPlan(out=str(out), specs=[s.to_dict() for s in specs], run=run, data_dir=data_dir, device=dev, compile=compile,
                   progress=progress if len(slots) == 1 else False, num_threads=threads, name=f"{dev}#{j}", train=train,
                   evals=None if evals is None else evals.to_dict(), **timing)
        for dev, j in slots
    ]
    bar = progress_bar(total, "sweep", progress, leave=True, position=0)
    bar.update(already_done)
    try:
        if len(plans) == 1:
            def say(line: str) -> None:  # above the progress bars when they are shown
                bar.write(line, file=sys.stderr) if not bar.disable else log(line)

            return run_worker(plans[0], log=say, on_finished=lambda record: bar.update(1), cache=cache)
        return _run_processes(plans, out, [s.key() for s in specs], bar, log)
    finally:
        bar.close()


def _exit_text(code: int | None) -> str:
    if code is None:
        return "did not stop"
    if code < 0:
        with suppress(ValueError):
            return f"was killed by {signal.Signals(-code).name}"
        return f"was killed by signal {-code}"
    return f"exited with status {code} before reporting (its error is printed above)"


def _run_processes(plans: list[WorkerPlan], out: Any, keys: list[str], bar: Any, log: Callable[[str], None]) -> WorkerReport:
    """Run one spawned worker per plan; the report says what the database holds, whatever became of the workers."""
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_worker_entry, args=(asdict(p), queue), name=f"helmholtz-{p.name}") for p in plans]
    report = WorkerReport()
    reported: set[int] = set()
    wanted = set(keys)
    with ResultStore(out, readonly=True) as watch:
        before = wanted & watch.finished_keys()
    for p in procs:
        p.start()
    shown = len(before)
    try:
        with ResultStore(out, readonly=True) as watch:
            while len(reported) < len(procs):
                try:
                    pid, data = queue.get(timeout=1.0)
                    report.merge(WorkerReport(**data))
                    reported.add(pid)
                except Exception:  # noqa: BLE001 - queue.Empty: nobody finished in the last second
                    if not any(p.is_alive() for p in procs) and queue.empty():
                        break
                done = len(wanted & watch.finished_keys())
                if done > shown:
                    bar.update(done - shown)
                    shown = done
    except KeyboardInterrupt:
        report.interrupted = True
        for p in procs:
            p.join(timeout=30)  # they got the Ctrl-C too and give their trials back
    finally:
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.terminate()
                p.join(timeout=5)
    # A worker that died (a signal) or exited without its report (an exception before it could send one,
    # e.g. a script without an `if __name__ == "__main__":` guard) is a failure; what the database holds
    # is the truth about which trials ran, whatever the workers managed to report.
    lost = [] if report.interrupted else [p for p in procs if p.pid not in reported]
    stored: dict[str, str] | None = None
    with suppress(Exception), ResultStore(out, readonly=True) as final:
        stored = {r[0]: str(r[1] or "") for r in final.conn.execute("SELECT key, owner FROM trials")}
    if stored is not None:
        mine = {(socket.gethostname(), str(p.pid)) for p in procs}
        for key in keys:  # trials the workers stored, including those of a worker that died before reporting
            host, _, rest = stored.get(key, "").partition(":")
            if key not in before and key in stored and (host, rest.split(":")[0]) in mine and key not in report.ran:
                report.ran.append(key)
    if lost:
        why = "; ".join(f"worker {p.name.removeprefix('helmholtz-')} {_exit_text(p.exitcode)}" for p in lost)
        if any(p.exitcode is not None and p.exitcode > 0 for p in lost):
            why += (" (a script that runs a sweep with trials_per_device > 1 must start it under `if __name__ == '__main__':`, "
                    "because each worker process imports the script again)")
        if stored is None:
            fate = "the database could not be read to tell which trials are stored"
        else:
            missing = wanted - set(stored)
            fate = f"{len(missing)} trial(s) of the sweep are not stored and go to the next run" if missing else "every trial of the sweep is stored"
        report.error = (report.error + "\n" if report.error else "") + f"{why}; {fate}"
    return report
