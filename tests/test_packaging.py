"""The distribution as a user gets it: ``python -m build``'s sdist and wheel, installed into a fresh venv.

One wheel is built per run (``python -m build``: the sdist first, then the
wheel from the unpacked sdist, in an isolated environment whose build
requirements come from the package index) and installed with only its base
dependency, NumPy, into one venv. That venv is both the wheel check (import,
a round trip equal to Pillow, ``helmholtz --help``, the CUDA sources as
package data) and the base-only install of issue 12: every command and API
entry point that needs an extra stops with exit status 2 / MissingExtra and
the exact ``pip install 'helmholtz-ml[extra]'``, before it writes anything.
``make wheel-check`` runs this file alone.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import numpy as np
import pytest

from helmholtz._extras import MODULES_OF

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def _run(cmd, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=900, **kwargs)


def _copy_source(target: Path) -> None:
    """Copy the tracked and the untracked-but-not-ignored files of the checkout to ``target``."""
    listed = _run(["git", "-C", REPO, "ls-files", "-z", "--cached", "--others", "--exclude-standard"])
    if listed.returncode != 0:  # not a git checkout (an unpacked sdist): copy all but build outputs
        shutil.copytree(REPO, target, ignore=shutil.ignore_patterns(".git", ".venv*", "build", "dist", "*.egg-info", "__pycache__", "*.so"))
        return
    for name in filter(None, listed.stdout.split("\0")):
        src = REPO / name
        if src.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target / name)


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> dict:
    """The sdist, the wheel and the build log of ``python -m build``."""
    pytest.importorskip("build", reason="python -m build needs the build package (the test extra installs it)")
    out = tmp_path_factory.mktemp("dist")
    # Build from a copy of the source as git sees it: building in place would leave an egg-info folder in
    # the checkout, whose entry points then shadow the venv's install for any later run from the repo root.
    source = tmp_path_factory.mktemp("source") / "helmholtz"
    _copy_source(source)
    proc = _run([sys.executable, "-m", "build", "--outdir", out, source], cwd=out)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-6000:]
    (sdist,) = out.glob("helmholtz_ml-*.tar.gz")
    (wheel,) = out.glob("helmholtz_ml-*.whl")
    return {"sdist": sdist, "wheel": wheel, "log": log}


@pytest.fixture(scope="module")
def base_venv(dist, tmp_path_factory) -> Path:
    """A fresh venv holding the wheel and NumPy only (pip installs from the local index)."""
    venv = tmp_path_factory.mktemp("venv") / "base"
    proc = _run([sys.executable, "-m", "venv", "--without-pip", venv])
    assert proc.returncode == 0, proc.stderr
    proc = _run([sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install", "-q", dist["wheel"]])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return venv


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """A folder outside the checkout (so the source tree is not imported) with a tiny cifar10.npz."""
    d = tmp_path_factory.mktemp("work")
    rng = np.random.default_rng(0)
    np.savez(d / "cifar10.npz", x_train=rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8), y_train=np.arange(4) % 2,
             x_test=rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8), y_test=np.arange(2))
    return d


def _env(work: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["HELMHOLTZ_DATA"] = str(work)
    return env


def _python(venv: Path, work: Path, code: str) -> subprocess.CompletedProcess:
    return _run([venv / "bin" / "python", "-c", code], cwd=work, env=_env(work))


# ------------------------------------------------------------------ what python -m build makes
def test_the_build_log_has_no_license_deprecation(dist):
    noisy = [line for line in dist["log"].splitlines() if "license" in line.lower() and re.search(r"warning|deprecat", line, re.I)]
    assert not noisy, "\n".join(noisy)
    assert "SetuptoolsDeprecationWarning" not in dist["log"]


def test_the_sdist_carries_the_c_core_the_kernels_and_the_cython_sources(dist):
    with tarfile.open(dist["sdist"]) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
        pkg_info = tar.extractfile(next(m for m in tar.getmembers() if m.name.endswith("/PKG-INFO"))).read().decode()
    csrc = {f"csrc/{p.name}" for p in (REPO / "csrc").iterdir() if p.suffix in (".c", ".h", ".cu", ".cuh")}
    assert csrc <= names, sorted(csrc - names)
    assert {"helmholtz/_codec/native.pyx", "helmholtz/_codec/entropy_native.pxi", "setup.py", "pyproject.toml", "MANIFEST.in"} <= names
    assert not any(n.endswith((".so", ".o")) or n == "helmholtz/_codec/native.c" for n in names)
    assert "Name: helmholtz-ml" in pkg_info and "License-Expression: BSD-3-Clause" in pkg_info


def test_the_wheel_carries_the_kernel_sources_as_package_data(dist):
    with zipfile.ZipFile(dist["wheel"]) as whl:
        names = set(whl.namelist())
        meta = whl.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    shipped = {f"helmholtz/_csrc/{p.name}" for p in (REPO / "csrc").iterdir() if p.suffix in (".h", ".cu", ".cuh")}
    assert "helmholtz/_csrc/hz_kernels.cu" in shipped and shipped <= names, sorted(shipped - names)
    assert any(re.fullmatch(r"helmholtz/_codec/native\.cpython-.*\.so", n) for n in names)
    assert {"helmholtz/py.typed", "helmholtz/_codec/native.pyi"} <= names
    assert "helmholtz/_codec/native.c" not in names
    assert "Name: helmholtz-ml" in meta and "License-Expression: BSD-3-Clause" in meta
    assert "Provides-Extra: experiments" in meta and "Provides-Extra: report" in meta


def test_the_extras_checked_at_run_time_are_the_ones_pyproject_declares():
    """helmholtz._extras.MODULES_OF names, per extra, the modules of pyproject.toml's requirements."""
    module_of = {"pillow": "PIL", "cupy-cuda12x": "cupy", "cupy-cuda13x": "cupy"}
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for extra, modules in MODULES_OF.items():
        names = {re.split(r"[<>=;\[ ]", req, maxsplit=1)[0].lower() for req in declared[extra]}
        assert {module_of.get(n, n) for n in names} == set(modules), extra


