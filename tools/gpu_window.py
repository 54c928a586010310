"""Sections of a short GPU window, run so that their figures survive anything.

tools/gpu_check.py and tools/gpu_science.py (the two commands of a GPU window,
see tools/README-gpu-check.md) run their work as *sections*: each one a
process of its own, in a process group of its own, under a time limit of its
own, all under one overall budget. What a window writes under ``out``:

``<name>.json``
    The summary, rewritten (atomically) when the window starts, when a section
    starts (it is then marked ``running``) and when it ends: per section its
    ``status``, ``reason``, ``seconds``, ``limit_s`` and ``figures``.
``<name>.jsonl``
    One line per section, appended the moment it ends.
``<name>.log``
    Every section's output, appended as it is printed.

A section reports by printing tagged lines (:func:`figures`, :func:`result`):
figures are merged as they come, so a section killed half-way keeps those it
printed. Its status is

* ``ok``, ``failed`` or ``skipped``: what it declared with :func:`result`;
* ``failed`` when it exits non-zero, dies of a signal, or exits 0 *without*
  a result line (nothing measured is never "ok");
* ``timeout`` when it outlived its limit (then its whole process group, its
  children too, is killed: pytest, benchmarks, sweep workers, sanitizers);
* ``skipped`` when the budget left no room or a section it needs did not pass;
* ``not run`` when the window stopped before it (e.g. no GPU after ``env``).

This module is shared by both commands and by tests/test_gpu_check.py; it
imports nothing outside the standard library.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

FIGURES_TAG = "HZ_FIGURES "
RESULT_TAG = "HZ_RESULT "
DECLARED = ("ok", "failed", "skipped")
GRACE_S = 3.0  # between SIGTERM and SIGKILL of a section's process group


def _plain(value):
    """JSON for NumPy scalars, paths and the like."""
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def figures(**values) -> None:
    """Print figures for the summary now (merged with earlier ones; a later key replaces an earlier one)."""
    print(FIGURES_TAG + json.dumps(values, default=_plain), flush=True)


def result(status: str, reason: str | None = None) -> None:
    """Declare the section's verdict: ``ok``, ``failed`` or ``skipped`` (with why)."""
    if status not in DECLARED:
        raise ValueError(f"status must be one of {DECLARED}; got {status!r}")
    print(RESULT_TAG + json.dumps({"status": status, "reason": reason}), flush=True)


def parse(text: str) -> tuple[dict, dict | None]:
    """The merged figures and the last result line in a section's output."""
    merged: dict = {}
    verdict = None
    for line in text.splitlines():
        try:
            if line.startswith(FIGURES_TAG):
                merged.update(json.loads(line[len(FIGURES_TAG):]))
            elif line.startswith(RESULT_TAG):
                verdict = json.loads(line[len(RESULT_TAG):])
        except ValueError:  # a line cut short by a kill
            continue
    return merged, verdict


def _live_members(pgid: int) -> list[int] | None:
    """PIDs of the group's processes that are not zombies (Linux /proc), or None where /proc can't tell."""
    proc = Path("/proc")
    if not (proc / "self" / "stat").exists():
        return None
    members = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) ": state ppid pgrp ...
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def group_alive(pgid: int) -> bool:
    """Whether a process of the group still runs (zombies waiting to be reaped don't count)."""
    members = _live_members(pgid)
    if members is not None:
        return bool(members)
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def kill_group(pgid: int, grace: float = GRACE_S) -> bool:
    """SIGTERM the process group, then SIGKILL what is left after ``grace`` s; True if anything was running."""
    if not group_alive(pgid):
        return False
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    except PermissionError:  # only zombies (or another user's processes) are left
        return False
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and group_alive(pgid):
        time.sleep(0.05)
    if group_alive(pgid):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return True


def _own_group() -> None:  # pragma: no cover - runs in the child between fork and exec
    """A section's process: a process group of its own (killed as one), in the caller's session.

    Not a new session: where a window's command is ended, every process of its
    session is ended with it, and a section must not outlive the command.
    On Linux the section also gets SIGTERM if the window itself dies.
    """
    os.setpgid(0, 0)
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except Exception:  # noqa: BLE001 - best effort
            pass


