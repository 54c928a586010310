"""GPU benchmark of helmholtz's 'cuda' backend, side by side with nvJPEG and kornia.

Run on a CUDA machine (written for an H100; any card works)::

    python benchmarks/bench_cuda.py                 # CIFAR 10,000 + 512x512 x 64
    python benchmarks/bench_cuda.py --cifar 50000 --big 256 --repeat 10
    python benchmarks/bench_cuda.py --json out.json

Measures, timed with CUDA events on the current stream (median of --repeat
runs after one warm-up):

* helmholtz round trip uint8 -> uint8 (N, H, W, C) and uint8 -> float32 NCHW
  (``helmholtz._codec.cuda.roundtrip_float``), per-image qualities, on CIFAR-size
  (32x32) and 512x512 batches: Gpixel/s and the achieved DRAM throughput
  (compulsory bytes: the input once, the output once) against the card's
  peak bandwidth (queried from the device; --bandwidth-gbs overrides);
* torchvision's CUDA ``encode_jpeg`` + ``decode_jpeg`` (nvJPEG; not
  bit-exact to libjpeg-turbo) and kornia's differentiable JPEG
  (``kornia.enhance.jpeg_codec_differentiable``, an approximation), each skipped
  when not importable;
* exact entropy-coded bits of 60,000 CIFAR images at nine qualities
  (coefficients on the GPU, then ``helmholtz._codec.cuda.bits``).

Images come from $HELMHOLTZ_DATA/cifar10.npz when present (tiled for 512x512),
else synthetic structured images. Exits 0 with a message when there is no GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

import numpy as np

# Peak DRAM bandwidth (GB/s) by device name, when the driver does not report clocks.
KNOWN_BANDWIDTH = {"H100 SXM": 3350, "H100 PCIe": 2000, "H100 NVL": 3900, "H200": 4800, "A100-SXM4-80GB": 2039,
                   "A100-SXM4-40GB": 1555, "A100-PCIE-40GB": 1555, "A100 80GB PCIe": 1935, "L4": 300, "A10": 600}


def gpu_or_exit():
    try:
        import torch
    except ImportError:
        print("bench_cuda: torch is not installed; nothing to do (pip install torch)")
        sys.exit(0)
    if not torch.cuda.is_available():
        print("bench_cuda: no CUDA GPU visible; nothing ran")
        sys.exit(0)
    try:
        import cupy  # noqa: F401
    except ImportError:
        print("bench_cuda: CuPy is not installed: pip install 'helmholtz[cuda]' (or [cuda13])")
        sys.exit(0)
    return torch


def peak_bandwidth_gbs(torch, override):
    if override:
        return float(override), "given"
    import cupy

    dev = torch.cuda.current_device()
    try:
        clock_khz = cupy.cuda.runtime.deviceGetAttribute(36, dev)  # cudaDevAttrMemoryClockRate
        bus_bits = cupy.cuda.runtime.deviceGetAttribute(37, dev)  # cudaDevAttrGlobalMemoryBusWidth
        if clock_khz > 0 and bus_bits > 0:
            return 2.0 * clock_khz * 1e3 * bus_bits / 8 / 1e9, "device attributes"
    except Exception:
        pass
    name = torch.cuda.get_device_name(dev)
    for key, value in KNOWN_BANDWIDTH.items():
        if key.lower() in name.lower():
            return float(value), f"table ({key})"
    return float("nan"), "unknown"


def load_cifar(n: int) -> np.ndarray:
    root = os.environ.get("HELMHOLTZ_DATA")
    candidates = [Path(root)] if root else []
    candidates.append(Path(__file__).resolve().parents[1].parent / "shared" / "data")
    for d in candidates:
        f = d / "cifar10.npz"
        if f.is_file():
            with np.load(f) as z:
                x = np.concatenate([z["x_train"], z["x_test"]])
            reps = -(-n // len(x))
            return np.ascontiguousarray(np.concatenate([x] * reps)[:n])
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:32, :32]
    base = (yy[None, :, :, None] * rng.integers(1, 8, (n, 1, 1, 3)) + xx[None, :, :, None] * rng.integers(1, 8, (n, 1, 1, 3)))
    noise = rng.integers(0, 48, (n, 32, 32, 3))
    return np.ascontiguousarray((base + noise) % 256).astype(np.uint8)


def tile_512(cifar: np.ndarray, n: int) -> np.ndarray:
    """512x512 images made of 16x16 CIFAR tiles (natural-ish statistics)."""
    out = np.empty((n, 512, 512, 3), np.uint8)
    k = 0
    for i in range(n):
        tiles = cifar[(np.arange(256) + k) % len(cifar)]
        k += 256
        out[i] = tiles.reshape(16, 16, 32, 32, 3).transpose(0, 2, 1, 3, 4).reshape(512, 512, 3)
    return out


def time_cuda(torch, fn, repeat: int) -> float:
    """Median seconds of fn() between CUDA events on the current stream (after a warm-up)."""
    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeat):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    return statistics.median(times)


def report(rows, name, seconds, n, h, w, bytes_moved, peak):
    gpix = n * h * w / seconds / 1e9
    gbs = bytes_moved / seconds / 1e9
    frac = gbs / peak if peak == peak else float("nan")
    rows.append({"case": name, "images": n, "height": h, "width": w, "seconds": seconds, "gpixel_s": gpix,
                 "gb_s": gbs, "fraction_of_peak": frac, "images_s": n / seconds})
    print(f"{name:<52s} {n:>6d} x {h}x{w}  {seconds * 1e3:9.2f} ms  {gpix:8.3f} Gpix/s  {n / seconds:12.0f} img/s"
          f"  {gbs:8.1f} GB/s ({100 * frac:5.1f}% of peak)")


def bench_helmholtz(torch, rows, x, q, peak, repeat, label):
    from helmholtz import jpeg
    from helmholtz._codec import cuda as _cuda

    n, h, w, c = x.shape
    nbytes = x.numel()
    t = time_cuda(torch, lambda: jpeg.roundtrip(x, q, backend="cuda"), repeat)
    report(rows, f"helmholtz uint8->uint8 ({label})", t, n, h, w, 2 * nbytes, peak)
    t = time_cuda(torch, lambda: _cuda.roundtrip_float(x, q), repeat)
    report(rows, f"helmholtz uint8->float32 NCHW ({label})", t, n, h, w, nbytes + 4 * nbytes, peak)
    t = time_cuda(torch, lambda: _cuda.roundtrip_float(x, q, dtype="bfloat16", mean=(0.49, 0.48, 0.45),
                                                       std=(0.25, 0.24, 0.26)), repeat)
    report(rows, f"helmholtz uint8->bfloat16 NCHW normalised ({label})", t, n, h, w, nbytes + 2 * nbytes, peak)


def bench_torchvision(torch, rows, x, quality, peak, repeat, label):
    try:
        import torchvision
        from torchvision.io import decode_jpeg, encode_jpeg
    except ImportError:
        print(f"torchvision nvJPEG ({label}): skipped (torchvision not importable)")
        return
    n, h, w, c = x.shape
    chw = [img for img in x.permute(0, 3, 1, 2).contiguous()]

    def run():
        data = encode_jpeg(chw, quality=quality)
        return decode_jpeg(data, device="cuda")

    try:
        t = time_cuda(torch, run, repeat)
    except Exception as exc:  # older torchvision: no batched / CUDA encode
        print(f"torchvision {torchvision.__version__} nvJPEG ({label}): skipped ({type(exc).__name__}: {exc})")
        return
    report(rows, f"torchvision nvJPEG encode+decode, q={quality} ({label})", t, n, h, w, 2 * x.numel(), peak)


def bench_kornia(torch, rows, x, q, peak, repeat, label):
    try:
        import kornia
    except ImportError:
        print(f"kornia differentiable JPEG ({label}): skipped (kornia not importable)")
        return
    n, h, w, c = x.shape
    xf = x.permute(0, 3, 1, 2).float().div(255)
    qt = torch.as_tensor(q, device=x.device, dtype=torch.float32)
    with torch.no_grad():
        try:
            t = time_cuda(torch, lambda: kornia.enhance.jpeg_codec_differentiable(xf, qt), repeat)
        except Exception as exc:
            print(f"kornia ({label}): skipped ({type(exc).__name__}: {exc})")
            return
    report(rows, f"kornia jpeg_codec_differentiable float->float ({label})", t, n, h, w, 8 * x.numel(), peak)


def bench_bits(torch, rows, cifar_np, repeat):
    from helmholtz import jpeg
    from helmholtz._codec import cuda as _cuda

    n = 60000
    x = torch.from_numpy(load_cifar(n) if len(cifar_np) < n else cifar_np[:n]).cuda()
    qualities = [10, 20, 30, 40, 50, 60, 70, 80, 90]

    def run():
        out = []
        for coefs in jpeg.coefficients_many(x, qualities, backend="cuda"):
            out.append(_cuda.bits(coefs.components, coefs.subsampling))
        return out

    t = time_cuda(torch, run, max(1, repeat // 2))
    totals = [int(b.sum().item()) for b in run()]
    rows.append({"case": "bits 60000 CIFAR x 9 qualities", "seconds": t, "images_s": n * 9 / t,
                 "mean_bits": {q: tot / n for q, tot in zip(qualities, totals)}})
    print(f"{'bits (std tables) 60,000 CIFAR x 9 qualities':<52s} {t * 1e3:9.2f} ms  {n * 9 / t:12.0f} img-q/s")
    print("    mean bits/image: " + ", ".join(f"q{q}={tot / n:.0f}" for q, tot in zip(qualities, totals)))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cifar", type=int, default=10000, help="CIFAR-size batch (e.g. 10000 or 50000)")
    ap.add_argument("--big", type=int, default=64, help="number of 512x512 images")
    ap.add_argument("--quality", type=int, default=75, help="quality for nvJPEG (helmholtz uses per-image 1..100)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--bandwidth-gbs", type=float, default=None, help="peak DRAM bandwidth to compare with")
    ap.add_argument("--no-bits", action="store_true")
    ap.add_argument("--json", type=str, default=None)
    args = ap.parse_args(argv)

    torch = gpu_or_exit()
    from helmholtz._codec import registry as backends

    try:
        backends.get("cuda")
    except backends.BackendUnavailable as exc:
        print(f"bench_cuda: the cuda backend cannot run: {exc}")
        return 0
    dev = torch.cuda.current_device()
    peak, source = peak_bandwidth_gbs(torch, args.bandwidth_gbs)
    print(f"device: {torch.cuda.get_device_name(dev)}; peak DRAM bandwidth {peak:.0f} GB/s ({source})")
    rows = []

    cifar_np = load_cifar(max(args.cifar, 1))
    x = torch.from_numpy(cifar_np[: args.cifar]).cuda()
    qn = np.arange(args.cifar) % 100 + 1  # every quality, one per image
    bench_helmholtz(torch, rows, x, qn, peak, args.repeat, "CIFAR")
    bench_torchvision(torch, rows, x, args.quality, peak, args.repeat, "CIFAR")
    bench_kornia(torch, rows, x, qn, peak, args.repeat, "CIFAR")

    if args.big > 0:
        xb = torch.from_numpy(tile_512(cifar_np, args.big)).cuda()
        qb = np.arange(args.big) % 100 + 1
        bench_helmholtz(torch, rows, xb, qb, peak, args.repeat, "512x512")
        bench_torchvision(torch, rows, xb, args.quality, peak, args.repeat, "512x512")
        bench_kornia(torch, rows, xb, qb, peak, args.repeat, "512x512")
        del xb

    if not args.no_bits:
        bench_bits(torch, rows, cifar_np, args.repeat)

    if args.json:
        Path(args.json).write_text(json.dumps({"device": torch.cuda.get_device_name(dev), "peak_gb_s": peak,
                                               "rows": rows}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
