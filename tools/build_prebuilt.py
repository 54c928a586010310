"""Build the C extension for the device's Python (CPython 3.12, x86-64) into gpu-data/prebuilt/.

    python tools/build_prebuilt.py [--python /path/to/python3.12]     (make gpu-check-prep runs it)

The device image runs Python 3.12 (Ubuntu 24.04, glibc 2.39). An extension
built here for 3.12 travels inside gpu-data/ (no extra ``carry`` entry), so
tools/gpu_check.py's ``build`` section only copies it into place and checks
that it imports (seconds); where it does not import, that section builds from
source there instead (tens of seconds).

The build runs in a copy of the sources under build/py312/, in a venv of the
3.12 interpreter with pyproject's build requirements, so nothing in the
working tree changes; then the extension is checked there: it imports and its
round trip equals the NumPy reference backend. ``SOURCES.sha256`` beside it
holds the hash of the sources it was built from (:func:`sources_sha256`): the
device rebuilds rather than run an extension older than its sources.

:func:`write_dist_info` is how a tree that is not pip-installed still finds
helmholtz's backends, data sets and runners (entry points, read from
pyproject.toml): the device runs helmholtz from the tree, with no ``pip
install`` and so no setuptools floor except for a build from source.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "build" / "py312"
DEST = ROOT / "gpu-data" / "prebuilt"
CANDIDATES = ("python3.12", "/usr/bin/python3.12", "/usr/local/bin/python3.12", "/root/.pyenv/versions/3.12*/bin/python3.12",
              os.path.expanduser("~/.pyenv/versions/3.12*/bin/python3.12"))
CHECK = """
import numpy as np
from helmholtz import jpeg
import helmholtz._codec.native as n
x = np.random.default_rng(0).integers(0, 256, (4, 19, 35, 3), dtype=np.uint8)
for ss in ("4:2:0", "4:4:4"):
    assert np.array_equal(jpeg.roundtrip(x, 37, subsampling=ss, backend="cpu"),
                          jpeg.roundtrip(x, 37, subsampling=ss, backend="numpy")), ss
print(n.__file__)
"""


EXTENSION_SOURCES = ("csrc/*.c", "csrc/*.h", "helmholtz/_codec/*.pyx", "helmholtz/_codec/*.pxi", "setup.py")


def sources_sha256(root: Path = ROOT) -> str:
    """One hash over every file the C extension is built from (names and contents, in sorted order)."""
    h = hashlib.sha256()
    for path in sorted(p for pattern in EXTENSION_SOURCES for p in root.glob(pattern)):
        h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def write_dist_info(dest: Path, root: Path = ROOT) -> Path:
    """A minimal ``helmholtz_ml-<version>.dist-info`` in ``dest`` (METADATA, entry_points.txt) from pyproject.toml.

    With ``dest`` on ``sys.path``, ``importlib.metadata`` finds helmholtz's entry points (its codec
    backends, data sets and trial runners) for a tree run in place, as ``pip install -e .`` would.
    """
    try:
        import tomllib
    except ImportError:  # Python 3.10
        from pip._vendor import tomli as tomllib
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    ns: dict = {}
    exec((root / "helmholtz" / "_version.py").read_text(), ns)  # the version's one source (a literal)
    name, version = project["name"], ns["__version__"]
    info = Path(dest) / f"{name.replace('-', '_')}-{version}.dist-info"
    shutil.rmtree(info, ignore_errors=True)
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = []
    for group, entries in project.get("entry-points", {}).items():
        lines.append(f"[{group}]")
        lines += [f"{k} = {v}" for k, v in entries.items()]
        lines.append("")
    (info / "entry_points.txt").write_text("\n".join(lines))
    (info / "INSTALLER").write_text("helmholtz tools/build_prebuilt.py (the tree runs in place)\n")
    return info


def find_python(given: str | None) -> str | None:
    for pattern in ([given] if given else list(CANDIDATES)):
        for path in sorted(glob.glob(pattern)) or ([shutil.which(pattern)] if shutil.which(pattern) else []):
            try:
                out = subprocess.run([path, "-c", "import sys; print(sys.version_info[:2] == (3, 12))"], capture_output=True,
                                     text=True, timeout=30).stdout.strip()
            except (OSError, subprocess.TimeoutExpired):
                continue
            if out == "True":
                return path
    return None


def build_requirements() -> list[str]:
    text = (ROOT / "pyproject.toml").read_text()
    block = re.search(r"\[build-system\]\s*requires\s*=\s*\[(.*?)\]", text, re.S)
    return re.findall(r'"([^"]+)"', block.group(1)) if block else ["setuptools>=77", "wheel", "Cython>=3", "numpy>=2"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--python", default=os.environ.get("PY312"), help="a CPython 3.12 interpreter (default: found on this machine)")
    args = ap.parse_args(argv)
    py = find_python(args.python)
    if py is None:
        print("build_prebuilt: no CPython 3.12 found (pass --python or set PY312); the device will build the extension "
              "itself (tens of seconds of its time)")
        return 0
    venv = WORK / "venv"
    vpy = venv / "bin" / "python"
    if not vpy.exists():
        subprocess.run([py, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(vpy), "-m", "pip", "install", "-q", "--disable-pip-version-check", *build_requirements()], check=True)
    src = WORK / "src"
    shutil.rmtree(src, ignore_errors=True)
    src.mkdir(parents=True)
    for name in ("setup.py", "pyproject.toml", "README.md", "MANIFEST.in"):
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, src / name)
    shutil.copytree(ROOT / "csrc", src / "csrc")
    shutil.copytree(ROOT / "helmholtz", src / "helmholtz",
                    ignore=shutil.ignore_patterns("*.so", "native.c", "__pycache__"))
    jobs = str(os.cpu_count() or 1)
    subprocess.run([str(vpy), "setup.py", "-q", "build_ext", "--inplace", "-j", jobs], cwd=src, check=True)
    suffix = subprocess.run([str(vpy), "-c", "import sysconfig; print(sysconfig.get_config_var('EXT_SUFFIX'))"],
                            capture_output=True, text=True, check=True).stdout.strip()
    built = src / "helmholtz" / "_codec" / f"native{suffix}"
    meta = WORK / "meta"
    write_dist_info(meta, src)
    check = subprocess.run([str(vpy), "-c", CHECK], cwd=src, capture_output=True, text=True,
                           env={**os.environ, "PYTHONPATH": f"{src}{os.pathsep}{meta}"})
    if check.returncode != 0:
        print(check.stdout, check.stderr)
        raise SystemExit("build_prebuilt: the built extension failed its check")
    DEST.mkdir(parents=True, exist_ok=True)
    for old in DEST.glob("native*"):
        old.unlink()
    subprocess.run(["strip", "--strip-debug", str(built)], check=False)
    shutil.copy2(built, DEST / built.name)
    (DEST / "SOURCES.sha256").write_text(sources_sha256() + "\n")
    size = (DEST / built.name).stat().st_size
    print(f"build_prebuilt: {(DEST / built.name).relative_to(ROOT)} ({size / 2**20:.1f} MiB), built with {py}; "
          "it imports and equals the NumPy reference")
    return 0


if __name__ == "__main__":
    sys.exit(main())
