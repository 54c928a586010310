"""GPU benchmark of helmholtz's cuda backend, side by side with its peers, in one run.

Run on a CUDA machine (tools/gpu_check.sh's ``bench`` section calls it)::

    python benchmarks/bench_cuda.py                                  # data: see --data
    python benchmarks/bench_cuda.py --data gpu-data/cifar10-subset.npz --json bench.json --budget-s 70

Data (recorded in the JSON's ``data``): ``--data`` (a ``cifar10.npz`` or the
packed subset tools/pack_gpu_data.py writes), else ``gpu-data/cifar10-subset.npz``,
else ``$HELMHOLTZ_DATA/cifar10.npz`` or ``../shared/data``; synthetic images only
when none exists, and then the JSON says so. Larger images are mosaics of
CIFAR images (natural statistics at any size).

Timing: every figure is the median over ``--repeat`` samples of ``n`` calls
made back to back (``n`` grows until a sample takes ``--min-sample-ms``), the
device synchronised before and after each sample; so launch overhead is
amortised as it is in a loop of batches, not charged to one call. Inputs stay
on the device: host-to-device copies are outside every row except those whose
``includes_h2d`` is true.

Rows (``rows`` in the JSON), each with images/s, Gpixel/s (every output image
counted: ``roundtrip_many`` over nine qualities makes nine), GB/s of the
compulsory bytes (input read once, each output written once) against the
card's peak, and ``equal_to_pillow``: the share of a sample of outputs equal
byte for byte to Pillow's ``save(quality=q, subsampling=s)`` + ``open``:

* helmholtz on CIFAR: uint8 -> uint8 at 4:2:0 and 4:4:4, per-image qualities
  (host and device arrays), float32 / bfloat16 NCHW, ``roundtrip_many`` over
  the paper's nine qualities, coefficients and bit counts, and the carried
  subset at the nine qualities as a sweep uses it (device-resident, and from
  host memory with the copy included);
* throughput against batch size and image size (32, 64, 224, 512) at 4:2:0
  and 4:4:4 (``sweep`` rows);
* peers, each where installed: nvImageCodec (batched nvJPEG encode + decode on
  the GPU, 4:2:0 and 4:4:4), torchvision's nvJPEG (``encode_jpeg`` on the GPU,
  4:4:4 only; ``decode_jpeg(cpu_bytes, device=DEVICE)``), DALI's
  ``jpeg_compression_distortion`` and kornia's ``jpeg_codec_differentiable``
  (float in and out, rounded to uint8 for the equality share); a peer that is
  absent or fails gets a ``skipped`` entry with the reason.

Targets (issue 14): >= 100 Gpixel/s for the CIFAR 4:2:0 uint8 round trip; >=
20x nvJPEG's images/s (torchvision's per-image path). ``--budget-s`` skips the
later parts when time runs short (``skipped`` says which); the JSON is
rewritten after every row. Exits 2 without a GPU or without the cuda backend:
it never measures a host fallback.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from _common import cifar_path  # noqa: E402
from _workloads import PAPER_QUALITIES  # noqa: E402

# Peak DRAM bandwidth (GB/s) by device name, preferred to the driver's memory clock (HBM3e reads oddly).
KNOWN_BANDWIDTH = {"H200": 4800, "H100 SXM": 3350, "H100 80GB HBM3": 3350, "H100 PCIe": 2000, "H100 NVL": 3900,
                   "A100-SXM4-80GB": 2039, "A100-SXM4-40GB": 1555, "A100-PCIE-40GB": 1555, "A100 80GB PCIe": 1935,
                   "L4": 300, "A10": 600}
QUALITY = 75
TARGET_GPX = 100.0
TARGET_NVJPEG_RATIO = 20.0
SIZES = (32, 64, 224, 512)
BATCH_PIXELS = (1 << 18, 1 << 22, 1 << 26)  # small, medium and large batches, in pixels (--max-batch-pixels caps them)
EQUAL_SAMPLE = 128  # outputs compared with Pillow per row
PACKED_DEFAULT = ROOT / "gpu-data" / "cifar10-subset.npz"
# Where the benchmark computes. Only tests/test_gpu_check.py changes these (to "cpu"), to run the
# benchmark's own plumbing on a machine without a GPU; the command line has no way to.
DEVICE = "cuda"
BACKEND = "cuda"


class Refused(SystemExit):
    """The benchmark cannot measure what it claims (no GPU, no cuda backend): exit 2 with why."""

    def __init__(self, why: str):
        print(f"bench_cuda: {why}; nothing was measured")
        super().__init__(2)


# ---- data -----------------------------------------------------------------------------------------

def load_data(path: str | None) -> tuple[np.ndarray, dict]:
    """CIFAR-10 images (train + test, uint8 NHWC) and where they came from."""
    candidates = [Path(path)] if path else [PACKED_DEFAULT] + ([cifar_path()] if cifar_path() else [])
    for p in candidates:
        if p is None or not Path(p).is_file():
            if path:
                raise SystemExit(f"bench_cuda: --data {path}: no such file")
            continue
        with np.load(p) as z:
            keys = set(z.files)
        if "train_webp" in keys:  # the packed subset (tools/pack_gpu_data.py)
            sys.path.insert(0, str(ROOT / "tools"))
            import pack_gpu_data

            arrays = pack_gpu_data.load_subset(Path(p))
            kind = "packed CIFAR-10 subset (tools/pack_gpu_data.py)"
        else:
            with np.load(p) as z:
                arrays = {k: z[k] for k in ("x_train", "x_test")}
            kind = "cifar10.npz"
        x = np.ascontiguousarray(np.concatenate([arrays["x_train"], arrays["x_test"]]))
        return x, {"source": str(p), "kind": kind, "images": int(len(x)), "synthetic": False}
    rng = np.random.default_rng(0)
    n = 10_000
    yy, xx = np.mgrid[:32, :32]
    base = yy[None, :, :, None] * rng.integers(1, 8, (n, 1, 1, 3)) + xx[None, :, :, None] * rng.integers(1, 8, (n, 1, 1, 3))
    x = ((base + rng.integers(0, 48, (n, 32, 32, 3))) % 256).astype(np.uint8)
    return x, {"source": None, "kind": "synthetic: no CIFAR-10 found (pass --data)", "images": n, "synthetic": True}


def repeat_to(x: np.ndarray, n: int) -> np.ndarray:
    return np.ascontiguousarray(np.resize(x, (n,) + x.shape[1:]))


def mosaic(cifar: np.ndarray, n: int, size: int) -> np.ndarray:
    """n images of size x size made of CIFAR tiles (cut to size when it is not a multiple of 32)."""
    if size == 32:
        return repeat_to(cifar, n)
    k = -(-size // 32)
    idx = (np.arange(n * k * k) * 7919) % len(cifar)  # a stride through the set, so tiles differ
    tiles = cifar[idx].reshape(n, k, k, 32, 32, 3).transpose(0, 1, 3, 2, 4, 5).reshape(n, k * 32, k * 32, 3)
    return np.ascontiguousarray(tiles[:, :size, :size])


def pillow_roundtrip(img: np.ndarray, q: int, subsampling: str) -> np.ndarray:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=int(q), subsampling=subsampling)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def share_equal(outputs: np.ndarray, inputs: np.ndarray, q, subsampling: str) -> float:
    """Share of ``outputs`` (uint8 NHWC, host) equal to Pillow's round trip of ``inputs``."""
    qs = np.broadcast_to(np.asarray(q), (len(inputs),))
    same = [np.array_equal(o, pillow_roundtrip(i, int(qq), subsampling)) for o, i, qq in zip(outputs, inputs, qs)]
    return float(np.mean(same)) if same else float("nan")


