"""Pack a CIFAR-10 subset that travels to the device machine with tools/gpu_check.sh and tools/gpu_science.sh.

The device machine reaches no network and ../shared/data does not travel; the
whole tree that does (tracked and untracked files, plus the carried paths) is
limited to 64 MiB. Raw CIFAR images take 3,072 bytes and general-purpose
compressors save little on them; lossless WebP over mosaics of 40 x 25 images
takes about 1,700 bytes an image, so ~20,000 training and 5,000 test images fit
beside the peers' wheels (.whl/, ~15 MiB) and the prebuilt extension.

    python tools/pack_gpu_data.py                     # 20,000 + 5,000 into gpu-data/
    python tools/pack_gpu_data.py --train 16000 --test 4000

The subset is class-balanced (the first images of each class, in file order).
The tool measures the tree that will travel (git's tracked and untracked files,
gpu-data/ with the prebuilt extension, and .whl/), shrinks the subset (keeping
the 4:1 split) until it fits under --limit-mib (default 60: 4 MiB are kept for
the repository to grow), checks that decoding gives the images back bit for
bit, and writes gpu-data/cifar10-subset.npz (an uncompressed container of the
WebP bytes). tools/gpu_check.py's env section unpacks it on the device into a
cifar10.npz for the benchmark and the science run.
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = ROOT / "gpu-data"
OUT = OUT_DIR / "cifar10-subset.npz"
TILES = (25, 40)  # images per mosaic: rows x columns
LIMIT_MIB = 64.0  # what the device tool carries, in all
MARGIN_MIB = 4.0  # kept free for the repository to grow between packing and the GPU window


def tree_bytes(extra: tuple[Path, ...] = ()) -> int:
    """Bytes of what travels: tracked + untracked-not-ignored files, and the given carried paths."""
    files = subprocess.run(["git", "ls-files", "-z", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True,
                           check=True).stdout.split(b"\0")
    total = sum((ROOT / f.decode()).stat().st_size for f in files if f and (ROOT / f.decode()).is_file())
    for p in extra:
        if p.is_file():
            total += p.stat().st_size
        elif p.is_dir():
            total += sum(q.stat().st_size for q in p.rglob("*") if q.is_file())
    return total


def balanced(y: np.ndarray, n: int) -> np.ndarray:
    """Indices of the first n // 10 images of each class (then the rest in order), sorted."""
    per = n // 10
    idx = np.concatenate([np.flatnonzero(y == c)[:per] for c in range(10)])
    if len(idx) < n:
        rest = np.setdiff1d(np.arange(len(y)), idx)[: n - len(idx)]
        idx = np.concatenate([idx, rest])
    return np.sort(idx)


def encode(images: np.ndarray, method: int) -> tuple[np.ndarray, np.ndarray]:
    """Lossless WebP of mosaics of TILES images; returns (bytes, offsets)."""
    from PIL import Image

    rows, cols = TILES
    per = rows * cols
    chunks, offsets = [], [0]
    for start in range(0, len(images), per):
        part = images[start:start + per]
        if len(part) < per:
            part = np.concatenate([part, np.zeros((per - len(part),) + part.shape[1:], part.dtype)])
        mosaic = part.reshape(rows, cols, 32, 32, 3).transpose(0, 2, 1, 3, 4).reshape(rows * 32, cols * 32, 3)
        buf = io.BytesIO()
        Image.fromarray(mosaic).save(buf, "WEBP", lossless=True, quality=100, method=method)
        chunks.append(np.frombuffer(buf.getvalue(), np.uint8))
        offsets.append(offsets[-1] + len(chunks[-1]))
    return np.concatenate(chunks), np.asarray(offsets, np.int64)


def decode(data: np.ndarray, offsets: np.ndarray, count: int) -> np.ndarray:
    """The images back from encode()'s bytes."""
    from PIL import Image

    rows, cols = TILES
    out = []
    for k in range(len(offsets) - 1):
        mosaic = np.asarray(Image.open(io.BytesIO(data[offsets[k]:offsets[k + 1]].tobytes())).convert("RGB"))
        out.append(mosaic.reshape(rows, 32, cols, 32, 3).transpose(0, 2, 1, 3, 4).reshape(rows * cols, 32, 32, 3))
    return np.concatenate(out)[:count]


