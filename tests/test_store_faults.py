"""Fault tests of the results store: nothing finished is lost or damaged, whatever fails.

Each test makes one fault happen for real, at a known moment (see tests/_faults.py):
a worker stopped past its lease and resumed after the trial was taken over, a writer
killed in the middle of a commit, a small file system that fills up, storage remounted
read-only while a trial trains, a worker killed or crashing at start. The file-system
tests mount a tmpfs (or a read-only bind mount) and skip cleanly where this process may not mount.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("tqdm")

import _faults  # noqa: E402
from helmholtz.errors import ForeignFileError, StoreError  # noqa: E402
from helmholtz.experiments.store import PENDING_DIR, Owner, ResultStore  # noqa: E402
from helmholtz.experiments.trial import load_weights, save_weights  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent
SWEEP = "import sys; from helmholtz.cli import main; sys.exit(main(['sweep', *sys.argv[1:]]))"
# Generous on a loaded 2-core machine: each wait ends as soon as its condition holds.
WAIT_S = 300


def wait_for(condition, what, timeout=WAIT_S, proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the sweep ended (status {proc.returncode}) before {what}:\n{err[-3000:]}")
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def fault_env(tmp_path, **more):
    hooks = _faults.sitecustomize(tmp_path / "hooks")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(hooks), str(TESTS), str(REPO), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1", "HELMHOLTZ_HEARTBEAT_S": "0.5", "HELMHOLTZ_POLL_S": "0.2",
           "HELMHOLTZ_CACHE_DIR": str(tmp_path / "cache"), "HZ_PERTURB": "1"}
    env.update({k: str(v) for k, v in more.items()})
    return env


def sweep_argv(data, out, qualities, *more):
    return [sys.executable, "-c", SWEEP, "--data-dir", str(data), "--models", "A", "--qualities", qualities, "--seeds", "0",
            "--train-subset", "48", "--test-subset", "24", "--epochs", "1", "--recipe", "fast", "--no-progress", "--out", str(out), *more]


def rows(out):
    with ResultStore(out, readonly=True) as s:
        return s.records()


def leftovers(folder):
    """Temporary files anywhere under ``folder`` (what a failed write must never leave)."""
    return sorted(str(p) for p in Path(folder).rglob("*") if p.name.endswith(".tmp") or ".tmp." in p.name)


# ------------------------------------------------------------------ a mountable small file system
def _mount(*args):
    return subprocess.run(["mount", *args], capture_output=True, text=True)


class Mounts:
    """Mounts made by one test (undone at its end); each skips the test where this process may not mount."""

    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self.points: list[Path] = []

    def _run(self, *args):
        if os.geteuid() != 0:
            pytest.skip("mounting needs root")
        done = _mount(*args)
        if done.returncode != 0:
            pytest.skip(f"cannot mount here: mount {' '.join(args)}: {done.stderr.strip()}")

    def tmpfs(self, size="64m"):
        """A new tmpfs of ``size`` (a small file system that fills up)."""
        point = self.tmp_path / f"mnt{len(self.points)}"
        point.mkdir()
        self._run("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(point))
        self.points.append(point)
        return point

    def read_only(self, folder):
        """Turn ``folder`` read-only now, as storage remounted read-only: a read-only bind mount over it.

        Files already open for writing stay writable (as on a real remount, which Linux refuses while they
        are open); every file created or opened from now on meets a read-only file system.
        """
        self._run("--bind", str(folder), str(folder))
        self.points.append(folder)
        self._run("-o", "remount,bind,ro", str(folder))

    def undo(self, point):
        subprocess.run(["umount", str(point)], check=True, capture_output=True)
        self.points.remove(point)

    def close(self):
        for point in reversed(self.points):
            subprocess.run(["umount", "-l", str(point)], capture_output=True)


@pytest.fixture
def mounts(tmp_path):
    m = Mounts(tmp_path)
    yield m
    m.close()


def remount(point, options):
    done = _mount("-o", f"remount,{options}", str(point))
    assert done.returncode == 0, done.stderr


def fill(point):
    """Fill the file system at ``point`` to the last byte (the file is ``point/filler``)."""
    with open(point / "filler", "wb", buffering=0) as f:
        for size in (1 << 16, 1):
            try:
                while True:
                    f.write(b"\0" * size)
            except OSError:
                pass


# ------------------------------------------------------------------ a stopped worker whose lease was taken over
def test_a_late_finisher_whose_lease_was_taken_over_never_replaces_the_stored_trials_weights(tmp_path, tiny_cifar_dir):
    out, gate = tmp_path / "out", tmp_path / "gate"
    gate.mkdir()
    argv = sweep_argv(tiny_cifar_dir, out, "50")
    # A trains, then waits at the gate holding its lease; it sends no heartbeat after its claim (a long beat
    # keeps the test free of a stop in the middle of a beat), so its lease goes stale 3 s after the claim.
    a = subprocess.Popen(argv, env=fault_env(tmp_path, HELMHOLTZ_LEASE_STALE_S=3, HELMHOLTZ_HEARTBEAT_S=3600,
                                            HZ_GATE_DIR=gate, HZ_GATE_LEVELS=50),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: list(gate.glob("ready-50-*")), "A finished training", proc=a)
        os.kill(a.pid, signal.SIGSTOP)  # stopped past its lease ...
        b = subprocess.run(argv, env=fault_env(tmp_path, HELMHOLTZ_LEASE_STALE_S=3), capture_output=True, text=True, timeout=WAIT_S)
        assert b.returncode == 0, b.stderr[-3000:]  # ... B took the stale lease over, trained and stored the trial
        (stored,) = rows(out)
        stored_bytes = (out / stored["weights"]).read_bytes()
    finally:
        (gate / "go").touch()
        os.kill(a.pid, signal.SIGCONT)  # ... and A resumes, finishes the same trial and tries to store it
    a_out, a_err = a.communicate(timeout=WAIT_S)
    assert a.returncode == 0, a_err[-3000:]
    (row,) = rows(out)
    assert row == stored
    load_weights(out, row)  # the row's SHA-256 still matches its file: A did not replace it
    assert (out / row["weights"]).read_bytes() == stored_bytes
    assert sorted(p.name for p in (out / "models").iterdir()) == [Path(row["weights"]).name]  # A's own file is gone, no temporary file
    assert "stored meanwhile by another" in a_err and "0 trial(s) run" in a_out and "1 stored meanwhile by another sweep" in a_out


# ------------------------------------------------------------------ a writer killed in the middle of a commit
KILLED_WRITER = """
import os, signal, sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("PRAGMA cache_size = 1")  # changed pages spill into the database file before the commit
c.execute("BEGIN IMMEDIATE")
for i in range(300):
    c.execute("INSERT INTO leases VALUES (?, 'o', 'r', 1, 'h', 0, 0, 'running', ?)", (f"x{i}", "x" * 3000))