def jpeg_subsampling(data: bytes) -> str:
    """The chroma subsampling a JPEG file declares (its SOF0/SOF2 luma sampling factors), e.g. "4:2:0"."""
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            raise ValueError("not a JPEG marker sequence")
        marker, length = data[i + 1], int.from_bytes(data[i + 2:i + 4], "big")
        if marker in (0xC0, 0xC1, 0xC2):
            if data[i + 9] == 1:
                return "gray"
            luma = data[i + 11]
            return {0x11: "4:4:4", 0x21: "4:2:2", 0x22: "4:2:0"}.get(luma, f"factors {luma >> 4}x{luma & 15}")
        i += 2 + length
    raise ValueError("no SOF marker")


def sample_idx(n: int) -> np.ndarray:
    return np.unique(np.linspace(0, n - 1, min(n, EQUAL_SAMPLE)).astype(int))


# ---- timing and the record --------------------------------------------------------------------------

def time_calls(torch, fn, repeat: int, min_sample_s: float, max_calls: int = 500) -> tuple[float, int]:
    """Median seconds per call over ``repeat`` samples of ``n`` back-to-back calls (after a warm-up)."""
    fn()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    fn()
    torch.cuda.synchronize()
    one = max(time.perf_counter() - t0, 1e-7)
    n = int(min(max_calls, max(1, round(min_sample_s / one))))
    times = []
    for _ in range(repeat):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) / n)
    return statistics.median(times), n


