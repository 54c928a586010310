"""GPU benchmark of helmholtz's 'cuda' backend, side by side with nvJPEG and kornia, in one run.

Run on a CUDA machine (tools/gpu_check.sh calls it)::

    python benchmarks/bench_cuda.py                        # CIFAR 50,000 + 64 of 512x512
    python benchmarks/bench_cuda.py --cifar 10000 --big 16 --repeat 5 --json out.json

What runs (all 4:2:0, timed with CUDA events on the current stream, the median
of --repeat runs after a warm-up):

* helmholtz, CIFAR-size (32x32) and 512x512 batches: uint8 -> uint8
  (N, H, W, C) with one quality and with a quality per image; uint8 -> float32
  NCHW (``jpeg.roundtrip_float``); ``roundtrip_many`` over nine qualities
  (one forward transform, nine outputs); bits with the standard and with
  optimal tables (coefficients, then ``jpeg.bits``) at nine qualities.
* torchvision's CUDA ``encode_jpeg`` + ``decode_jpeg`` (nvJPEG, not bit-exact
  to libjpeg-turbo) and kornia's ``jpeg_codec_differentiable`` (an
  approximation), each skipped with a message when not importable.

Figures: Gpixel/s (output pixels), images/s, the DRAM throughput of the
compulsory bytes (input once, output once) against the card's peak bandwidth,
and ratios to the peers measured in the same run. Targets (issue 14): at least
100 Gpixel/s for the CIFAR 4:2:0 uint8 round trip, and at least 20x nvJPEG's
images/s. --json writes every row and the targets' verdicts. Exits 0 with a
message when there is no GPU.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import cifar_path  # noqa: E402

# Peak DRAM bandwidth (GB/s) by device name, preferred to the driver's memory clock (HBM3e reads oddly).
KNOWN_BANDWIDTH = {"H200": 4800, "H100 SXM": 3350, "H100 80GB HBM3": 3350, "H100 PCIe": 2000, "H100 NVL": 3900,
                   "A100-SXM4-80GB": 2039, "A100-SXM4-40GB": 1555, "A100-PCIE-40GB": 1555, "A100 80GB PCIe": 1935,
                   "L4": 300, "A10": 600}
QUALITIES9 = [10, 20, 30, 40, 50, 60, 70, 80, 90]
TARGET_GPX = 100.0
TARGET_NVJPEG_RATIO = 20.0


def gpu_or_exit():
    try:
        import torch
    except ImportError:
        print("bench_cuda: torch is not installed; nothing to do (pip install torch)")
        sys.exit(0)
    if not torch.cuda.is_available():
        print("bench_cuda: no CUDA GPU visible; nothing ran")
        sys.exit(0)
    return torch


def peak_bandwidth_gbs(torch, override):
    if override:
        return float(override), "given"
    name = torch.cuda.get_device_name()
    for key, value in KNOWN_BANDWIDTH.items():
        if key.lower() in name.lower():
            return float(value), f"table ({key})"
    try:
        import cupy

        dev = torch.cuda.current_device()
        clock_khz = cupy.cuda.runtime.deviceGetAttribute(36, dev)  # cudaDevAttrMemoryClockRate
        bus_bits = cupy.cuda.runtime.deviceGetAttribute(37, dev)  # cudaDevAttrGlobalMemoryBusWidth
        if clock_khz > 0 and bus_bits > 0:
            return 2.0 * clock_khz * 1e3 * bus_bits / 8 / 1e9, "device attributes"
    except Exception:
        pass
    return float("nan"), "unknown"


def load_cifar(n: int) -> np.ndarray:
    path = cifar_path()
    if path is not None:
        with np.load(path) as z:
            x = np.concatenate([z["x_train"], z["x_test"]])
        return np.ascontiguousarray(np.concatenate([x] * -(-n // len(x)))[:n])
    rng = np.random.default_rng(0)  # structured synthetic images when CIFAR-10 is absent
    yy, xx = np.mgrid[:32, :32]
    base = yy[None, :, :, None] * rng.integers(1, 8, (n, 1, 1, 3)) + xx[None, :, :, None] * rng.integers(1, 8, (n, 1, 1, 3))
    return np.ascontiguousarray((base + rng.integers(0, 48, (n, 32, 32, 3))) % 256).astype(np.uint8)


def tile_512(cifar: np.ndarray, n: int) -> np.ndarray:
    """512x512 images made of 16x16 CIFAR tiles (natural-ish statistics)."""
    out = np.empty((n, 512, 512, 3), np.uint8)
    for i in range(n):
        tiles = cifar[(np.arange(256) + 256 * i) % len(cifar)]
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


class Table:
    def __init__(self, peak):
        self.peak = peak
        self.rows = []

    def add(self, case, label, seconds, images, h, w, bytes_moved, outputs=1):
        gpix = images * outputs * h * w / seconds / 1e9
        gbs = bytes_moved / seconds / 1e9
        row = {"case": case, "set": label, "images": images, "outputs_per_image": outputs, "height": h, "width": w,
               "seconds": seconds, "gpixel_s": gpix, "images_s": images / seconds, "gb_s": gbs,
               "fraction_of_peak": gbs / self.peak if self.peak == self.peak else None}
        self.rows.append(row)
        frac = f"{100 * gbs / self.peak:5.1f}%" if self.peak == self.peak else "  n/a"
        print(f"{case + ' (' + label + ')':<58s} {images:>6d} x{outputs} {h}x{w} {seconds * 1e3:9.2f} ms "
              f"{gpix:8.2f} Gpx/s {images / seconds:12.0f} img/s {gbs:7.0f} GB/s ({frac} of peak)")
        return row

    def find(self, case, label):
        return next((r for r in self.rows if r["case"] == case and r["set"] == label), None)


def bench_helmholtz(torch, t, x, label, repeat):
    from helmholtz import jpeg

    n, h, w, c = x.shape
    nb = x.numel()
    q_img = np.arange(n) % 100 + 1
    q_dev = torch.as_tensor(q_img, dtype=torch.int32, device=x.device)
    t.add("helmholtz uint8->uint8, one quality", label, time_cuda(torch, lambda: jpeg.roundtrip(x, 75), repeat),
          n, h, w, 2 * nb)
    t.add("helmholtz uint8->uint8, per-image qualities", label,
          time_cuda(torch, lambda: jpeg.roundtrip(x, q_img), repeat), n, h, w, 2 * nb)
    t.add("helmholtz uint8->float32 NCHW, one quality", label,
          time_cuda(torch, lambda: jpeg.roundtrip_float(x, 75), repeat), n, h, w, nb + 4 * nb)
    from helmholtz._codec import cuda as _cuda

    t.add("helmholtz uint8->float32 NCHW, per-image (device) qualities", label,
          time_cuda(torch, lambda: _cuda.roundtrip_float(x, q_dev), repeat), n, h, w, nb + 4 * nb)
    t.add("helmholtz roundtrip_many, nine qualities", label,
          time_cuda(torch, lambda: jpeg.roundtrip_many(x, QUALITIES9), repeat), n, h, w, nb + 9 * nb, outputs=9)


def bench_bits(torch, t, x, label, repeat):
    from helmholtz import jpeg

    n, h, w, _ = x.shape
    coefs = jpeg.coefficients_many(x, QUALITIES9)
    for optimize in (False, True):
        def run():
            return [jpeg.bits(cf, optimize=optimize) for cf in coefs]

        sec = time_cuda(torch, run, max(1, repeat // 2))
        t.add(f"helmholtz bits ({'optimal' if optimize else 'standard'} tables), nine qualities", label, sec, n, h, w,
              sum(int(sum(c.numel() for c in cf.components)) * 2 for cf in coefs), outputs=9)
    t0 = time_cuda(torch, lambda: jpeg.coefficients_many(x, QUALITIES9), max(1, repeat // 2))
    t.add("helmholtz coefficients_many, nine qualities", label, t0, n, h, w, x.numel() * (1 + 9 * 2), outputs=9)


def bench_nvjpeg(torch, t, x, label, repeat, limit):
    try:
        import torchvision
        from torchvision.io import decode_jpeg, encode_jpeg
    except Exception as exc:
        print(f"torchvision nvJPEG ({label}): skipped ({type(exc).__name__}: {exc})")
        return None
    xs = x[:limit]
    n, h, w, _ = xs.shape
    chw = list(xs.permute(0, 3, 1, 2).contiguous())

    def run():
        return decode_jpeg(encode_jpeg(chw, quality=75), device="cuda")

    try:
        sec = time_cuda(torch, run, max(1, repeat // 2))
    except Exception as exc:  # torchvision without batched / CUDA encode
        print(f"torchvision {torchvision.__version__} nvJPEG ({label}): skipped ({type(exc).__name__}: {exc})")
        return None
    return t.add("torchvision nvJPEG encode+decode, quality 75", label, sec, n, h, w, 2 * xs.numel())


def bench_kornia(torch, t, x, label, repeat):
    try:
        import kornia
    except Exception as exc:
        print(f"kornia differentiable JPEG ({label}): skipped ({type(exc).__name__}: {exc})")
        return None
    n, h, w, _ = x.shape
    xf = x.permute(0, 3, 1, 2).float().div(255)
    q = torch.full((n,), 75.0, device=x.device)
    with torch.no_grad():
        try:
            sec = time_cuda(torch, lambda: kornia.enhance.jpeg_codec_differentiable(xf, q), max(1, repeat // 2))
        except Exception as exc:
            print(f"kornia ({label}): skipped ({type(exc).__name__}: {exc})")
            return None
    return t.add("kornia jpeg_codec_differentiable float->float, quality 75", label, sec, n, h, w, 8 * x.numel())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cifar", type=int, default=50000, help="CIFAR-size batch")
    ap.add_argument("--big", type=int, default=64, help="number of 512x512 images")
    ap.add_argument("--nvjpeg-limit", type=int, default=5000, help="images nvJPEG gets per set (it is per-image)")
    ap.add_argument("--repeat", type=int, default=7)
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
    peak, source = peak_bandwidth_gbs(torch, args.bandwidth_gbs)
    device = torch.cuda.get_device_name()
    print(f"device: {device}; peak DRAM bandwidth {peak:.0f} GB/s ({source})")
    t = Table(peak)
    cifar_np = load_cifar(max(args.cifar, 1))
    sets = [("CIFAR", torch.from_numpy(cifar_np[: args.cifar]).cuda())]
    if args.big > 0:
        sets.append(("512x512", torch.from_numpy(tile_512(cifar_np, args.big)).cuda()))
    ratios = {}
    for label, x in sets:
        bench_helmholtz(torch, t, x, label, args.repeat)
        nv = bench_nvjpeg(torch, t, x, label, args.repeat, args.nvjpeg_limit)
        ko = bench_kornia(torch, t, x, label, args.repeat)
        if not args.no_bits and label == "CIFAR":
            bench_bits(torch, t, x, label, args.repeat)
        ours = t.find("helmholtz uint8->uint8, one quality", label)
        for name, peer in (("nvjpeg", nv), ("kornia", ko)):
            if peer:
                ratios[f"{label} images/s vs {name}"] = ours["images_s"] / peer["images_s"]
    for k, v in ratios.items():
        print(f"ratio {k}: {v:.1f}x")

    cifar = t.find("helmholtz uint8->uint8, one quality", "CIFAR")
    nv_ratio = ratios.get("CIFAR images/s vs nvjpeg")
    targets = {
        "cifar_420_uint8_roundtrip_gpixel_s": {"measured": cifar["gpixel_s"], "target": TARGET_GPX,
                                               "met": cifar["gpixel_s"] >= TARGET_GPX},
        "images_s_vs_nvjpeg_per_image": {"measured": nv_ratio, "target": TARGET_NVJPEG_RATIO,
                                         "met": None if nv_ratio is None else nv_ratio >= TARGET_NVJPEG_RATIO},
    }
    for k, v in targets.items():
        print(f"target {k}: measured {v['measured']}, target {v['target']}, met: {v['met']}")
    if args.json:
        Path(args.json).write_text(json.dumps({"device": device, "peak_gb_s": peak, "peak_source": source,
                                               "rows": t.rows, "ratios": ratios, "targets": targets}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