# ------------------------------------------------------------------ the wheel, installed with NumPy only
def test_the_installed_wheel_imports_from_the_venv_and_lists_only_numpy(base_venv, work):
    proc = _python(base_venv, work, "import helmholtz, importlib.metadata as m; print(helmholtz.__file__); "
                                    "print(sorted(d.metadata['Name'].lower() for d in m.distributions()))")
    assert proc.returncode == 0, proc.stderr
    where, dists = proc.stdout.splitlines()
    assert Path(where).is_relative_to(base_venv) and not Path(where).is_relative_to(REPO)
    assert json.loads(dists.replace("'", '"')) == ["helmholtz-ml", "numpy"]


def test_the_installed_wheel_round_trips_equal_to_pillow(base_venv, work, tmp_path):
    Image = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(5)
    x = np.clip(np.add.outer(np.arange(37), np.arange(45))[..., None] * 3 + rng.normal(0, 9, (37, 45, 3)), 0, 255).astype(np.uint8)
    np.save(tmp_path / "x.npy", x)
    proc = _python(base_venv, work, f"""
import numpy as np
from helmholtz import jpeg
assert "cpu" in jpeg.available_backends(), jpeg.available_backends()
x = np.load({str(tmp_path / 'x.npy')!r})
np.save({str(tmp_path / 'y.npy')!r}, jpeg.roundtrip(x[None], 75, backend="cpu")[0])
np.save({str(tmp_path / 'z.npy')!r}, jpeg.roundtrip(x[None], 75, subsampling="4:4:4", backend="numpy")[0])
""")
    assert proc.returncode == 0, proc.stderr
    for name, ss in (("y.npy", "4:2:0"), ("z.npy", "4:4:4")):
        buf = io.BytesIO()
        Image.fromarray(x).save(buf, "JPEG", quality=75, subsampling=ss)
        assert np.array_equal(np.load(tmp_path / name), np.asarray(Image.open(buf))), ss


def test_the_installed_wheel_finds_its_cuda_kernel_sources(base_venv, work):
    proc = _python(base_venv, work, "from helmholtz._codec.cuda import kernel_source_dir; print(kernel_source_dir())")
    assert proc.returncode == 0, proc.stderr
    found = Path(proc.stdout.strip())
    assert found.name == "_csrc" and found.is_relative_to(base_venv)
    assert {p.name for p in (REPO / "csrc").glob("*.cu*")} | {p.name for p in (REPO / "csrc").glob("*.h")} <= {p.name for p in found.iterdir()}


def test_helmholtz_help_runs_without_any_extra(base_venv, work):
    proc = _run([base_venv / "bin" / "helmholtz", "--help"], cwd=work, env=_env(work))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: helmholtz") and all(c in proc.stdout for c in ("sweep", "report", "info"))
    for command in ("sweep", "report", "info"):
        proc = _run([base_venv / "bin" / "helmholtz", command, "--help"], cwd=work, env=_env(work))
        assert proc.returncode == 0 and proc.stdout.startswith(f"usage: helmholtz {command}"), proc.stderr


