"""Data at scale, side by side in one run: prepare's throughput against Pool loops, and flat memory in N.

1. **Prepare throughput.** A folder of photographs (made here: CIFAR-10 test
   images upscaled with Pillow's bicubic filter to a random 300..500 x
   300..500 each, seeded, saved as JPEG quality 90, one folder per class) is
   brought to 64x64 (shorter side, then centre crop) by

   * ``helmholtz prepare`` (every core, shards written, hashed and fsynced);
   * a ``multiprocessing.Pool`` loop over the same cores with Pillow
     (``Image.open(f).convert("RGB")``, ``ImageOps.fit`` to 64x64, bicubic);
   * the same loop with simplejpeg (``decode_jpeg(min_width=64,
     min_height=64)``, libjpeg-turbo's DCT scaling, then ``ImageOps.fit``);
   * today's in-memory folder loader, ``load_image_folder(size=(64, 64))``,
     one core.

2. **Peak RSS in N.** CIFAR-10's training images tiled to 50k, 200k and 1M
   images are prepared once (``helmholtz.data.prepare``, no resize); then, each
   in a fresh process, ``helmholtz info --split train --qualities 20`` and the
   sweep's preparation of one trial (``image_runner.RUNNER.prepare`` at q=20 on
   the CPU: both splits compressed, the bits counted, the fingerprint hashed).

3. **info at 9 qualities over 1M 32x32 images**, wall time (one process).

Run ``python benchmarks/bench_data.py`` (``--sizes``, ``--photos``, ``--skip``
trim it). Ratios are within this run; absolute times depend on the load,
which is printed (``os.getloadavg``) before and after each step.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import cifar_path  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SIZE = 64


def _load() -> str:
    return "/".join(f"{v:.1f}" for v in os.getloadavg())


def make_photos(root: Path, n: int, cifar: Path) -> Path:
    from PIL import Image

    marker = root / f".made-{n}"
    if marker.exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    with np.load(cifar) as z:
        x, y = z["x_test"], z["y_test"]
    rng = np.random.default_rng(0)
    for i in range(n):
        h, w = (int(v) for v in rng.integers(300, 501, 2))
        folder = root / f"class{int(y[i % len(y)])}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(x[i % len(x)]).resize((w, h), Image.Resampling.BICUBIC).save(folder / f"{i:05d}.jpg", quality=90)
    marker.write_text("")
    return root


def _pillow_one(path: str) -> np.ndarray:
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        return np.asarray(ImageOps.fit(im.convert("RGB"), (SIZE, SIZE), Image.Resampling.BICUBIC))


def _simplejpeg_one(path: str) -> np.ndarray:
    import simplejpeg
    from PIL import Image, ImageOps

    with open(path, "rb") as f:
        arr = simplejpeg.decode_jpeg(f.read(), colorspace="RGB", min_width=SIZE, min_height=SIZE)
    return np.asarray(ImageOps.fit(Image.fromarray(arr), (SIZE, SIZE), Image.Resampling.BICUBIC))


def _pool_loop(fn, files: list[str], cores: int) -> np.ndarray:
    out = np.empty((len(files), SIZE, SIZE, 3), np.uint8)
    with Pool(cores) as pool:
        for k, arr in enumerate(pool.imap(fn, files, chunksize=32)):
            out[k] = arr
    return out


def bench_prepare(photos: Path, work: Path, cores: int, skip_loader: bool, repeats: int) -> list[tuple[str, float]]:
    """Files per second of each reader, the best of ``repeats`` rounds that alternate them (load drifts between rounds)."""
    from helmholtz.cli import main
    from helmholtz.data import load_image_folder

    files = sorted(str(p) for p in photos.rglob("*.jpg"))
    out = work / "prepared-photos"

    def prepare() -> None:
        shutil.rmtree(out, ignore_errors=True)
        assert main(["prepare", str(photos), "--size", f"{SIZE}x{SIZE}", "--out", str(out), "--workers", str(cores), "--no-progress"]) == 0

    readers = {f"Pool({cores}) loop, Pillow": lambda: _pool_loop(_pillow_one, files, cores)}
    try:
        import simplejpeg  # noqa: F401

        readers[f"Pool({cores}) loop, simplejpeg"] = lambda: _pool_loop(_simplejpeg_one, files, cores)
    except ImportError:
        print("simplejpeg is not installed: pip install simplejpeg", file=sys.stderr)
    if not skip_loader:
        readers["load_image_folder (one core, in memory)"] = lambda: load_image_folder(photos, size=(SIZE, SIZE), fit="crop")
    readers[f"helmholtz prepare ({cores} workers)"] = prepare
    best = {name: 0.0 for name in readers}
    for _ in range(repeats):
        for name, run in readers.items():
            if "load_image_folder" in name and best[name]:
                continue  # one round of the slow single-core loader is enough
            t0 = time.perf_counter()
            run()
            best[name] = max(best[name], len(files) / (time.perf_counter() - t0))
    return list(best.items())


def tiled_set(work: Path, n: int, cifar: Path) -> Path:
    from helmholtz.data import ArrayReader, prepare

    out = work / f"tiled-{n}"
    if (out / "manifest.json").exists():
        return out
    with np.load(cifar) as z:
        x, y, xt, yt = z["x_train"], z["y_train"], z["x_test"], z["y_test"]

    class Tiles(ArrayReader):
        def __init__(self, count):
            super().__init__(x, y, name="cifar10-tiled", split="train", classes=[str(i) for i in range(10)], identity=f"tiled:{count}")
            self.count = count
            self.labels = np.resize(y.astype(np.int64), count)

        def _read(self, indices):
            return x[indices % len(x)]

    prepare(f"cifar10 tiled to {n}", {"train": Tiles(n), "test": ArrayReader(xt, yt, name="cifar10-tiled", split="test",
                                                                                 classes=[str(i) for i in range(10)])},
            out, size=(32, 32), workers=1, progress=False)
    return out


def peak_rss_mib(code: str) -> tuple[float, float, str]:
    """(peak RSS in MiB, wall seconds, output) of ``python -c code`` in a fresh process."""
    wrapper = (
        "import resource, subprocess, sys, time\n"
        "t0 = time.perf_counter()\n"
        f"p = subprocess.run([sys.executable, '-c', {code!r}], capture_output=True, text=True)\n"
        "wall = time.perf_counter() - t0\n"
        "print(p.stdout[-2000:] + p.stderr[-2000:], file=sys.stderr)\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, wall, p.returncode)\n"
    )
    done = subprocess.run([sys.executable, "-c", wrapper], capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    rss, wall, rc = done.stdout.split()[-3:]
    if rc != "0":
        raise RuntimeError(done.stderr[-3000:])
    return float(rss), float(wall), done.stderr


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default=None)
    p.add_argument("--work", default=None, help="where the photographs and tiled sets are kept (default: a folder in $TMPDIR)")
    p.add_argument("--photos", type=int, default=10_000)
    p.add_argument("--sizes", default="50000,200000,1000000")
    p.add_argument("--repeats", type=int, default=2, help="rounds of the throughput readers, best of them (default 2)")
    p.add_argument("--skip", default="", help="comma-separated: prepare, rss, info9, loader")
    args = p.parse_args()
    cifar = cifar_path(args.data_dir)
    if cifar is None:
        sys.exit("needs cifar10.npz: pass --data-dir or set HELMHOLTZ_DATA")
    skip = set(filter(None, args.skip.split(",")))
    work = Path(args.work or Path(tempfile.gettempdir()) / "helmholtz-bench-data")
    work.mkdir(parents=True, exist_ok=True)
    cores = len(os.sched_getaffinity(0))
    print(f"# bench_data: {cores} cores, load average at start {_load()}\n")
    if "prepare" not in skip:
        photos = make_photos(work / f"photos-{args.photos}", args.photos, cifar)
        print(f"## Prepare throughput: {args.photos:,} JPEGs of 300..500 px (CIFAR-10 test images upscaled, bicubic, q=90) to {SIZE}x{SIZE}, "
              f"best of {args.repeats} alternating rounds\n")
        rows = bench_prepare(photos, work, cores, "loader" in skip, args.repeats)
        best_loop = max(r for name, r in rows if "loop" in name)
        loader = next((r for name, r in rows if "load_image_folder" in name), None)
        print("| reader | files/s | vs the faster Pool loop | vs load_image_folder |\n| --- | ---: | ---: | ---: |")
        for name, rate in rows:
            print(f"| {name} | {rate:,.0f} | {rate / best_loop:.2f}x | {rate / loader:.2f}x |" if loader else f"| {name} | {rate:,.0f} | {rate / best_loop:.2f}x | |")
        print(f"\nload average after: {_load()}\n")
    sizes = [int(s) for s in args.sizes.split(",") if s]
    if "rss" not in skip:
        print("## Peak RSS (fresh process each; CIFAR-10 train tiled; info --qualities 20; sweep preparation of one trial at q=20)\n")
        print("| images | pixels on disk | info peak RSS | info wall | sweep preparation peak RSS | preparation wall |\n| ---: | ---: | ---: | ---: | ---: | ---: |")
        for n in sizes:
            out = tiled_set(work, n, cifar)
            info_rss, info_wall, _ = peak_rss_mib(
                f"from helmholtz.cli import main; raise SystemExit(main(['info', '--dataset', 'prepared:{out}', '--split', 'train', '--qualities', '20', '--workers', '1']))")
            prep_rss, prep_wall, _ = peak_rss_mib(
                "from helmholtz.data import load_dataset\n"
                "from helmholtz.experiments.image_runner import RUNNER\n"
                "from helmholtz.experiments.runners import TrainOptions\n"
                f"p = RUNNER.prepare(load_dataset('prepared:{out}'), 20, TrainOptions())\n"
                "print(p.rate)\n")
            print(f"| {n:,} | {n * 3072 / 2**30:.2f} GiB | {info_rss:,.0f} MiB | {info_wall:.0f} s | {prep_rss:,.0f} MiB | {prep_wall:.0f} s |")
        print(f"\nload average after: {_load()}\n")
    if "info9" not in skip:
        n = max(sizes)
        out = tiled_set(work, n, cifar)
        rss, wall, log = peak_rss_mib(
            f"from helmholtz.cli import main; raise SystemExit(main(['info', '--dataset', 'prepared:{out}', '--split', 'train']))")
        print(f"## info over {n:,} 32x32 images at the paper's 9 qualities\n")
        print(f"wall time {wall:.0f} s ({n * 9 / wall:,.0f} image-qualities/s), peak RSS {rss:,.0f} MiB, load average after {_load()}\n")
        print("```text\n" + "\n".join(line for line in log.splitlines() if line.strip())[-1500:] + "\n```")


if __name__ == "__main__":
    main()