class Record:
    """Rows, peers' skips and targets, written to ``path`` after every change."""

    def __init__(self, path: str | None, peak: float, meta: dict):
        self.path = Path(path) if path else None
        self.peak = peak
        self.doc = {**meta, "rows": [], "skipped": {}, "ratios": {}, "targets": {}, "complete": False}

    def save(self) -> None:
        if self.path is not None:
            tmp = self.path.with_name(self.path.name + ".tmp")
            tmp.write_text(json.dumps(self.doc, indent=2, default=float))
            os.replace(tmp, self.path)

    def add(self, case, label, subsampling, seconds, calls, images, h, w, bytes_moved, *, outputs=1, equal=None,
            includes_h2d=False, note=None) -> dict:
        gpix = images * outputs * h * w / seconds / 1e9
        gbs = bytes_moved / seconds / 1e9
        row = {"case": case, "set": label, "subsampling": subsampling, "images": images, "outputs_per_image": outputs,
               "height": h, "width": w, "seconds_per_call": seconds, "calls_per_sample": calls,
               "images_s": images / seconds, "gpixel_s": gpix, "gb_s": gbs,
               "fraction_of_peak": gbs / self.peak if self.peak == self.peak else None,
               "equal_to_pillow": equal, "includes_h2d": includes_h2d, "note": note}
        self.doc["rows"].append(row)
        self.save()
        eq = "   n/a" if equal is None else f"{100 * equal:5.1f}%"
        print(f"{case[:62]:<62s} {label:<9s} {subsampling:<5s} {images:>7d}x{outputs} {seconds * 1e3:9.3f} ms "
              f"{gpix:8.2f} Gpx/s {images / seconds:11.0f} img/s {gbs:6.0f} GB/s  ={eq}", flush=True)
        return row

    def skip(self, part: str, why: str) -> None:
        self.doc["skipped"][part] = why
        self.save()
        print(f"{part}: skipped ({why})", flush=True)

    def find(self, case, label, subsampling="4:2:0"):
        return next((r for r in self.doc["rows"] if r["case"] == case and r["set"] == label and r["subsampling"] == subsampling), None)


# ---- helmholtz ----------------------------------------------------------------------------------------

def host(a) -> np.ndarray:
    if type(a).__module__.startswith("torch"):
        return a.detach().cpu().numpy()
    return np.asarray(a)


def check_on_gpu(out) -> None:
    """Refuse a result that is not on the GPU (a host fallback would be timed as the GPU)."""
    if getattr(out, "device", None) is None or out.device.type != DEVICE:
        raise Refused(f"a helmholtz call returned {type(out).__name__} not on the GPU")


def bench_core(torch, rec: Record, x_np: np.ndarray, label: str, opts) -> None:
    from helmholtz import jpeg

    x = torch.from_numpy(x_np).to(DEVICE)
    n, h, w, c = x.shape
    nb = x.numel()
    idx = sample_idx(n)
    q_img = (np.arange(n) % 100 + 1).astype(np.int32)
    q_dev = torch.as_tensor(q_img, device=DEVICE)
    for ss in ("4:2:0", "4:4:4"):
        out = jpeg.roundtrip(x, QUALITY, subsampling=ss, backend=BACKEND)
        check_on_gpu(out)
        eq = share_equal(host(out[idx]), x_np[idx], QUALITY, ss)
        sec, calls = time_calls(torch, lambda: jpeg.roundtrip(x, QUALITY, subsampling=ss, backend=BACKEND), opts.repeat, opts.min_sample)
        rec.add("helmholtz uint8->uint8, one quality", label, ss, sec, calls, n, h, w, 2 * nb, equal=eq)
    eq = share_equal(host(jpeg.roundtrip(x, q_img, backend=BACKEND)[idx]), x_np[idx], q_img[idx], "4:2:0")
    sec, calls = time_calls(torch, lambda: jpeg.roundtrip(x, q_img, backend=BACKEND), opts.repeat, opts.min_sample)
    rec.add("helmholtz uint8->uint8, per-image qualities (host array)", label, "4:2:0", sec, calls, n, h, w, 2 * nb, equal=eq)
    sec, calls = time_calls(torch, lambda: jpeg.roundtrip(x, q_dev, backend=BACKEND), opts.repeat, opts.min_sample)
    rec.add("helmholtz uint8->uint8, per-image qualities (device tensor)", label, "4:2:0", sec, calls, n, h, w, 2 * nb)
    for dtype, size in (("float32", 4), ("bfloat16", 2)):
        sec, calls = time_calls(torch, lambda: jpeg.roundtrip_float(x, QUALITY, dtype=dtype, backend=BACKEND), opts.repeat, opts.min_sample)
        rec.add(f"helmholtz uint8->{dtype} NCHW, one quality", label, "4:2:0", sec, calls, n, h, w, nb + size * nb)
    many = jpeg.roundtrip_many(x, PAPER_QUALITIES, backend=BACKEND)
    eq = float(np.mean([share_equal(host(many[k][idx[:16]]), x_np[idx[:16]], q, "4:2:0") for k, q in enumerate(PAPER_QUALITIES)]))
    del many
    sec, calls = time_calls(torch, lambda: jpeg.roundtrip_many(x, PAPER_QUALITIES, backend=BACKEND), opts.repeat, opts.min_sample)
    rec.add("helmholtz roundtrip_many, the paper's nine qualities", label, "4:2:0", sec, calls, n, h, w, nb + 9 * nb, outputs=9, equal=eq)


