"""Side-by-side speed of the JPEG round trip (encode + decode, q=20, 4:2:0).

Contenders, each the better of a plain loop and a thread pool with one thread
per core: Pillow, OpenCV and simplejpeg (encode + decode), against
``helmholtz.jpeg.roundtrip`` on the whole batch (the C core, all cores).

Workloads: the 10,000 CIFAR-10 test images as one batch (``HELMHOLTZ_DATA``
or ``--data-dir``), and 512x512 crops of the photographs that scikit-image
ships (astronaut, coffee, chelsea, motorcycle, ...).

Run: ``python benchmarks/bench_codec.py [--quality 20] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from _common import best_time
from _workloads import cifar_test, photographs
from _workloads import roundtrip_peers as peers

from helmholtz import jpeg
from helmholtz._codec import registry as backends


def bench_workload(name: str, images: np.ndarray, quality: int, repeats: int, cores: int) -> list[tuple]:
    megapixels = images.shape[0] * images.shape[1] * images.shape[2] / 1e6
    rows = []
    for peer, fn in peers(quality).items():
        loop = best_time(lambda: [fn(im) for im in images], repeats)
        with ThreadPoolExecutor(cores) as pool:
            pooled = best_time(lambda: list(pool.map(fn, images, chunksize=max(1, len(images) // (cores * 16)))), repeats)
        how, t = ("loop", loop) if loop <= pooled else (f"{cores} threads", pooled)
        rows.append((peer, how, t))
    for threads in sorted({1, cores}):
        jpeg.roundtrip(images[:8], quality, num_threads=threads)  # warm-up
        t = best_time(lambda: jpeg.roundtrip(images, quality, num_threads=threads), repeats)
        rows.append(("helmholtz cpu", f"{threads} thread{'s' if threads > 1 else ''}", t))
    fastest_peer = min((t for who, _, t in rows if not who.startswith("helmholtz")), default=None)
    print(f"\n{name}: {images.shape[0]} images of {images.shape[1]}x{images.shape[2]}, q={quality}, 4:2:0")
    print(f"{'contender':<16}{'best of':<12}{'seconds':>10}{'img/s':>12}{'MP/s':>10}{'vs fastest peer':>17}")
    for who, how, t in rows:
        ratio = f"{fastest_peer / t:.2f}x" if fastest_peer else "-"
        print(f"{who:<16}{how:<12}{t:>10.3f}{images.shape[0] / t:>12,.0f}{megapixels / t:>10.1f}{ratio:>17}")
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quality", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--photos", type=int, default=32, help="number of 512x512 photo crops")
    args = parser.parse_args(argv)
    cores = backends.default_threads()
    from helmholtz._codec import native as _native

    print(f"helmholtz cpu kernels: {_native.kernel_name()}, cores: {cores}")
    cifar = cifar_test(args.data_dir)
    if cifar is None:
        print("CIFAR-10 not found (set HELMHOLTZ_DATA): skipping the CIFAR workload")
    else:
        bench_workload("CIFAR-10 test set", cifar, args.quality, args.repeats, cores)
    photos = photographs(args.photos)
    if photos is None:
        print("scikit-image not installed (pip install 'helmholtz-ml[bench]'): skipping the photo workload")
    else:
        bench_workload("photographs", photos, args.quality, args.repeats, cores)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