@pytest.mark.parametrize(
    "argv, extra",
    [
        (["sweep", "--models", "A", "--qualities", "50", "--epochs", "1", "--out", "{out}"], "experiments"),
        (["sweep", "--dataset", "fsdd", "--models", "conv3", "--bitrates", "8", "--out", "{out}"], "experiments,audio"),
        (["info", "--qualities", "50", "--csv", "{out}"], "report"),
        (["report", "{out}"], "report"),
        (["report", "{out}", "--no-plots"], "report"),
    ],
)
def test_a_command_of_the_base_install_exits_2_with_the_pip_line_and_creates_nothing(base_venv, work, argv, extra, tmp_path):
    out = tmp_path / "X"
    proc = _run([base_venv / "bin" / "helmholtz", *[a.format(out=out) for a in argv]], cwd=work, env=_env(work))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"pip install 'helmholtz-ml[{extra}]'" in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not out.exists()
    assert sorted(p.name for p in work.iterdir()) == ["cifar10.npz"]


_ENTRY_POINTS = """
import json, sys
import numpy as np
import helmholtz
from helmholtz.errors import MissingExtra
out = sys.argv[1]
x = np.zeros((1, 16, 16, 3), np.uint8)

def sweep():
    from helmholtz.experiments.sweep import plan_trials, run_sweep
    return run_sweep(plan_trials("cifar10", ["A"], [50], [0], "fast", 1), out)

def report():
    from helmholtz.experiments.report import load_trials
    return load_trials(out)

def audio():
    from helmholtz import audio
    return audio.mp3_encode(np.zeros(1152, np.int16), 16000, 32)

calls = {
    "helmholtz.transforms.JPEG": lambda: __import__("helmholtz.transforms", fromlist=["JPEG"]).JPEG(50),
    "helmholtz.models.cifar_model": lambda: __import__("helmholtz.models", fromlist=["cifar_model"]).cifar_model("A"),
    "helmholtz.info.dataset_report": lambda: __import__("helmholtz.info", fromlist=["dataset_report"]).dataset_report(x, [50]),
    "helmholtz.info.plot_report": lambda: __import__("helmholtz.info", fromlist=["plot_report"]).plot_report(None, out),
    "run_sweep": sweep,
    "load_trials": report,
    "helmholtz.audio.mp3_encode": audio,
}
results = {}
for name, call in calls.items():
    try:
        call()
        results[name] = "no error"
    except MissingExtra as exc:
        results[name] = ["MissingExtra", exc.extra, str(exc)]
    except BaseException as exc:
        results[name] = ["other", type(exc).__name__, str(exc)]
print(json.dumps(results))
"""


def test_the_python_entry_points_of_the_base_install_raise_missing_extra(base_venv, work, tmp_path):
    out = tmp_path / "X"
    proc = _run([base_venv / "bin" / "python", "-c", _ENTRY_POINTS, out], cwd=work, env=_env(work))
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout)
    expected = {
        "helmholtz.transforms.JPEG": "torch",
        "helmholtz.models.cifar_model": "torch",
        "helmholtz.info.dataset_report": "report",
        "helmholtz.info.plot_report": "report",
        "run_sweep": "experiments",
        "load_trials": "report",
        "helmholtz.audio.mp3_encode": "audio",
    }
    for name, extra in expected.items():
        kind, got_extra, message = results[name]
        assert (kind, got_extra) == ("MissingExtra", extra), (name, results[name])
        assert f"pip install 'helmholtz-ml[{extra}]'" in message, (name, message)
    assert not out.exists()


def test_the_report_extra_named_by_the_hints_is_enough_for_info_and_report(dist, work, tmp_path):
    """``pip install 'helmholtz-ml[report]'`` (what info's and report's hints say) makes both commands run."""
    from helmholtz.experiments.store import ResultStore

    venv = tmp_path / "report-venv"
    assert _run([sys.executable, "-m", "venv", "--without-pip", venv]).returncode == 0
    proc = _run([sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install", "-q", f"{dist['wheel']}[report]"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    helmholtz = venv / "bin" / "helmholtz"
    proc = _run([helmholtz, "info", "--qualities", "20,80", "--csv", tmp_path / "t.csv", "--plot", tmp_path / "t.png"], cwd=work, env=_env(work))
    assert proc.returncode == 0, proc.stderr
    assert "cifar10 test: 2 images" in proc.stdout and (tmp_path / "t.csv").read_text().startswith("quality,")
    with ResultStore(tmp_path / "sweep"):
        pass  # an empty results database, as a sweep leaves it before its first trial
    proc = _run([helmholtz, "report", tmp_path / "sweep"], cwd=work, env=_env(work))
    assert proc.returncode == 0, proc.stderr
    assert "no finished trials" in proc.stderr and "Traceback" not in proc.stderr