def bench_entropy(torch, rec: Record, x_np: np.ndarray, label: str, opts) -> None:
    from helmholtz import jpeg

    x = torch.from_numpy(x_np).to(DEVICE)
    n, h, w, _ = x.shape
    sec, calls = time_calls(torch, lambda: jpeg.coefficients_many(x, PAPER_QUALITIES, backend=BACKEND), opts.repeat, opts.min_sample)
    rec.add("helmholtz coefficients_many, nine qualities", label, "4:2:0", sec, calls, n, h, w, x.numel() * (1 + 9 * 2), outputs=9)
    coefs = jpeg.coefficients_many(x, PAPER_QUALITIES, backend=BACKEND)
    coef_bytes = sum(int(np.prod(c.shape)) * 2 for cf in coefs for c in cf.components)
    for optimize in (False, True):
        sec, calls = time_calls(torch, lambda: [jpeg.bits(cf, optimize=optimize) for cf in coefs], opts.repeat, opts.min_sample)
        rec.add(f"helmholtz bits ({'optimal' if optimize else 'standard'} tables), nine qualities", label, "4:2:0", sec, calls,
                n, h, w, coef_bytes, outputs=9)


def bench_sweep_codec(torch, rec: Record, subset: np.ndarray, opts) -> None:
    """The carried subset at the paper's nine qualities, as helmholtz sweep compresses it."""
    from helmholtz import jpeg
    from helmholtz.transforms import compress_many

    n, h, w, _ = subset.shape
    x = torch.from_numpy(subset).to(DEVICE)
    sec, calls = time_calls(torch, lambda: jpeg.roundtrip_many(x, PAPER_QUALITIES, backend=BACKEND), opts.repeat, opts.min_sample)
    rec.add("sweep codec: carried set, nine qualities (device-resident)", "subset", "4:2:0", sec, calls, n, h, w,
            x.numel() * 10, outputs=9)
    sec, calls = time_calls(torch, lambda: compress_many(subset, PAPER_QUALITIES, device=DEVICE, fallback=False),
                            opts.repeat, opts.min_sample)
    rec.add("sweep codec: transforms.compress_many from host NumPy (incl. H2D)", "subset", "4:2:0", sec, calls, n, h, w,
            x.numel() * 10, outputs=9, includes_h2d=True)


def bench_sizes(torch, rec: Record, cifar: np.ndarray, opts, deadline: float) -> None:
    from helmholtz import jpeg

    batches = sorted({min(p, opts.max_batch_pixels) for p in BATCH_PIXELS})
    for size in SIZES:
        pool = mosaic(cifar, max(1, round(batches[-1] / (size * size))), size)
        x_all = torch.from_numpy(pool).to(DEVICE)
        for pixels in batches:
            n = max(1, round(pixels / (size * size)))
            x = x_all[:n]
            for ss in ("4:2:0", "4:4:4"):
                if time.monotonic() > deadline:
                    rec.skip(f"sizes from {size}x{size}, {n} images, {ss}", "out of the bench's time budget")
                    return
                sec, calls = time_calls(torch, lambda: jpeg.roundtrip(x, QUALITY, subsampling=ss, backend=BACKEND),
                                        opts.repeat, opts.min_sample)
                rec.add("sizes: helmholtz uint8->uint8, one quality", f"{size}x{size}", ss, sec, calls, n, size, size,
                        2 * x.numel())
        del x_all


# ---- peers ------------------------------------------------------------------------------------------

