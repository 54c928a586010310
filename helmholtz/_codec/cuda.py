"""The ``cuda`` backend: helmholtz's kernels (csrc/hz_kernels.cu) through CuPy.

The kernels run the same integer math as the C core (csrc/hz_block.h), so
their results equal the ``cpu`` backend's and Pillow's byte for byte.

* Inputs are CuPy arrays or torch CUDA tensors, C-contiguous uint8
  ``(N, H, W, C)``; they are used in place (DLPack, zero copy) and results come
  back as the same kind of array on the same device (torch in, torch out).
* Kernels are queued on the caller's current stream: torch's
  ``torch.cuda.current_stream()`` for tensors, CuPy's current stream for CuPy
  arrays. Nothing synchronises the host, except :func:`bits` with
  ``optimize=True`` (its tables are built on the host) and the upload of the
  (small) quality table.
* The module is compiled once per device with NVRTC (CuPy's RawModule) and
  cached, also on disk by CuPy.

Besides the backend (``helmholtz._codec.registry.get("cuda")``), this module offers
:func:`roundtrip_float`, a round trip that writes normalised float32 or
bfloat16 channels-first tensors for training, and :func:`bits` /
:func:`frequencies` for entropy-coded sizes on the GPU.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from . import reference as ref
from .arrays import as_batch, as_qualities, check_normalization, check_subsampling
from ..errors import BackendUnavailable

__all__ = ["load_backend", "CudaBackend", "roundtrip_float", "bits", "frequencies", "kernel_source_dir"]

_FACTORS = {"4:4:4": (1, 1), "4:2:2": (2, 1), "4:2:0": (2, 2)}
_THREADS = 256
_SMALL_SHARED_LIMIT = 48 * 1024  # dynamic shared memory without opting in
_MAX_IMAGES_PER_CTA = 16
_SCRATCH_LIMIT = 1 << 30  # bytes of global scratch per launch group of the large-image path
_OUT_KINDS = {"uint8": 0, "float32": 1, "bfloat16": 2}

_INSTALL_HINT = (
    "the 'cuda' backend needs CuPy: pip install 'helmholtz-ml[cuda]' (CUDA 12) or "
    "'helmholtz-ml[cuda13]' (CUDA 13)"
)


def kernel_source_dir() -> Path:
    """The directory holding hz_kernels.cu and the shared headers.

    Installed wheels carry them in ``helmholtz/_csrc``; a source checkout in ``csrc/``.
    """
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "_csrc", package.parent / "csrc"):
        if (candidate / "hz_kernels.cu").is_file():
            return candidate
    raise BackendUnavailable(
        f"the CUDA kernel sources (hz_kernels.cu) are missing from {package / '_csrc'} and {package.parent / 'csrc'}; "
        "reinstall helmholtz"
    )


def _import_cupy():
    try:
        import cupy
    except ImportError as exc:
        raise BackendUnavailable(f"{_INSTALL_HINT} ({exc})") from None
    except Exception as exc:  # a broken CuPy install raises other errors at import
        raise BackendUnavailable(f"CuPy failed to import ({type(exc).__name__}: {exc}); {_INSTALL_HINT}") from None
    return cupy


def _device_count(cupy) -> int:
    try:
        return int(cupy.cuda.runtime.getDeviceCount())
    except Exception as exc:  # CUDARuntimeError without a driver / GPU
        raise BackendUnavailable(
            f"no CUDA GPU visible: CuPy could not count devices ({type(exc).__name__}: {exc}); "
            "the 'cuda' backend needs an NVIDIA GPU and driver (check nvidia-smi and CUDA_VISIBLE_DEVICES)"
        ) from None


# ---- compiled module, one per device -------------------------------------------------------------

class _Module:
    """The compiled kernels and constant tables on one device."""

    def __init__(self, cupy, device_id: int):
        csrc = kernel_source_dir()
        source = (csrc / "hz_kernels.cu").read_text()
        # CuPy's disk cache keys on the source text: fold the headers' hash in so
        # that an edited header recompiles.
        digest = hashlib.sha256()
        for path in sorted(csrc.glob("*.h")):
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
        source += f"\n// helmholtz headers sha256 {digest.hexdigest()}\n"
        with cupy.cuda.Device(device_id):
            self.module = cupy.RawModule(code=source, options=("-std=c++14", f"-I{csrc}"))
            names = ["hz_init_tables", "hz_roundtrip_small", "hz_fdct_global", "hz_quant_global",
                     "hz_dequant_global", "hz_emit_global", "hz_bits_std", "hz_frequencies"]
            self.fn = {name: self.module.get_function(name) for name in names}
            self.div = cupy.empty(101 * 2 * 3 * 64, dtype=cupy.int32)
            self.lens = cupy.empty(4 * 256, dtype=cupy.uint8)
            self.fn["hz_init_tables"]((51,), (_THREADS,), (self.div, self.lens))
            # once per device and process: the tables must be ready before kernels on
            # any (possibly non-blocking) caller stream read them
            cupy.cuda.get_current_stream().synchronize()
            self.sm_count = int(cupy.cuda.runtime.getDeviceProperties(device_id)["multiProcessorCount"])


_MODULES: dict[int, _Module] = {}
_LOCK = threading.Lock()


def _module(cupy, device_id: int) -> _Module:
    mod = _MODULES.get(device_id)
    if mod is None:
        with _LOCK:
            mod = _MODULES.get(device_id)
            if mod is None:
                try:
                    mod = _Module(cupy, device_id)
                except BackendUnavailable:
                    raise
                except Exception as exc:
                    raise RuntimeError(
                        f"helmholtz: compiling the CUDA kernels for device {device_id} failed "
                        f"({type(exc).__name__}: {exc})"
                    ) from exc
                _MODULES[device_id] = mod
    return mod


# ---- arrays, devices, streams ------------------------------------------------------------------

class _Ctx:
    """Where a call runs: CuPy, the device, the stream and how to return results."""

    def __init__(self, x):
        self.cupy = cp = _import_cupy()
        self.torch_in = type(x).__module__.startswith("torch")
        if self.torch_in:
            import torch

            if x.device.type != "cuda":
                raise ValueError(f"the 'cuda' backend needs CUDA tensors; got a tensor on {x.device}")
            self.device_id = x.device.index if x.device.index is not None else torch.cuda.current_device()
            stream = torch.cuda.current_stream(x.device)
            self.stream = cp.cuda.ExternalStream(stream.cuda_stream, self.device_id)
        elif type(x).__module__.startswith("cupy"):
            self.device_id = x.device.id
            with cp.cuda.Device(self.device_id):
                self.stream = cp.cuda.get_current_stream()
        else:
            raise TypeError(f"the 'cuda' backend takes CuPy arrays or torch CUDA tensors; got {type(x).__name__}")
        self.device = cp.cuda.Device(self.device_id)
        self.mod = _module(cp, self.device_id)

    def __enter__(self):
        self.device.__enter__()
        self.stream.__enter__()
        return self

    def __exit__(self, *exc):
        self.stream.__exit__(*exc)
        self.device.__exit__(*exc)

    def to_cupy(self, x):
        """Zero-copy CuPy view of a torch tensor (on our stream, so no extra sync)."""
        if type(x).__module__.startswith("cupy"):
            return x
        return self.cupy.from_dlpack(x.detach())

    def out(self, x, torch_dtype=None):
        """Return a CuPy result as the caller's kind."""
        if not self.torch_in:
            return x
        import torch

        t = torch.from_dlpack(x)
        return t.view(torch_dtype) if torch_dtype is not None else t


