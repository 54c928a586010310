"""Where the time goes: cycles per pixel of each stage of the C core, per kernel set.

The C core times each stage on its own (``stage_ticks``: colour conversion,
chroma downsampling, forward DCT, quantisation, inverse DCT, fancy upsampling,
colour conversion back, and the bit count), image by image so the data is in
cache as in the real pipeline, keeping for every image and stage the fastest
of several passes. Ticks of the time-stamp counter become core cycles by a
chain of dependent one-cycle additions timed beside them. Pixels are image
pixels (a 4:2:0 image has 1.5 samples per pixel in the block stages).

Run: ``python benchmarks/bench_stages.py [--write benchmarks/STAGES.md]``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import sys
import time

import numpy as np

import _workloads as W

from helmholtz import jpeg

from helmholtz._codec import native as N

# (stage, the floor estimate in cycles per image pixel for AVX-512 at 4:2:0, q=20, and why)
FLOORS = {
    "colour": (0.5, "16 pixels take one permute and three byte shuffles to deinterleave and three narrowing "
                    "stores, all on the one shuffle port: at least ~8 shuffles per 16 pixels"),
    "downsample": (0.05, "one multiply-add sums 32 byte pairs; two rows per 32 outputs for each chroma plane"),
    "dct": (0.7, "16 one-dimensional passes of ~42 vector operations per 16 blocks on two vector ports "
                 "(0.33 cycles per sample, 1.5 samples per pixel), plus the byte transposes into lane layout"),
    "quantise": (0.4, "~8 vector operations per 16 coefficients (abs, add, two shifts, a multiply-add, "
                      "sign, dequantise) on two ports: 0.25 cycles per sample"),
    "idct": (0.7, "the same passes as the DCT (minus zero columns), the 10-bit wrap and clamp, and the "
                  "transposes back to rows"),
    "upsample": (0.2, "per chroma sample: a column sum, two weighted neighbours and an interleave, shared "
                      "by four output pixels"),
    "colour back": (0.5, "three multiply-adds per 16 pixels, then packing and interleaving 96 RGB bytes "
                         "per 32 pixels on the shuffle port"),
    "count": (0.3, "four vector operations per 16 coefficients for the nonzero masks and categories, then "
                   "~9 scalar instructions per nonzero coefficient (about 0.1 to 0.2 per sample at q=20)"),
}


def measure(images: np.ndarray, repeats: int) -> dict[str, float]:
    """Cycles per image pixel of every stage with the active kernel set."""
    before = N.cycles_per_tick()
    ticks = N.stage_ticks(images, W.QUALITY, "4:2:0", repeats)
    rate = (before + N.cycles_per_tick()) / 2
    pixels = images.shape[0] * images.shape[1] * images.shape[2]
    return {k: v * rate / pixels for k, v in ticks.items()}


def whole_pipeline_ns(images: np.ndarray, repeats: int) -> float:
    jpeg.roundtrip(images, W.QUALITY, num_threads=1)
    best = min(_timed(lambda: jpeg.roundtrip(images, W.QUALITY, num_threads=1)) for _ in range(repeats))
    return best * 1e9 / (images.shape[0] * images.shape[1] * images.shape[2])


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--write", default=None, help="write the markdown report to this file")
    args = ap.parse_args(argv)
    workloads = {}
    cifar = W.cifar_test(args.data_dir)
    if cifar is not None:
        workloads["CIFAR-10 32x32"] = cifar[:1000]
    photos = W.photographs(8)
    if photos is not None:
        workloads["photos 512x512"] = photos
    if not workloads:
        sys.exit("neither CIFAR-10 nor scikit-image's photographs are available")
    start = N.kernel_name()
    sets = N.supported_kernels()
    table, whole = {}, {}
    try:
        for k in sets:
            N.use_kernels(k)
            for name, images in workloads.items():
                table[(k, name)] = measure(images, args.repeats)
                whole[(k, name)] = whole_pipeline_ns(images, max(3, args.repeats // 2))
    finally:
        N.use_kernels(start)

    lines = [
        "# Where the time goes",
        "",
        "Cycles per image pixel of each stage of the C core (one thread), measured by",
        "`benchmarks/bench_stages.py` with `stage_ticks`: every stage runs on its own over the images,",
        "one image at a time so its data sits in the caches as in the pipeline, and every image and",
        "stage keeps its fastest of several passes. Time-stamp-counter ticks are turned into core",
        "cycles by a chain of dependent one-cycle additions timed beside them. JPEG quality 20,",
        "4:2:0, so the block stages see 1.5 samples per pixel. *count* is the extra cost of counting",
        "the exact bits (its own quantising pass less a bare one); on AVX-512, *upsample* is the cost",
        "of the fused upsampling-and-conversion pass less the conversion alone.",
        "",
        f"Machine: {os.cpu_count()} cores; kernel sets {', '.join(sets)}; shared with other work, so",
        "single figures move by 10-20% between runs (the stage timer's per-image minimum filters",
        "interruptions, not a busy neighbour).",
        "",
    ]
    names = list(workloads)
    header = "| stage | " + " | ".join(f"{k}, {w}" for k in sets for w in names) + " | floor (AVX-512) | why |"
    lines += [header, "| --- |" + " ---: |" * (len(sets) * len(names)) + " ---: | --- |"]
    for stage in N.STAGES:
        cells = " | ".join(f"{table[(k, w)][stage]:.2f}" for k in sets for w in names)
        floor, why = FLOORS[stage]
        lines.append(f"| {stage} | {cells} | {floor:.2f} | {why} |")
    round_trip = [s for s in N.STAGES if s != "count"]
    cells = " | ".join(f"**{sum(table[(k, w)][s] for s in round_trip):.2f}**" for k in sets for w in names)
    lines.append(f"| round trip (all but count) | {cells} | **{sum(FLOORS[s][0] for s in round_trip):.2f}** | the sum |")
    cells = " | ".join(f"{whole[(k, w)]:.2f} ns" for k in sets for w in names)
    lines.append(f"| whole `roundtrip`, one thread | {cells} | | wall time per pixel, for scale |")
    lines += [
        "",
        "The floors are estimates from operation counts on a core with two 512-bit vector ports and",
        "one shuffle port (Sapphire Rapids), not measurements; they say how far each stage is from",
        "its arithmetic.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.write:
        with open(args.write, "w") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