def peer_nvimgcodec(torch, rec: Record, x_np: np.ndarray, label: str, opts) -> dict | None:
    """nvImageCodec: batched nvJPEG encode and decode on the GPU (GPU_ONLY backends: no CPU fallback)."""
    try:
        from nvidia import nvimgcodec as nv
    except Exception as exc:  # noqa: BLE001
        rec.skip(f"nvImageCodec ({label})", f"not importable ({type(exc).__name__}: {exc}); make gpu-check-prep carries it")
        return None
    css = {"4:2:0": nv.ChromaSubsampling.CSS_420, "4:4:4": nv.ChromaSubsampling.CSS_444}
    x = torch.from_numpy(x_np).to(DEVICE)
    n, h, w, _ = x.shape
    idx = sample_idx(n)
    first = None
    on_gpu = DEVICE == "cuda"
    kind = nv.GPU_ONLY if on_gpu else nv.CPU_ONLY
    where = {} if on_gpu else {"device_id": nv.NVIMGCODEC_DEVICE_CPU_ONLY}
    want_buffer = nv.ImageBufferKind.STRIDED_DEVICE if on_gpu else nv.ImageBufferKind.STRIDED_HOST
    try:
        enc = nv.Encoder(backends=[nv.Backend(kind)], **where)
        dec = nv.Decoder(backends=[nv.Backend(kind)], options=":fancy_upsampling=1", **where)
        for ss in ("4:2:0", "4:4:4"):
            params = nv.EncodeParams(quality_type=nv.QualityType.QUALITY, quality_value=QUALITY, chroma_subsampling=css[ss],
                                     jpeg_encode_params=nv.JpegEncodeParams(optimized_huffman=False))

            def images():  # device tensors through DLPack (host arrays when the plumbing runs on the CPU)
                return nv.as_images([x[i] for i in range(n)] if on_gpu else list(x_np))

            def encode():
                return enc.encode(images(), "jpeg", params=params)

            streams = encode()
            if any(s is None for s in streams):
                raise RuntimeError("the GPU encoder returned no stream for some images")
            written = jpeg_subsampling(bytes(streams[0]))
            if written != ss:
                raise RuntimeError(f"asked for {ss}, the encoder wrote {written}")
            decoded = dec.decode(streams)
            if any(d is None for d in decoded) or decoded[0].buffer_kind != want_buffer:
                raise RuntimeError(f"the decoder did not decode to {want_buffer} ({decoded[0].buffer_kind if decoded else None})")
            outs = np.stack([np.asarray(decoded[i].cpu()) for i in idx])
            eq = share_equal(outs, x_np[idx], QUALITY, ss)
            sec, calls = time_calls(torch, lambda: dec.decode(encode()), opts.peer_repeat, opts.min_sample, max_calls=50)
            row = rec.add("nvImageCodec nvJPEG encode+decode (batched, GPU_ONLY)", label, ss, sec, calls, n, h, w, 2 * x.numel(),
                          equal=eq, note="fancy upsampling on; optimized Huffman off")
            first = first or row
            sec, calls = time_calls(torch, encode, opts.peer_repeat, opts.min_sample, max_calls=50)
            rec.add("nvImageCodec nvJPEG encode only", label, ss, sec, calls, n, h, w, x.numel())
            sec, calls = time_calls(torch, lambda: dec.decode(streams), opts.peer_repeat, opts.min_sample, max_calls=50)
            rec.add("nvImageCodec nvJPEG decode only", label, ss, sec, calls, n, h, w, x.numel())
            if on_gpu and ss == "4:2:0":  # the card's JPEG decode engines (A100, H100), where nvImageCodec finds them
                try:
                    hw = nv.Decoder(backends=[nv.Backend(nv.HW_GPU_ONLY)], options=":fancy_upsampling=1")
                    if any(d is None for d in hw.decode(streams)):
                        raise RuntimeError("the hardware decoder returned no image for some streams")
                    sec, calls = time_calls(torch, lambda: hw.decode(streams), opts.peer_repeat, opts.min_sample, max_calls=50)
                    rec.add("nvImageCodec decode only, hardware engine (HW_GPU_ONLY)", label, ss, sec, calls, n, h, w, x.numel())
                except Exception as exc:  # noqa: BLE001 - not every card has the engine
                    rec.skip(f"nvImageCodec hardware decode ({label})", f"{type(exc).__name__}: {exc}")
    except Exception as exc:  # noqa: BLE001 - a peer failing is a figure, not the end of the bench
        rec.skip(f"nvImageCodec ({label})", f"failed: {type(exc).__name__}: {exc}")
    return first