def _i32(v):
    return np.int32(v)


def _i64(v):
    return np.int64(v)


_NULL = np.uint64(0)


def _grid(count: int, sm_count: int) -> tuple:
    return (int(max(1, min((count + _THREADS - 1) // _THREADS, sm_count * 32))),)


def _small_layout(h: int, w: int, c: int, subsampling: str):
    """Shared bytes per image of the small-image kernel (None when it does not fit)."""
    geoms = ref.component_geometry(h, w, c, subsampling)
    blocks = sum(g.blocks_high * g.blocks_wide for g in geoms)
    plane = blocks * 64
    per = ((h * w * c + 15) & ~15) + blocks * 128 + ((plane + 15) & ~15)
    return per if per <= _SMALL_SHARED_LIMIT else None


def _run(ctx, images, qualities_np, subsampling, *, want_pixels=True, want_coefs=False, out_kind=0,
         mean=None, std=None):
    """The round trip / forward driver. images: CuPy (N, H, W, C) uint8 on ctx's device.

    Returns (pixels or None, [per-component coefficient arrays (Q, N, bh, bw, 8, 8)] or None).
    """
    cp = ctx.cupy
    mod = ctx.mod
    n, h, w, c = (int(s) for s in images.shape)
    hs, vs = _FACTORS[subsampling] if c == 3 else (1, 1)
    nq = int(qualities_np.shape[0])
    qd = cp.asarray(np.ascontiguousarray(qualities_np, dtype=np.int32))
    geoms = ref.component_geometry(h, w, c, subsampling)
    coefs = None
    if want_coefs:
        coefs = [cp.empty((nq, n, g.blocks_high, g.blocks_wide, 8, 8), dtype=cp.int16) for g in geoms]
    cptr = [coefs[k] if coefs and k < len(coefs) else _NULL for k in range(3)]
    pixels = out_u8 = out_f = None
    if want_pixels:
        if out_kind == 0:
            pixels = out_u8 = cp.empty((nq, n, h, w, c), dtype=cp.uint8)
        else:
            pixels = out_f = cp.empty((nq, n, c, h, w), dtype=cp.float32 if out_kind == 1 else cp.int16)
    normalize = mean is not None
    md = cp.asarray(np.resize(np.asarray(mean if normalize else [0.0], np.float32), 3))
    sd = cp.asarray(np.resize(np.asarray(std if normalize else [1.0], np.float32), 3))
    u8 = out_u8 if out_u8 is not None else _NULL
    fo = out_f if out_f is not None else _NULL

    per_image = _small_layout(h, w, c, subsampling)
    if per_image is not None:
        ipc = max(1, min(_MAX_IMAGES_PER_CTA, _SMALL_SHARED_LIMIT // per_image))
        # keep at least ~4 CTAs per SM when the batch is small
        ipc = max(1, min(ipc, -(-n // (4 * mod.sm_count))))
        grid = (-(-n // ipc),)
        mod.fn["hz_roundtrip_small"](
            grid, (_THREADS,),
            (images, _i32(n), _i32(h), _i32(w), _i32(c), _i32(hs), _i32(vs), qd, _i32(nq), _i32(ipc), mod.div,
             _i32(int(want_pixels)), _i32(out_kind), u8, fo, md, sd, _i32(int(normalize)), cptr[0], cptr[1], cptr[2]),
            shared_mem=ipc * per_image,
        )
        return pixels, coefs

    blocks = sum(g.blocks_high * g.blocks_wide for g in geoms)
    per_scratch = blocks * 128 + blocks * 64
    chunk = max(1, min(n, _SCRATCH_LIMIT // per_scratch))
    fd = cp.empty((chunk, blocks, 64), dtype=cp.int16)
    planes = cp.empty((chunk, blocks * 64), dtype=cp.uint8) if want_pixels else None
    img_bytes = h * w * c
    for i0 in range(0, n, chunk):
        m = min(chunk, n - i0)
        sub = images.reshape(n, img_bytes)[i0:i0 + m]
        mod.fn["hz_fdct_global"](_grid(m * blocks, mod.sm_count), (_THREADS,),
                                 (sub, _i64(m), _i32(h), _i32(w), _i32(c), _i32(hs), _i32(vs), fd))
        for q in range(nq):
            cq = [coefs[k][q, i0:i0 + m] if coefs and k < len(coefs) else _NULL for k in range(3)]
            mod.fn["hz_quant_global"](
                _grid(m * blocks, mod.sm_count), (_THREADS,),
                (fd, _i64(m), _i32(h), _i32(w), _i32(c), _i32(hs), _i32(vs), qd[q, i0:i0 + m], _i32(0), mod.div,
                 cq[0], cq[1], cq[2], planes if want_pixels else _NULL))
            if want_pixels:
                mod.fn["hz_emit_global"](
                    _grid(m * h * w, mod.sm_count), (_THREADS,),
                    (planes, _i64(m), _i32(h), _i32(w), _i32(c), _i32(hs), _i32(vs), _i64(q * n + i0),
                     _i32(out_kind), u8, fo, md, sd, _i32(int(normalize))))
    return pixels, coefs


def _device_batch(images, name="images"):
    batch = as_batch(images, name)
    if batch.device != "cuda":
        raise ValueError(
            f"the 'cuda' backend needs images on a CUDA device (a CuPy array or torch CUDA tensor); "
            f"got {type(images).__name__} on the CPU: move them with .cuda() / cupy.asarray, or use backend='cpu'"
        )
    return batch


# ---- the backend ---------------------------------------------------------------------------------

class CudaBackend:
    """helmholtz's kernels on a CUDA GPU via CuPy (see the module docstring)."""

    name = "cuda"
    device = "cuda"

    def roundtrip(self, images, qualities, subsampling: str, num_threads: int = 1):
        """uint8 (N, H, W, C) device array -> uint8 (Q, N, H, W, C), same kind and device."""
        ctx = _Ctx(images)
        with ctx:
            pixels, _ = _run(ctx, ctx.to_cupy(images), np.asarray(qualities, np.int32), subsampling)
            return ctx.out(pixels)

    def forward(self, images, qualities, subsampling: str, num_threads: int = 1):
        """uint8 (N, H, W, C) -> for each quality row a list of int16 (N, bh, bw, 8, 8) per component."""
        ctx = _Ctx(images)
        with ctx:
            _, coefs = _run(ctx, ctx.to_cupy(images), np.asarray(qualities, np.int32), subsampling,
                            want_pixels=False, want_coefs=True)
            return [[ctx.out(comp[q]) for comp in coefs] for q in range(int(np.shape(qualities)[0]))]

    def reconstruct(self, components, tables, height: int, width: int, subsampling: str, num_threads: int = 1):
        """int16 blocks per component + uint16 tables (N, 2, 8, 8) -> uint8 (N, H, W, C)."""
        ctx = _Ctx(components[0])
        cp = ctx.cupy
        with ctx:
            comps = [cp.ascontiguousarray(ctx.to_cupy(x)).astype(cp.int16, copy=False) for x in components]
            if type(tables).__module__.startswith("torch"):
                t = ctx.to_cupy(tables) if tables.is_cuda else cp.asarray(tables.numpy())
            else:
                t = cp.asarray(tables)  # CuPy stays put; NumPy (jpeg.Coefficients.tables) is uploaded
            t = cp.ascontiguousarray(t.astype(cp.uint16, copy=False))
            n = int(comps[0].shape[0])
            c = 1 if len(comps) == 1 else 3
            hs, vs = _FACTORS[subsampling] if c == 3 else (1, 1)
            geoms = ref.component_geometry(height, width, c, subsampling)
            blocks = sum(g.blocks_high * g.blocks_wide for g in geoms)
            out = cp.empty((n, height, width, c), dtype=cp.uint8)
            chunk = max(1, min(n, _SCRATCH_LIMIT // (blocks * 64)))
            planes = cp.empty((chunk, blocks * 64), dtype=cp.uint8)
            mod = ctx.mod
            for i0 in range(0, n, chunk):
                m = min(chunk, n - i0)
                cc = [comps[k][i0:i0 + m] if k < len(comps) else _NULL for k in range(3)]
                mod.fn["hz_dequant_global"](
                    _grid(m * blocks, mod.sm_count), (_THREADS,),
                    (cc[0], cc[1], cc[2], t[i0:i0 + m], _i64(m), _i32(height), _i32(width), _i32(c), _i32(hs),
                     _i32(vs), planes))
                mod.fn["hz_emit_global"](
                    _grid(m * height * width, mod.sm_count), (_THREADS,),
                    (planes, _i64(m), _i32(height), _i32(width), _i32(c), _i32(hs), _i32(vs), _i64(i0), _i32(0),
                     out, _NULL, _NULL, _NULL, _i32(0)))
            return ctx.out(out)


def load_backend() -> CudaBackend:
    """Return the CUDA backend, or raise BackendUnavailable naming the fix.

    Checks that CuPy imports, that a GPU is visible and that the kernel sources
    are present; the kernels themselves compile on first use per device.
    """
    cupy = _import_cupy()
    if _device_count(cupy) < 1:
        raise BackendUnavailable(
            "no CUDA GPU visible (CuPy counts 0 devices); the 'cuda' backend needs an NVIDIA GPU "
            "(check nvidia-smi and CUDA_VISIBLE_DEVICES)"
        )
    kernel_source_dir()
    return CudaBackend()


# ---- training output -----------------------------------------------------------------------------

def roundtrip_float(
    images: Any,
    quality: int | Sequence[int],
    subsampling: str = "4:2:0",
    dtype: str = "float32",
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> Any:
    """JPEG round trip on the GPU straight into a channels-first float batch for training.

    Parameters
    ----------
    images : CuPy array or torch CUDA tensor
        uint8 ``(N, H, W, C)`` (or ``(H, W, C)`` / ``(H, W)``), C = 1 or 3.
    quality : int or sequence of int
        1..100, for all images or one per image.
    subsampling : {"4:2:0", "4:2:2", "4:4:4"}
    dtype : {"float32", "bfloat16"}
        bfloat16 is rounded to nearest even from the float32 value (as
        ``tensor.to(torch.bfloat16)``). CuPy has no bfloat16: CuPy callers get
        its bit patterns as int16 (view them as bfloat16 elsewhere).
    mean, std : sequence of float, optional
        Per-channel normalisation ``(x / 255 - mean) / std`` (one value or one
        per channel); both or neither. Without them the output is ``x / 255``.

    Returns
    -------
    array
        ``(N, C, H, W)`` of the same kind and device as ``images``. Element for
        element, the float32 output equals ``roundtrip(images, quality)`` (uint8,
        channels last) converted with ``x.float() / 255`` (and normalised with
        float32 arithmetic), without materialising the uint8 result.
    """
    subsampling = check_subsampling(subsampling)
    batch = _device_batch(images)
    mean, std = check_normalization(dtype, mean, std, int(batch.array.shape[3]))
    q = as_qualities(quality, batch.n)[None, :]
    ctx = _Ctx(batch.array)
    with ctx:
        pixels, _ = _run(ctx, ctx.to_cupy(batch.array), q, subsampling, out_kind=_OUT_KINDS[dtype], mean=mean, std=std)
        out = pixels[0]
        if ctx.torch_in:
            import torch

            return ctx.out(out, torch.bfloat16 if dtype == "bfloat16" else None)
        return out


# ---- entropy-coded sizes ---------------------------------------------------------------------------

def _scan_args(ctx, components, subsampling):
    cp = ctx.cupy
    comps = [cp.ascontiguousarray(ctx.to_cupy(x)) for x in components]
    for x in comps:
        if x.dtype != cp.int16 or x.ndim != 5:
            raise ValueError(f"components must be int16 (N, bh, bw, 8, 8) arrays; got {x.dtype} {x.shape}")
    ncomp = len(comps)
    hs, vs = _FACTORS[check_subsampling(subsampling)] if ncomp == 3 else (1, 1)
    n = int(comps[0].shape[0])
    bh0, bw0 = int(comps[0].shape[1]), int(comps[0].shape[2])
    bh1, bw1 = (int(comps[1].shape[1]), int(comps[1].shape[2])) if ncomp == 3 else (0, 0)
    ptr = [comps[k] if k < ncomp else _NULL for k in range(3)]
    return comps, (ptr[0], ptr[1], ptr[2], _i32(ncomp), _i64(n), _i32(bh0), _i32(bw0), _i32(bh1), _i32(bw1),
                   _i32(hs), _i32(vs)), n


def frequencies(components: Sequence[Any], subsampling: str = "4:2:0"):
    """Huffman symbol counts of each image's scan, on the GPU.

    ``components`` are quantised coefficients on a CUDA device, one int16
    ``(N, bh, bw, 8, 8)`` array per component (``jpeg.coefficients(...,
    backend="cuda").components``). Returns ``(freq, extra)``: int64
    ``(N, 4, 256)`` and int64 ``(N,)`` (-1 for coefficients outside the baseline
    range), of the input's kind; equal to ``helmholtz.jpeg.symbol_frequencies``.
    """
    ctx = _Ctx(components[0])
    cp = ctx.cupy
    with ctx:
        _, args, n = _scan_args(ctx, components, subsampling)
        freq = cp.empty((n, 4, 256), dtype=cp.int64)
        extra = cp.empty(n, dtype=cp.int64)
        ctx.mod.fn["hz_frequencies"](_grid(n, ctx.mod.sm_count), (_THREADS,), args + (freq, extra))
        return ctx.out(freq), ctx.out(extra)


def bits(components: Sequence[Any], subsampling: str = "4:2:0", optimize: bool = False):
    """Entropy-coded bits of each image's scan, on the GPU.

    As ``helmholtz.jpeg.bits`` (before byte stuffing and padding): int64
    ``(N,)`` of the input's kind, -1 for an image whose coefficients lie outside
    the baseline range. With the standard tables everything runs on the GPU
    without synchronising; ``optimize=True`` counts symbols on the GPU, then
    builds each image's optimal tables on the host (libjpeg's
    ``jpeg_gen_optimal_table``) and synchronises.
    """
    ctx = _Ctx(components[0])
    cp = ctx.cupy
    with ctx:
        _, args, n = _scan_args(ctx, components, subsampling)
        if not optimize:
            out = cp.empty(n, dtype=cp.int64)
            ctx.mod.fn["hz_bits_std"]((max(1, -(-n // _THREADS)),), (_THREADS,), args + (ctx.mod.lens, out))
            return ctx.out(out)
        freq = cp.empty((n, 4, 256), dtype=cp.int64)
        extra = cp.empty(n, dtype=cp.int64)
        ctx.mod.fn["hz_frequencies"](_grid(n, ctx.mod.sm_count), (_THREADS,), args + (freq, extra))
        result = _optimal_bits(cp.asnumpy(freq), cp.asnumpy(extra), 2 if len(components) == 1 else 4)
        return ctx.out(cp.asarray(result))


def _optimal_bits(freq: np.ndarray, extra: np.ndarray, nslots: int) -> np.ndarray:
    """Bits with per-image optimal tables from symbol counts (host)."""
    try:
        from .native import optimal_table
    except ImportError:
        from .entropy_reference import code_lengths, gen_optimal_table

        def lengths(f):
            return code_lengths(gen_optimal_table(f))
    else:
        def lengths(f):
            counts, vals = optimal_table(np.ascontiguousarray(f, dtype=np.int64))
            out = np.zeros(256, np.int64)
            k = 0
            for length, count in enumerate(counts, start=1):
                for v in vals[k:k + count]:
                    out[v] = length
                k += count
            return out

    out = extra.copy()
    for i in range(freq.shape[0]):
        if out[i] < 0:
            continue
        for s in range(nslots):
            f = freq[i, s]
            out[i] += int(np.dot(f, lengths(f)))
    return out