def write_json(path: Path, doc: dict) -> None:
    """Replace ``path`` atomically (a reader never sees half a file)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2, default=_plain))
    os.replace(tmp, path)


@dataclass
class Section:
    """One section: its command, its cap in seconds, what it needs, what reads its artifacts afterwards."""

    name: str
    cap_s: float
    argv: list[str]
    needs: tuple[str, ...] = ()
    stop_unless_ok: str | Callable[[dict], str] | None = None  # when this section is not ok: the window stops, with this line
    digest: Callable[[], dict] | None = None  # extra figures read after the section, whatever its end
    min_s: float = 10.0  # skipped when less than this is left
    env: dict = field(default_factory=dict)
    prepare: Callable[["Section", dict], str | None] | None = None  # just before it runs: may set argv / cap_s, or return why to skip it


class Window:
    """Runs sections in order under ``budget_s`` seconds, writing ``out/<name>.{json,jsonl,log}``."""

    def __init__(self, out: Path, name: str, budget_s: float, env: dict, meta: dict | None = None,
                 cwd: Path | None = None, margin_s: float = GRACE_S + 2.0):  # a kill (and its grace) still ends within the budget
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.budget_s = float(budget_s)
        self.env = env
        self.cwd = cwd
        self.margin_s = margin_s
        self.t0 = time.monotonic()
        self.current: subprocess.Popen | None = None
        self.json_path = self.out / f"{name}.json"
        self.jsonl_path = self.out / f"{name}.jsonl"
        self.log_path = self.out / f"{name}.log"
        for path in (self.jsonl_path, self.log_path):  # this window's own files: a second run into ``out`` starts them anew
            path.unlink(missing_ok=True)
        self.summary = {"tool": name, "started": time.strftime("%Y-%m-%d %H:%M:%S"), "budget_s": self.budget_s,
                        **(meta or {}), "plan": [], "sections": {}, "elapsed_s": 0.0, "finished": False,
                        "stopped": None, "failed": []}

    def left(self) -> float:
        return self.budget_s - (time.monotonic() - self.t0)

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def save(self) -> None:
        self.summary["elapsed_s"] = round(self.elapsed(), 1)
        self.summary["failed"] = [n for n, s in self.summary["sections"].items() if s["status"] in ("failed", "timeout")]
        write_json(self.json_path, self.summary)

    def say(self, text: str) -> None:
        print(f"[{self.name}] {text}", flush=True)

    def record(self, name: str, entry: dict) -> None:
        self.summary["sections"][name] = entry
        self.save()
        with open(self.jsonl_path, "a") as f:
            f.write(json.dumps({"section": name, **entry}, default=_plain) + "\n")
        reason = f"  ({entry['reason']})" if entry.get("reason") else ""
        self.say(f"{name:<9} {entry['status']:<8} {entry['seconds']:>6.1f} s{reason}")

    def log(self, text: str) -> None:
        with open(self.log_path, "a") as f:
            f.write(text)

    def run_one(self, sec: Section) -> dict:
        limit = min(sec.cap_s, self.left() - self.margin_s)
        if limit < min(sec.min_s, sec.cap_s):
            entry = {"status": "skipped", "reason": f"out of time: {max(0.0, self.left()):.0f} s of the {self.budget_s:.0f} s budget left",
                     "seconds": 0.0, "limit_s": 0.0, "figures": {}}
            self.record(sec.name, entry)
            return entry
        started = self.elapsed()
        self.summary["sections"][sec.name] = {"status": "running", "reason": None, "seconds": None,
                                             "limit_s": round(limit, 1), "started_at_s": round(started, 1), "figures": {}}
        self.save()
        self.log(f"\n==================== {sec.name} (limit {limit:.0f} s, at {started:.1f} s) ====================\n")
        offset = self.log_path.stat().st_size
        env = {**self.env, **sec.env, "HZ_SECTION_SECONDS": str(int(limit))}
        t0 = time.monotonic()
        with open(self.log_path, "ab") as log:
            proc = subprocess.Popen(sec.argv, cwd=self.cwd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env=env, preexec_fn=_own_group)
            self.current = proc
            self.summary["sections"][sec.name]["pid"] = proc.pid  # its process group, while it runs
            self.save()
            timed_out = False
            try:
                rc = proc.wait(timeout=limit)
            except subprocess.TimeoutExpired:
                timed_out = True
                kill_group(proc.pid)
                rc = proc.wait()
            # a section that ended leaves nothing behind either (daemons, workers, sanitizer children)
            leftovers = kill_group(proc.pid, grace=1.0)
            self.current = None
        seconds = time.monotonic() - t0
        with open(self.log_path, "rb") as f:
            f.seek(offset)
            text = f.read().decode(errors="replace")
        figs, verdict = parse(text)
        if timed_out:
            status, reason = "timeout", f"killed at its {limit:.0f} s limit (with its process group)"
        elif rc < 0:
            status, reason = "failed", f"killed by {signal.Signals(-rc).name}"
        elif rc != 0:
            status, reason = "failed", (verdict or {}).get("reason") or f"exit {rc}"
        elif verdict is None:
            status, reason = "failed", "ended without a result line: nothing was reported"
        else:
            status, reason = verdict["status"], verdict.get("reason")
        if leftovers and not timed_out:
            figs["left_processes_killed"] = True
        if sec.digest is not None:
            try:
                figs.update(sec.digest())
            except Exception as exc:  # noqa: BLE001 - a digest never loses the section's own figures
                figs["digest_error"] = f"{type(exc).__name__}: {exc}"
        entry = {"status": status, "reason": reason, "seconds": round(seconds, 1), "limit_s": round(limit, 1),
                 "started_at_s": round(started, 1), "exit": rc, "figures": figs}
        self.log(f"\n---- {sec.name}: {status}" + (f" ({reason})" if reason else "") + f" after {seconds:.1f} s\n")
        self.record(sec.name, entry)
        return entry

    def run(self, sections: list[Section]) -> int:
        """Run ``sections`` in order; 0 when none failed or timed out, 3 when the window was stopped, else 1."""
        self.summary["plan"] = [{"name": s.name, "cap_s": s.cap_s} for s in sections]
        self.save()

        def interrupted(signum, _frame):  # the window itself is being stopped: take the running section with it
            if self.current is not None:
                kill_group(self.current.pid, grace=1.0)
            running = [n for n, s in self.summary["sections"].items() if s["status"] == "running"]
            for n in running:
                self.summary["sections"][n].update(status="failed", reason=f"the window got {signal.Signals(signum).name}")
            self.summary["stopped"] = f"interrupted by {signal.Signals(signum).name}"
            self.save()
            raise SystemExit(128 + signum)

        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, interrupted)
        self.say(f"budget {self.budget_s:.0f} s; sections: " + ", ".join(f"{s.name} (<= {s.cap_s:.0f} s)" for s in sections))
        stopped = None
        for i, sec in enumerate(sections):
            missing = [n for n in sec.needs if self.summary["sections"].get(n, {}).get("status") != "ok"]
            if missing:
                self.record(sec.name, {"status": "skipped", "reason": f"needs {', '.join(missing)}, which did not pass",
                                       "seconds": 0.0, "limit_s": 0.0, "figures": {}})
                continue
            why = sec.prepare(sec, self.summary) if sec.prepare is not None else None
            if why:
                self.record(sec.name, {"status": "skipped", "reason": why, "seconds": 0.0, "limit_s": 0.0, "figures": {}})
                continue
            entry = self.run_one(sec)
            if sec.stop_unless_ok and entry["status"] != "ok":
                stopped = sec.stop_unless_ok(entry) if callable(sec.stop_unless_ok) else sec.stop_unless_ok
                for rest in sections[i + 1:]:
                    self.summary["sections"][rest.name] = {"status": "not run", "reason": stopped, "seconds": 0.0,
                                                           "limit_s": 0.0, "figures": {}}
                break
        self.summary["stopped"] = stopped
        self.summary["finished"] = True
        self.save()
        failed = self.summary["failed"]
        if stopped:
            print(f"{self.name}: {stopped}", flush=True)
            return 3
        self.say(f"{len(self.summary['sections'])} sections in {self.elapsed():.1f} s; failed: {', '.join(failed) or 'none'}; "
                 f"summary in {self.json_path}")
        return 1 if failed else 0


def python_env(root: Path, paths: list[Path] = (), extra: dict | None = None) -> dict:
    """The environment of a section: the repository (and ``paths``) on the Python path, unbuffered output."""
    env = dict(os.environ)
    paths = [str(root)] + [str(p) for p in paths]
    env["PYTHONPATH"] = os.pathsep.join(paths + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def caps_from_env(caps: dict, variable: str) -> dict:
    """``caps`` with overrides from ``$variable`` ("name=seconds,name=seconds"); unknown names are an error."""
    text = os.environ.get(variable, "").strip()
    out = dict(caps)
    for item in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = item.partition("=")
        if name not in caps:
            raise SystemExit(f"{variable}: unknown section {name!r} (sections: {', '.join(caps)})")
        try:
            out[name] = float(value)
        except ValueError:
            raise SystemExit(f"{variable}: {item!r} is not name=seconds") from None
    return out


if __name__ == "__main__":  # pragma: no cover - a library for the two commands
    sys.exit("tools/gpu_window.py is used by tools/gpu_check.py and tools/gpu_science.py")