def peer_torchvision(torch, rec: Record, x_np: np.ndarray, label: str, opts) -> dict | None:
    """torchvision's nvJPEG: encode_jpeg on CUDA tensors (4:4:4), decode_jpeg of CPU bytes with device='cuda'."""
    try:
        import torchvision
        from torchvision.io import decode_jpeg, encode_jpeg
    except Exception as exc:  # noqa: BLE001
        rec.skip(f"torchvision nvJPEG ({label})", f"not importable ({type(exc).__name__}: {exc})")
        return None
    x = torch.from_numpy(x_np).to(DEVICE)
    n, h, w, _ = x.shape
    chw = list(x.permute(0, 3, 1, 2).contiguous())  # torchvision wants CHW; the layout change is outside the timing
    idx = sample_idx(n)
    try:
        def encode():
            return encode_jpeg(chw, quality=QUALITY)

        def roundtrip():
            data = [b.cpu() for b in encode()]  # decode_jpeg reads the bytes from host tensors
            return decode_jpeg(data, device=DEVICE)

        encoded = encode()
        if encoded[0].device.type != DEVICE:
            raise RuntimeError(f"encode_jpeg did not encode on {DEVICE}")
        cpu_bytes = [b.cpu() for b in encoded]
        ss = jpeg_subsampling(bytes(cpu_bytes[0].numpy()))  # what the encoder wrote (its CUDA path: 4:4:4)
        decoded = decode_jpeg(cpu_bytes, device=DEVICE)
        if decoded[0].device.type != DEVICE:
            raise RuntimeError(f"decode_jpeg did not decode on {DEVICE}")
        outs = np.stack([decoded[i].permute(1, 2, 0).cpu().numpy() for i in idx])
        eq = share_equal(outs, x_np[idx], QUALITY, ss)
        note = f"torchvision {torchvision.__version__}; the encoder wrote {ss}; the CUDA encode works per image"
        sec, calls = time_calls(torch, roundtrip, opts.peer_repeat, opts.min_sample, max_calls=20)
        row = rec.add("torchvision nvJPEG encode + bytes to host + decode", label, ss, sec, calls, n, h, w, 2 * x.numel(),
                      equal=eq, note=note)
        sec, calls = time_calls(torch, encode, opts.peer_repeat, opts.min_sample, max_calls=20)
        rec.add("torchvision nvJPEG encode only (CUDA)", label, ss, sec, calls, n, h, w, x.numel(), note=note)
        sec, calls = time_calls(torch, lambda: decode_jpeg(cpu_bytes, device=DEVICE), opts.peer_repeat, opts.min_sample, max_calls=20)
        rec.add("torchvision nvJPEG decode only (host bytes -> CUDA)", label, ss, sec, calls, n, h, w, x.numel(),
                includes_h2d=True, note=note)
        return row
    except Exception as exc:  # noqa: BLE001
        rec.skip(f"torchvision nvJPEG ({label})", f"failed: {type(exc).__name__}: {exc}")
        return None


def peer_dali(torch, rec: Record, x_np: np.ndarray, label: str, opts) -> dict | None:
    """DALI's jpeg_compression_distortion (a fused float approximation of a JPEG round trip) on the GPU."""
    try:
        from nvidia.dali import fn, pipeline_def
    except Exception as exc:  # noqa: BLE001
        rec.skip(f"DALI jpeg_compression_distortion ({label})",
                 f"not importable ({type(exc).__name__}); its wheel (nvidia-dali-cuda130, ~200 MB) exceeds what travels")
        return None
    x = torch.from_numpy(x_np).to(DEVICE)
    n, h, w, _ = x.shape
    batch = [x[i] for i in range(n)]
    idx = sample_idx(n)
    try:
        @pipeline_def(batch_size=n, num_threads=4, device_id=torch.cuda.current_device(), prefetch_queue_depth=1)
        def pipe():
            images = fn.external_source(name="images", device="gpu", layout="HWC")
            return fn.jpeg_compression_distortion(images, quality=QUALITY)

        p = pipe()
        p.build()

        def run():
            p.feed_input("images", batch)
            return p.run()[0]

        out = run().as_cpu()
        outs = np.stack([np.asarray(out.at(int(i))) for i in idx])
        eq = share_equal(outs, x_np[idx], QUALITY, "4:2:0")
        sec, calls = time_calls(torch, run, opts.peer_repeat, opts.min_sample, max_calls=20)
        return rec.add("DALI jpeg_compression_distortion", label, "4:2:0", sec, calls, n, h, w, 2 * x.numel(), equal=eq)
    except Exception as exc:  # noqa: BLE001
        rec.skip(f"DALI jpeg_compression_distortion ({label})", f"failed: {type(exc).__name__}: {exc}")
        return None