def load_subset(path: Path) -> dict[str, np.ndarray]:
    """x_train, y_train, x_test, y_test from a packed file (used on the device)."""
    with np.load(path) as z:
        return {
            "x_train": decode(z["train_webp"], z["train_offsets"], int(z["n_train"])),
            "y_train": z["y_train"],
            "x_test": decode(z["test_webp"], z["test_offsets"], int(z["n_test"])),
            "y_test": z["y_test"],
        }


def pack(src: Path, n_train: int, n_test: int, method: int) -> dict:
    with np.load(src) as z:
        xtr, ytr, xte, yte = z["x_train"], z["y_train"].reshape(-1), z["x_test"], z["y_test"].reshape(-1)
    itr, ite = balanced(ytr, n_train), balanced(yte, n_test)
    tw, to = encode(xtr[itr], method)
    ew, eo = encode(xte[ite], method)
    OUT_DIR.mkdir(exist_ok=True)
    np.savez(OUT, train_webp=tw, train_offsets=to, y_train=ytr[itr].astype(np.int64), n_train=np.int64(len(itr)),
             test_webp=ew, test_offsets=eo, y_test=yte[ite].astype(np.int64), n_test=np.int64(len(ite)))
    back = load_subset(OUT)
    if not (np.array_equal(back["x_train"], xtr[itr]) and np.array_equal(back["x_test"], xte[ite])):
        raise SystemExit("pack_gpu_data: decoding did not give the images back exactly")
    return {"train": len(itr), "test": len(ite), "bytes": OUT.stat().st_size}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--src", default=None, help="cifar10.npz (default: $HELMHOLTZ_DATA or ../shared/data)")
    ap.add_argument("--train", type=int, default=20000)
    ap.add_argument("--test", type=int, default=5000)
    ap.add_argument("--limit-mib", type=float, default=LIMIT_MIB - MARGIN_MIB, help="what the travelling tree may take")
    ap.add_argument("--method", type=int, default=4, help="WebP effort 0..6 (4: 2.4 s per 1,000 images here)")
    args = ap.parse_args(argv)
    src = Path(args.src) if args.src else None
    for base in ([src.parent] if src else []) + [Path(os.environ.get("HELMHOLTZ_DATA", "")), ROOT.parent / "shared" / "data"]:
        if base and (base / "cifar10.npz").is_file():
            src = base / "cifar10.npz"
            break
    if src is None or not src.is_file():
        print("pack_gpu_data: cifar10.npz not found (set HELMHOLTZ_DATA or pass --src)")
        return 2
    limit = int(args.limit_mib * 2**20)
    n_train, n_test = args.train, args.test
    OUT.unlink(missing_ok=True)
    base = tree_bytes((ROOT / ".whl",))
    print(f"pack_gpu_data: the tree without the data takes {base / 2**20:.1f} MiB (limit {args.limit_mib:.1f} MiB)")
    while True:
        info = pack(src, n_train, n_test, args.method)
        total = tree_bytes((ROOT / ".whl", OUT_DIR))
        print(f"  {info['train']} train + {info['test']} test images: {info['bytes'] / 2**20:.1f} MiB "
              f"({info['bytes'] / (info['train'] + info['test']):.0f} bytes/image); the tree: {total / 2**20:.1f} MiB")
        if total <= limit:
            break
        scale = (limit - base) / max(1, info["bytes"]) * 0.97
        n_train, n_test = int(n_train * scale) // 10 * 10, int(n_test * scale) // 10 * 10
        if n_train < 1000:
            print("pack_gpu_data: the rest of the tree leaves no room for the data")
            return 1
    print(f"pack_gpu_data: wrote {OUT.relative_to(ROOT)} (lossless: decoded and compared)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
