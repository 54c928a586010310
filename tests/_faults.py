"""Fault injection for the store's fault tests (tests/test_store_faults.py), loaded in sweep subprocesses.

A sweep subprocess (and the worker processes it spawns) imports this module at
start-up through a ``sitecustomize.py`` that :func:`sitecustomize` writes, and
then trains with the real image runner wrapped by :func:`_train`:

* ``HZ_GATE_DIR`` and ``HZ_GATE_LEVELS`` (comma-separated qualities): after a
  trial of one of those qualities has trained, the process writes
  ``ready-<quality>-<pid>`` into the gate folder and waits until a file ``go``
  appears there. The test acts (SIGSTOP, remount, fill the disk, kill a
  worker) at a known moment instead of racing a timer.
* ``HZ_PERTURB=1``: the final weights differ from process to process (as they
  do on a GPU or with ``--compile``), so that a file replaced by another
  process shows in its SHA-256.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

HOOK = "import _faults\n_faults.install()\n"


def _train(spec, ds, prepared, options):
    from helmholtz.experiments.image_runner import RUNNER as IMAGE

    result = IMAGE.train(spec, ds, prepared, options)
    state = result.get("state")
    if os.environ.get("HZ_PERTURB") and state:
        name = next(k for k, v in state.items() if v.is_floating_point())
        state[name] = state[name] + 1e-3 * (os.getpid() % 997 + 1)
    gate = os.environ.get("HZ_GATE_DIR")
    levels = {int(v) for v in os.environ.get("HZ_GATE_LEVELS", "").split(",") if v}
    if gate and spec.quality in levels:
        Path(gate, f"ready-{spec.quality}-{os.getpid()}").write_text(str(os.getpid()))
        while not Path(gate, "go").exists():
            time.sleep(0.05)
    return result


def _runner():
    from helmholtz.experiments.image_runner import RUNNER as IMAGE

    return dataclasses.replace(IMAGE, train=_train)


RUNNER = None


def install() -> None:
    """Make image trials train through :func:`_train` in this process."""
    global RUNNER
    if not (os.environ.get("HZ_GATE_DIR") or os.environ.get("HZ_PERTURB")):
        return
    from helmholtz.experiments import runners

    RUNNER = _runner()
    runners.register_runner("image", "_faults:RUNNER", replace=True)


def sitecustomize(folder: Path) -> Path:
    """Write the ``sitecustomize.py`` that installs the faults into ``folder``; returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(HOOK)
    return folder