os.kill(os.getpid(), signal.SIGKILL)
"""


def kill_a_writer_mid_commit(db):
    done = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(db)], capture_output=True)
    assert done.returncode == -signal.SIGKILL
    journal = db.with_name(db.name + "-journal")
    assert journal.stat().st_size > 0  # a hot journal: the file holds half a transaction
    return journal


def record(key="k1", **kw):
    r = {"key": key, "dataset": "cifar10", "model": "A", "quality": 20, "seed": 0, "recipe": "fast", "epochs": 1, "test_accuracy": 0.5}
    r.update(kw)
    return r


def test_a_hot_journal_of_a_killed_writer_is_rolled_back_and_the_results_kept(tmp_path, capsys):
    out = tmp_path / "out"
    with ResultStore(out) as s:
        s.add(record("k1"))
    journal = kill_a_writer_mid_commit(out / "results.sqlite")
    from helmholtz.cli import main

    assert main(["report", str(out), "--format", "json"]) == 0, capsys.readouterr().err  # report reads it ...
    assert "Traceback" not in capsys.readouterr().err
    with ResultStore(out, readonly=True) as s:
        assert s.finished_keys() == {"k1"} and s.leases() == []  # ... at its last committed state
    with ResultStore(out) as s:  # and a sweep writes to it again
        assert s.add(record("k2")) and s.finished_keys() == {"k1", "k2"}
    assert not journal.exists() or journal.stat().st_size == 0


def test_a_hot_journal_on_read_only_storage_is_read_through_a_rolled_back_copy(tmp_path, mounts):
    point = mounts.tmpfs()
    out = point / "out"
    with ResultStore(out) as s:
        s.add(record("k1"))
    journal = kill_a_writer_mid_commit(out / "results.sqlite")
    remount(point, "ro")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with ResultStore(out, readonly=True) as s:
        assert s.finished_keys() == {"k1"} and s.leases() == []
    with pytest.raises(StoreError, match="cannot be rolled back here"):
        ResultStore(out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before and journal.exists()


def test_a_foreign_database_with_a_hot_journal_is_refused_and_both_files_left_unchanged(tmp_path):
    db = tmp_path / "results.sqlite"
    con = sqlite3.connect(db)
    con.execute("PRAGMA application_id = 1234")
    con.execute("CREATE TABLE leases (a, b, c, d, e, f, g, h, i)")
    con.commit()
    con.close()
    kill_a_writer_mid_commit(db)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    for readonly in (False, True):
        with pytest.raises(ForeignFileError, match="another program"):
            ResultStore(tmp_path, readonly=readonly)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


# ------------------------------------------------------------------ a small file system that fills up
def test_weights_that_do_not_fit_leave_no_temporary_file_and_wait_in_the_cache_with_their_record(tmp_path, tiny_cifar_dir, mounts):
    point = mounts.tmpfs("1m")  # the database fits, one model's weights (2.8 MB) do not
    out = point / "out"
    env = fault_env(tmp_path)
    first = subprocess.run(sweep_argv(tiny_cifar_dir, out, "30,60"), env=env, capture_output=True, text=True, timeout=WAIT_S)
    assert first.returncode == 1, first.stderr[-3000:]
    assert leftovers(point) == []  # no .pt.<pid>.tmp filling the disk
    cache = tmp_path / "cache" / "pending"
    assert len(list(cache.rglob("*.json"))) == 2 and len(list(cache.rglob("*.weights"))) == 2
    assert "Traceback" not in first.stderr and rows(out) == []
    remount(point, "size=64m")
    second = subprocess.run(sweep_argv(tiny_cifar_dir, out, "30,60"), env=env, capture_output=True, text=True, timeout=WAIT_S)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "0 trial(s) run, 2 already done, 2 recovered" in second.stdout  # recorded without training again
    for row in rows(out):
        load_weights(out, row)
    assert not list(cache.rglob("*.json")) and leftovers(point) == []


def test_a_full_disk_at_the_final_write_keeps_the_result_and_the_next_claim_fails_cleanly(tmp_path, tiny_cifar_dir, mounts):
    point = mounts.tmpfs("8m")
    out, gate = point / "out", tmp_path / "gate"
    gate.mkdir()
    argv = sweep_argv(tiny_cifar_dir, out, "30,60")
    proc = subprocess.Popen(argv, env=fault_env(tmp_path, HZ_GATE_DIR=gate, HZ_GATE_LEVELS=30), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: list(gate.glob("ready-30-*")), "the first trial trained", proc=proc)
    fill(point)  # the disk fills while the trial finishes: weights, row and lease updates all fail now
    (gate / "go").touch()
    stdout, stderr = proc.communicate(timeout=WAIT_S)
    assert proc.returncode == 2, stderr[-3000:]
    assert "Traceback" not in stderr and "OperationalError" not in stderr  # the next claim failed with a StoreError
    assert "cannot write the results database" in stderr and "kept: a finished trial" in stderr
    assert "not stored (the next run trains them): A q=60 seed=0" in stderr
    assert leftovers(point) == [] and rows(out) == []
    (kept,) = (tmp_path / "cache" / "pending").rglob("*.json")
    assert json.loads(kept.read_text())["record"]["quality"] == 30
    (point / "filler").unlink()
    again = subprocess.run(argv, env=fault_env(tmp_path), capture_output=True, text=True, timeout=WAIT_S)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "1 trial(s) run, 1 already done, 1 recovered" in again.stdout  # q=30 recorded, only q=60 trained
    assert sorted(r["quality"] for r in rows(out)) == [30, 60]
    for row in rows(out):
        load_weights(out, row)


def test_after_a_failed_commit_the_store_raises_store_errors_and_works_again_when_there_is_room(tmp_path, mounts, monkeypatch):
    monkeypatch.setenv("HELMHOLTZ_CACHE_DIR", str(tmp_path / "cache"))
    point = mounts.tmpfs("1m")
    owner = Owner()
    with ResultStore(point / "out") as s:
        fill(point)
        stored, path = s.add_or_keep(record("k1", extra={"blob": "x" * 200_000}), owner)
        assert not stored and path.is_relative_to(tmp_path / "cache")  # kept in the user's cache, the disk being full
        with pytest.raises(StoreError, match="cannot write the results database"):
            s.claim(["k2"], owner, stale_after=60)
        (point / "filler").unlink()
        assert s.claim(["k2"], owner, stale_after=60) == "k2"  # the same connection writes again
    assert leftovers(point) == []


def test_save_weights_on_a_full_disk_leaves_no_temporary_file(tmp_path, mounts):
    torch = pytest.importorskip("torch")
    point = mounts.tmpfs("1m")
    rec = {"key": "k1", "state": {"w": torch.zeros(1_000_000)}}
    with pytest.raises(OSError):
        save_weights(point, rec)
    assert leftovers(point) == [] and rec["weights"] is None


# ------------------------------------------------------------------ storage turned read-only while a trial trains
def test_storage_turned_read_only_mid_trial_keeps_the_result_in_the_cache_and_the_next_run_records_it(tmp_path, tiny_cifar_dir, mounts):
    out, gate = tmp_path / "out", tmp_path / "gate"
    gate.mkdir()
    argv = sweep_argv(tiny_cifar_dir, out, "40")
    proc = subprocess.Popen(argv, env=fault_env(tmp_path, HZ_GATE_DIR=gate, HZ_GATE_LEVELS=40), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: list(gate.glob("ready-40-*")), "the trial trained", proc=proc)
    mounts.read_only(out)
    time.sleep(1.5)  # a few heartbeats fail while the trial still runs; they must not end it
    (gate / "go").touch()
    stdout, stderr = proc.communicate(timeout=WAIT_S)
    assert proc.returncode == 1, stderr[-3000:]
    assert "Traceback" not in stderr and "kept: a finished trial" in stderr
    (kept,) = (tmp_path / "cache" / "pending").rglob("*.json")
    assert kept.with_suffix(".weights").is_file()  # the weights wait with their record
    assert rows(out) == [] and leftovers(out) == []
    mounts.undo(out)  # writable again
    again = subprocess.run(argv, env=fault_env(tmp_path), capture_output=True, text=True, timeout=WAIT_S)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "0 trial(s) run, 1 already done, 1 recovered" in again.stdout  # recorded, not trained again
    (row,) = rows(out)
    load_weights(out, row)
    assert not list((tmp_path / "cache" / "pending").rglob("*.json"))


# ------------------------------------------------------------------ workers that die
def worker_pids(parent):
    """The spawned worker processes of the sweep ``parent`` (not multiprocessing's resource tracker)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            ppid = int(proc.joinpath("stat").read_text().rsplit(")", 1)[1].split()[1])
            cmd = proc.joinpath("cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == parent and b"spawn_main" in cmd:
            pids.append(int(proc.name))
    return pids


def test_after_a_worker_is_killed_the_summary_says_what_was_stored(tmp_path, tiny_cifar_dir):
    if not Path("/proc/self/stat").exists():
        pytest.skip("needs Linux's /proc to find the worker processes")
    out, gate = tmp_path / "out", tmp_path / "gate"
    gate.mkdir()
    argv = sweep_argv(tiny_cifar_dir, out, "10,40,70,95", "--trials-per-device", "2")
    proc = subprocess.Popen(argv, env=fault_env(tmp_path, HZ_GATE_DIR=gate, HZ_GATE_LEVELS=95), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ready = wait_for(lambda: list(gate.glob("ready-95-*")), "the last trial trained", proc=proc)
    gated = int(ready[0].read_text())

    def three_stored_and_both_workers_up():
        return (out / "results.sqlite").is_file() and len(rows(out)) == 3 and len(worker_pids(proc.pid)) == 2

    wait_for(three_stored_and_both_workers_up, "three trials stored", proc=proc)
    (idle,) = [p for p in worker_pids(proc.pid) if p != gated]
    os.kill(idle, signal.SIGKILL)  # the other worker, its trials stored, dies while it waits for the last one
    (gate / "go").touch()
    stdout, stderr = proc.communicate(timeout=WAIT_S)
    assert len(rows(out)) == 4
    assert proc.returncode == 2, stderr[-3000:]
    assert "was killed by SIGKILL" in stderr and "every trial of the sweep is stored" in stderr
    assert "go to the next run" not in stderr
    assert "4 trial(s) run, 0 already done, of 4" in stdout  # what the dead worker stored counts


NO_MAIN_GUARD = """
import sys
from helmholtz.experiments.sweep import plan_trials, run_sweep

specs = plan_trials("cifar10", ["A"], [10, 90], [0], "fast", 1, 48, 24)
result = run_sweep(specs, sys.argv[2], data_dir=sys.argv[1], trials_per_device=2, progress=False)
print("RESULT", result.ran, result.missing, result.error, flush=True)
sys.exit(0 if result.error is None and not result.failed else 3)
"""


def test_workers_that_crash_at_start_fail_the_sweep_and_say_why(tmp_path, tiny_cifar_dir):
    script = tmp_path / "no_main_guard.py"  # each worker imports it again and tries to start a sweep of its own
    script.write_text(NO_MAIN_GUARD)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(script), str(tiny_cifar_dir), str(tmp_path / "out")], env=env, capture_output=True,
                          text=True, timeout=WAIT_S)
    assert done.returncode == 3, done.stdout + done.stderr[-3000:]
    assert done.stdout.startswith("RESULT 0 ['cifar10|A|q=10|") and "exited with status 1 before reporting" in done.stdout
    assert "if __name__ == '__main__':" in done.stdout and "2 trial(s) of the sweep are not stored and go to the next run" in done.stdout
    assert rows(tmp_path / "out") == []