def peer_kornia(torch, rec: Record, x_np: np.ndarray, label: str, opts) -> dict | None:
    try:
        import kornia
    except Exception as exc:  # noqa: BLE001
        rec.skip(f"kornia ({label})", f"not importable ({type(exc).__name__}: {exc}); make gpu-check-prep carries it")
        return None
    x = torch.from_numpy(x_np).to(DEVICE)
    n, h, w, _ = x.shape
    xf = x.permute(0, 3, 1, 2).float().div(255)  # kornia works in float NCHW; this conversion is outside the timing
    q = torch.full((n,), float(QUALITY), device=DEVICE)
    idx = sample_idx(n)
    try:
        with torch.no_grad():
            def run():
                return kornia.enhance.jpeg_codec_differentiable(xf, q)

            y = run()
            outs = (y[torch.as_tensor(idx, device=DEVICE)] * 255).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
            eq = share_equal(outs, x_np[idx], QUALITY, "4:2:0")
            sec, calls = time_calls(torch, run, opts.peer_repeat, opts.min_sample, max_calls=50)
        return rec.add("kornia jpeg_codec_differentiable (float -> float)", label, "4:2:0", sec, calls, n, h, w, 8 * x.numel(),
                       equal=eq, note=f"kornia {kornia.__version__}; outputs rounded to uint8 for the equality share")
    except Exception as exc:  # noqa: BLE001
        rec.skip(f"kornia ({label})", f"failed: {type(exc).__name__}: {exc}")
        return None


PEERS = {"nvimgcodec": peer_nvimgcodec, "torchvision": peer_torchvision, "dali": peer_dali, "kornia": peer_kornia}


# ---- main -------------------------------------------------------------------------------------------

def need_gpu():
    """torch with a visible GPU and helmholtz's cuda backend, or Refused."""
    try:
        import torch
    except ImportError:
        raise Refused("torch is not installed (pip install torch)") from None
    if not torch.cuda.is_available():
        raise Refused("no CUDA GPU visible (torch.cuda.is_available() is False)")
    from helmholtz import jpeg

    try:  # the public call names why the backend cannot run (e.g. CuPy missing)
        jpeg.roundtrip(torch.zeros((1, 8, 8, 3), dtype=torch.uint8, device=DEVICE), 50, backend=BACKEND)
    except jpeg.BackendUnavailable as exc:
        raise Refused(f"helmholtz's cuda backend cannot run ({exc})") from None
    return torch


