"""Fetch the peers the device image lacks, as wheels for Python 3.12 on x86-64, into .whl/ (git-ignored).

    python tools/fetch_gpu_wheels.py            # (make gpu-check-prep runs it)

The device machine reaches no network and everything that travels to it, the
repository and the carried paths together, must fit in 64 MiB. So each wheel
is checked against what it costs, and the large ones are slimmed:

* kornia + kornia-rs: kornia's differentiable JPEG (an approximation).
* nvidia-nvimgcodec-cu13: nvImageCodec, batched nvJPEG encode and decode on the
  GPU. The published wheel (25 MB) carries bindings for nine Pythons and CPU
  codecs; the copy made here keeps the CPython 3.12 binding, the core library
  and the nvJPEG extension only (about 5 MB), and says so in MANIFEST.json.
* nvidia-nvjpeg (13.0 series, as the device's CUDA 13.0): the nvJPEG library
  nvImageCodec loads. (torchvision's nvJPEG is on the device already.)
* nvidia-dali-cuda130 is *not* fetched: its wheel is about 200 MB, over the
  whole 64 MiB that travels. MANIFEST.json records why.

Writes .whl/*.whl and .whl/MANIFEST.json (versions, sizes, what was slimmed or
left out); tools/gpu_check.py installs the wheels on the device
(``pip install --no-index --no-deps --target``) and records the manifest.
"""

from __future__ import annotations

import argparse
import base64
import csv
import hashlib
import io
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEST = ROOT / ".whl"
CACHE = ROOT / "build" / "gpu-wheels"
PY = "312"
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")
WANTED = {
    "kornia": "0.9.0",
    "kornia-rs": "0.2.0",
    "nvidia-nvimgcodec-cu13": "0.9.0.20",
    "nvidia-nvjpeg": "13.0.4.44",
}
LEFT_OUT = {
    "nvidia-dali-cuda130": "2.4.0: its wheel is about 200 MB (199 MB measured with pip download), over the 64 MiB "
                           "that travels to the device; the bench records DALI as not installed",
}


def keep_nvimgcodec(name: str) -> bool:
    """Files of the nvImageCodec wheel the device needs: the 3.12 binding, the core, the nvJPEG extension."""
    if name.endswith("/") or ".dist-info/" in name:
        return True
    if "/nvimgcodec_impl.cpython-" in name:
        return f"/nvimgcodec_impl.cpython-{PY}-" in name
    if "/extensions/" in name:
        return "/libnvjpeg_ext." in name
    if "/include/" in name:
        return False
    return True


def slim_wheel(src: Path, dest: Path, keep) -> dict:
    """Copy wheel ``src`` to ``dest`` with only the files ``keep`` accepts, RECORD rewritten to match."""
    removed, kept_bytes = [], 0
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zout:
        record_name = next(n for n in zin.namelist() if n.endswith(".dist-info/RECORD"))
        rows = []
        for info in zin.infolist():
            if info.filename == record_name:
                continue
            if not keep(info.filename):
                removed.append(info.filename)
                continue
            data = zin.read(info.filename)
            zout.writestr(info, data)
            kept_bytes += len(data)
            if not info.filename.endswith("/"):
                digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
                rows.append((info.filename, f"sha256={digest}", str(len(data))))
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows(rows + [(record_name, "", "")])
        zout.writestr(record_name, buf.getvalue())
    return {"removed_files": len(removed), "removed": sorted(removed), "kept_bytes_unpacked": kept_bytes}


def download(name: str, version: str) -> Path:
    CACHE.mkdir(parents=True, exist_ok=True)
    norm = name.replace("-", "_")
    hits = sorted(CACHE.glob(f"{norm}-{version}-*.whl"))
    if hits:
        return hits[0]
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "--python-version", PY,
           "--implementation", "cp", "-d", str(CACHE)]
    for p in PLATFORMS:
        cmd += ["--platform", p]
    subprocess.run(cmd + [f"{name}=={version}"], check=True)
    hits = sorted(CACHE.glob(f"{norm}-{version}-*.whl"))
    if not hits:
        raise SystemExit(f"fetch_gpu_wheels: pip saved no wheel for {name}=={version} in {CACHE}")
    return hits[0]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.parse_args(argv)
    shutil.rmtree(DEST, ignore_errors=True)
    DEST.mkdir()
    manifest = {"python": f"cp{PY}", "wheels": {}, "left_out": LEFT_OUT}
    for name, version in WANTED.items():
        src = download(name, version)
        dest = DEST / src.name
        entry = {"version": version, "file": src.name, "published_bytes": src.stat().st_size}
        if name == "nvidia-nvimgcodec-cu13":
            info = slim_wheel(src, dest, keep_nvimgcodec)
            entry["slimmed"] = (f"kept the CPython 3.12 binding, libnvimgcodec and the nvJPEG extension; removed "
                                f"{info['removed_files']} files (other Pythons' bindings, CPU and other-format codecs, headers)")
            entry["removed"] = info["removed"]
        else:
            shutil.copy2(src, dest)
        entry["carried_bytes"] = dest.stat().st_size
        manifest["wheels"][name] = entry
        print(f"  {dest.name}: {entry['carried_bytes'] / 2**20:.1f} MiB" + (" (slimmed)" if "slimmed" in entry else ""))
    (DEST / "MANIFEST.json").write_text(json.dumps(manifest, indent=2))
    total = sum(p.stat().st_size for p in DEST.iterdir())
    print(f"fetch_gpu_wheels: .whl/ holds {total / 2**20:.1f} MiB; left out: {', '.join(LEFT_OUT)} (see .whl/MANIFEST.json)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