def peak_bandwidth_gbs(torch, override):
    if override:
        return float(override), "given"
    name = torch.cuda.get_device_name()
    for key, value in KNOWN_BANDWIDTH.items():
        if key.lower() in name.lower():
            return float(value), f"table ({key})"
    return float("nan"), "unknown (pass --bandwidth-gbs)"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=None, help="cifar10.npz or the packed subset (default: gpu-data/, then $HELMHOLTZ_DATA)")
    ap.add_argument("--cifar", type=int, default=100_000, help="images in the CIFAR batch (the data repeated to this many)")
    ap.add_argument("--peer-images", type=int, default=4096, help="CIFAR images each peer gets (per-image peers are slow)")
    ap.add_argument("--big", type=int, default=64, help="512x512 images for the peers' large-image rows")
    ap.add_argument("--repeat", type=int, default=5, help="samples per figure (the median is reported)")
    ap.add_argument("--peer-repeat", type=int, default=3, help="samples per peer figure (peers take up to seconds a call)")
    ap.add_argument("--max-batch-pixels", type=int, default=BATCH_PIXELS[-1], help="largest batch of the sizes rows, in pixels")
    ap.add_argument("--min-sample-ms", type=float, default=40.0, help="back-to-back calls per sample until it lasts this long")
    ap.add_argument("--budget-s", type=float, default=None, help="skip the later parts once this many seconds have passed")
    ap.add_argument("--peers", default=",".join(PEERS), help=f"comma-separated peers (default {','.join(PEERS)})")
    ap.add_argument("--bandwidth-gbs", type=float, default=None, help="peak DRAM bandwidth to compare with")
    ap.add_argument("--json", type=str, default=None)
    args = ap.parse_args(argv)
    args.min_sample = args.min_sample_ms / 1e3
    peers = [p for p in args.peers.split(",") if p]
    for p in peers:
        if p not in PEERS:
            ap.error(f"--peers: unknown peer {p!r} (one of {', '.join(PEERS)})")
    t_start = time.monotonic()
    deadline = t_start + (args.budget_s if args.budget_s else float("inf"))

    torch = need_gpu()
    from helmholtz import jpeg

    x_data, data = load_data(args.data)
    peak, source = peak_bandwidth_gbs(torch, args.bandwidth_gbs)
    device = torch.cuda.get_device_name()
    t0 = time.perf_counter()
    check_on_gpu(jpeg.roundtrip(torch.from_numpy(x_data[:64]).to(DEVICE), QUALITY, backend=BACKEND))
    torch.cuda.synchronize()
    first_call = time.perf_counter() - t0
    meta = {"device": device, "peak_gb_s": peak, "peak_source": source, "data": data, "quality": QUALITY,
            "first_call_in_process_s": first_call, "timing": f"median of {args.repeat} samples of back-to-back calls "
            f"(each sample >= {args.min_sample_ms:g} ms), device synchronised around each sample",
            "torch": torch.__version__}
    rec = Record(args.json, peak, meta)
    rec.save()
    print(f"device: {device}; peak DRAM bandwidth {peak:.0f} GB/s ({source}); data: {data['kind']} ({data['images']} images)")
    print(f"first call in this process (kernel cache from disk): {first_call:.3f} s")

    cifar = repeat_to(x_data, args.cifar)
    subset = x_data
    peer_set = repeat_to(x_data, args.peer_images)
    big = mosaic(x_data, args.big, 512)
    parts = [
        ("helmholtz CIFAR", lambda: bench_core(torch, rec, cifar, "CIFAR", args)),
        *[(f"{p} CIFAR", (lambda p=p: PEERS[p](torch, rec, peer_set, "CIFAR", args))) for p in peers],
        ("sizes", lambda: bench_sizes(torch, rec, x_data, args, deadline)),
        ("sweep codec", lambda: bench_sweep_codec(torch, rec, subset, args)),
        ("entropy", lambda: bench_entropy(torch, rec, cifar[: min(len(cifar), 50_000)], "CIFAR", args)),
        ("helmholtz 512x512", lambda: bench_core(torch, rec, big, "512x512", args)),
        *[(f"{p} 512x512", (lambda p=p: PEERS[p](torch, rec, big, "512x512", args))) for p in peers],
    ]
    for name, part in parts:
        if time.monotonic() > deadline:
            rec.skip(name, f"out of the bench's {args.budget_s:.0f} s budget")
            continue
        part()
        torch.cuda.empty_cache()

    ratios = {}
    peer_cases = {"nvimgcodec": "nvImageCodec nvJPEG encode+decode (batched, GPU_ONLY)",
                  "torchvision_nvjpeg": "torchvision nvJPEG encode + bytes to host + decode",
                  "dali": "DALI jpeg_compression_distortion", "kornia": "kornia jpeg_codec_differentiable (float -> float)"}
    for label in ("CIFAR", "512x512"):
        for key, case in peer_cases.items():
            for peer in (r for r in rec.doc["rows"] if r["case"] == case and r["set"] == label):
                mine = rec.find("helmholtz uint8->uint8, one quality", label, peer["subsampling"])
                if mine:  # the same images at the same subsampling
                    ratios[f"{label} images/s vs {key} ({peer['subsampling']})"] = mine["images_s"] / peer["images_s"]
    for k, v in ratios.items():
        print(f"ratio {k}: {v:.1f}x")
    cifar_row = rec.find("helmholtz uint8->uint8, one quality", "CIFAR")
    nv_ratio = next((v for k, v in ratios.items() if k.startswith("CIFAR images/s vs torchvision_nvjpeg")), None)
    targets = {
        "cifar_420_uint8_roundtrip_gpixel_s": {"measured": cifar_row["gpixel_s"] if cifar_row else None, "target": TARGET_GPX,
                                               "met": None if cifar_row is None else cifar_row["gpixel_s"] >= TARGET_GPX},
        "images_s_vs_nvjpeg_per_image": {"measured": nv_ratio, "target": TARGET_NVJPEG_RATIO,
                                         "met": None if nv_ratio is None else nv_ratio >= TARGET_NVJPEG_RATIO,
                                         "against": "torchvision nvJPEG encode+decode, at the subsampling its encoder wrote (4:4:4 on the GPU)"},
    }
    for k, v in targets.items():
        print(f"target {k}: measured {v['measured']}, target {v['target']}, met: {v['met']}")
    rec.doc.update(ratios=ratios, targets=targets, complete=all("budget" not in why for why in rec.doc["skipped"].values()),
                   seconds=round(time.monotonic() - t_start, 1))
    rec.save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
