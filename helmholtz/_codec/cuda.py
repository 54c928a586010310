"""The ``cuda`` backend: helmholtz's kernels (csrc/hz_kernels.cu) through CuPy.

The kernels run the same integer math as the C core (csrc/hz_block.h), so
their results equal the ``cpu`` backend's and Pillow's byte for byte.

* Inputs are CuPy arrays or torch CUDA tensors, C-contiguous uint8
  ``(N, H, W, C)``; they are read in place and results come back as the same
  kind of array on the same device (torch in, torch out).
* Memory: for torch inputs every output and every scratch buffer comes from
  torch's caching allocator on the caller's current stream (so
  ``torch.cuda.memory_allocated`` counts it and ``Tensor.record_stream`` works
  as for any tensor); CuPy inputs use CuPy's memory pool.
* Streams: kernels are queued on the caller's current stream
  (``torch.cuda.current_stream()`` for tensors, CuPy's current stream for CuPy
  arrays).
* Qualities and tables: the divisors of all 100 qualities live on each device
  (built once). One quality per row (``roundtrip(x, 50)``, ``roundtrip_many``)
  travels as a kernel argument; per-image qualities given on the device
  (``roundtrip_float(x, q_tensor)``) are read in place; per-image qualities
  given on the host are copied through pinned memory without waiting.
* Host synchronisation: none, in any call, except :meth:`CudaBackend.reconstruct`
  with ``validate=True`` (the default), which reads back one flag to refuse
  out-of-range coefficients with the CPU's ValueError (see there). The first
  call on a device compiles the kernels and builds the tables (once, with one
  synchronisation); warm up before capturing a CUDA graph.
* CUDA graphs: after a warm-up call, ``roundtrip``, ``roundtrip_many``,
  ``roundtrip_float``, ``coefficients``, ``bits`` and ``frequencies`` can be
  captured; per-image qualities must then be a CUDA tensor (host arrays would
  be copied from host memory at capture time only), and ``reconstruct``
  needs ``validate=False``.

Besides the backend (``helmholtz._codec.registry.get("cuda")``), this module offers
:func:`roundtrip_float`, a round trip that writes normalised float32 or
bfloat16 channels-first tensors for training, and :func:`bits` /
:func:`frequencies` for entropy-coded sizes on the GPU.
"""

from __future__ import annotations

import hashlib
import threading
from collections import deque
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from . import reference as ref
from .arrays import as_batch, as_qualities, check_normalization, check_subsampling, resolve_subsampling
from ..errors import BackendUnavailable

__all__ = ["load_backend", "CudaBackend", "roundtrip_float", "bits", "frequencies", "kernel_source_dir"]

_FACTORS = {"4:4:4": (1, 1), "4:2:2": (2, 1), "4:2:0": (2, 2)}
_THREADS = 256  # every pixel kernel; the kernels' __launch_bounds__(256, 4) hold them to 64 registers
_BITS_THREADS = 128  # 4 warps, one image each
_SMALL_SHARED_WANTED = 56 * 1024  # 4 CTAs of 256 threads per SM on an H100 (228 KiB)
_SMALL_SHARED_DEFAULT = 48 * 1024  # without the opt-in attribute
_MAX_IMAGES_PER_CTA = 16
_SMALL_ITEM_LIMIT = 1 << 16  # the small kernel's index math divides numbers below 2^16
_SCRATCH_LIMIT = 1 << 30  # bytes of global scratch per chunk of the large-image path
_GRID_Y_LIMIT = 65535  # images per launch of the per-phase kernels (gridDim.y)
_PACKED_ROWS = 18  # quality rows passed as kernel arguments, 7 bits each in two uint64
_OUT_KINDS = {"uint8": 0, "float32": 1, "bfloat16": 2}
_TILE_WORDS = 72  # csrc/hz_gpu_tiles.h HZ_GPU_TILE_WORDS / HZ_GPU_TABLE_WORDS
_OPT_WORK_BYTES = 4 * 260 * 4 + (36 + 18 + 36) * 4  # sizeof(hz_opt_work) in csrc/hz_gpu_block.cuh
_RANGE_MESSAGE = (
    "coefficients are outside the range a baseline JPEG encoder produces from 8-bit samples "
    f"(|coefficient * table entry| <= {ref.MAX_DEQUANTIZED})"
)

_INSTALL_HINT = (
    "the 'cuda' backend needs CuPy: pip install 'helmholtz-ml[cuda]' (CUDA 12) or "
    "'helmholtz-ml[cuda13]' (CUDA 13)"
)

_KERNELS = ("hz_init_tables", "hz_roundtrip_small", "hz_convert_global", "hz_block_global", "hz_emit_global",
            "hz_bits_std", "hz_frequencies", "hz_bits_optimal")


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


# ---- compiled module and resident tables, one per device ----------------------------------------

class _Module:
    """The compiled kernels and the constant tables on one device."""

    def __init__(self, cupy, device_id: int):
        csrc = kernel_source_dir()
        source = (csrc / "hz_kernels.cu").read_text()
        # CuPy's disk cache keys on the source text: fold the headers' hash in so
        # that an edited header recompiles.
        digest = hashlib.sha256()
        for path in sorted(list(csrc.glob("*.h")) + list(csrc.glob("*.cuh"))):
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
        source += f"\n// helmholtz headers sha256 {digest.hexdigest()}\n"
        with cupy.cuda.Device(device_id):
            self.module = cupy.RawModule(code=source, options=("-std=c++14", f"-I{csrc}"))
            self.fn = {name: self.module.get_function(name) for name in _KERNELS}
            # The small-image kernel may use more than 48 KiB of shared memory where the
            # device allows the opt-in (4 CTAs per SM instead of 3 on an H100).
            self.small_shared_limit = _SMALL_SHARED_DEFAULT
            try:
                self.fn["hz_roundtrip_small"].max_dynamic_shared_size_bytes = _SMALL_SHARED_WANTED
                self.small_shared_limit = _SMALL_SHARED_WANTED
            except Exception:  # older CuPy / device without the attribute
                pass
            self.div = cupy.empty(101 * 2 * 64, dtype=cupy.uint32)
            self.lens = cupy.empty(4 * 256, dtype=cupy.uint8)
            self.codes = cupy.empty(4 * 256, dtype=cupy.uint16)
            stream = cupy.cuda.Stream(non_blocking=True)
            with stream:
                self.fn["hz_init_tables"]((51,), (_THREADS,), (self.div, self.lens, self.codes))
            # Once per device and process: the tables must be complete before any
            # (possibly non-blocking) caller stream reads them.
            stream.synchronize()
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


# ---- arrays, devices, streams, memory -----------------------------------------------------------

# Hooks the CPU tests replace (tests/test_cuda_fake_device.py): the device type torch tensors must
# have, the caller's stream, and whether that stream is capturing a CUDA graph.
_TORCH_DEVICE_TYPE = "cuda"


def _torch_stream_ptr(torch, device) -> int:
    return int(torch.cuda.current_stream(device).cuda_stream)


def _torch_capturing(torch, device) -> bool:
    return bool(torch.cuda.is_current_stream_capturing())


def _cupy_capturing(cp, stream) -> bool:
    try:
        return bool(cp.cuda.runtime.streamIsCapturing(stream.ptr))
    except Exception:  # CuPy without the call: capture is then not supported anyway
        return False


def _is_torch(x) -> bool:
    return type(x).__module__.startswith("torch")


def _is_cupy(x) -> bool:
    return type(x).__module__.startswith("cupy")


# Pinned host buffers whose asynchronous copies may still be running (CuPy path), with
# the events that end them; dropped once their event has completed.
_PINNED: deque = deque()

# torch has no uint16 / uint32 kernels to speak of: those buffers are int16 / int32 bits
_TORCH_DTYPES = {"uint8": "uint8", "int16": "int16", "int32": "int32", "int64": "int64", "float32": "float32",
                 "bfloat16": "bfloat16", "uint16": "int16", "uint32": "int32"}


class _Ctx:
    """Where a call runs: the array kind, the device, the stream, and how memory is made."""

    def __init__(self, x):
        self.cupy = cp = _import_cupy()
        self.torch_in = _is_torch(x)
        if self.torch_in:
            import torch

            self.torch = torch
            if x.device.type != _TORCH_DEVICE_TYPE:
                raise ValueError(f"the 'cuda' backend needs CUDA tensors; got a tensor on {x.device}")
            self.torch_device = x.device
            self.device_id = x.device.index if x.device.index is not None else torch.cuda.current_device()
            self.stream = cp.cuda.ExternalStream(_torch_stream_ptr(torch, x.device), self.device_id)
        elif _is_cupy(x):
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

    # -- memory: torch's caching allocator for torch callers, CuPy's pool otherwise
    def empty(self, shape, dtype: str):
        if self.torch_in:
            return self.torch.empty(tuple(int(s) for s in shape), dtype=getattr(self.torch, _TORCH_DTYPES[dtype]),
                                    device=self.torch_device)
        return self.cupy.empty(tuple(int(s) for s in shape), dtype="int16" if dtype == "bfloat16" else dtype)

    def zeros_int32(self, n: int):
        if self.torch_in:
            return self.torch.zeros(n, dtype=self.torch.int32, device=self.torch_device)
        return self.cupy.zeros(n, dtype=self.cupy.int32)

    def capturing(self) -> bool:
        if self.torch_in:
            return _torch_capturing(self.torch, self.torch_device)
        return _cupy_capturing(self.cupy, self.stream)

    def upload(self, host: np.ndarray, what: str):
        """A device copy of a small host array, through pinned memory, without waiting for it."""
        if self.capturing():
            raise ValueError(
                f"{what} given on the host cannot be captured in a CUDA graph (the copy would read host memory at "
                "capture time only); pass them as a CUDA tensor / CuPy array, or use one value for all images"
            )
        host = np.ascontiguousarray(host)
        if self.torch_in:
            t = self.torch.from_numpy(host)
            return t.pin_memory().to(self.torch_device, non_blocking=True)
        cp = self.cupy
        import cupyx

        pinned = cupyx.empty_pinned(host.shape, host.dtype)
        pinned[...] = host
        out = cp.empty(host.shape, dtype=host.dtype)
        out.set(pinned, stream=self.stream)
        event = cp.cuda.Event(disable_timing=True)
        event.record(self.stream)
        while _PINNED and _PINNED[0][0].done:
            _PINNED.popleft()
        _PINNED.append((event, pinned))
        return out

    def download_flag(self, flag) -> int:
        """The one read-back of the module: reconstruct's range flag (synchronises the stream)."""
        if self.torch_in:
            return int(flag.item())
        return int(self.cupy.asnumpy(flag)[0])


def _ptr(a) -> np.uint64:
    """The device address of a torch tensor or CuPy array (NULL for None)."""
    if a is None:
        return np.uint64(0)
    if _is_torch(a):
        return np.uint64(a.data_ptr())
    return np.uint64(a.data.ptr)


def _i32(v):
    return np.int32(v)


def _i64(v):
    return np.int64(v)


def _f32(v):
    return np.float32(v)


def _contiguous(ctx, x):
    if ctx.torch_in:
        return x.detach().contiguous()
    return ctx.cupy.ascontiguousarray(x)


def _dtype_name(x) -> str:
    return str(x.dtype).replace("torch.", "")


# ---- geometry, mirrored from csrc/hz_gpu_tiles.h --------------------------------------------------

class _Geom:
    """hz_gpu_make_geom: block counts and the MCU-padded pixel area of one image size."""

    def __init__(self, h: int, w: int, c: int, subsampling: str):
        hs, vs = _FACTORS[subsampling] if c == 3 else (1, 1)
        self.h, self.w, self.c, self.hs, self.vs = h, w, c, hs, vs
        self.bw0, self.bh0 = -(-w // 8), -(-h // 8)
        self.nb0 = self.bw0 * self.bh0
        self.wt, self.ht = self.bw0 * 8, self.bh0 * 8
        if c == 1:
            self.bw1 = self.bh1 = self.nb1 = 0
            self.blocks = self.nb0
        else:
            cw1, ch1 = -(-w // hs), -(-h // vs)
            self.bw1, self.bh1 = -(-cw1 // 8), -(-ch1 // 8)
            self.nb1 = self.bw1 * self.bh1
            self.blocks = self.nb0 + 2 * self.nb1
            self.wt = max(self.wt, self.bw1 * 8 * hs)
            self.ht = max(self.ht, self.bh1 * 8 * vs)
        self.shape_blocks = [(self.bh0, self.bw0)] + ([(self.bh1, self.bw1)] * 2 if c == 3 else [])

    def small_layout(self, ipc: int, threads: int) -> int:
        """Dynamic shared bytes of hz_roundtrip_small (hz_make_small_layout)."""
        rb = _round_up(self.wt * self.c + 16, 16)
        if rb % 32 == 0:
            rb += 16
        tile = _round_up(max(self.ht * rb + 16, self.blocks * 128), 128)
        planes = _round_up(self.blocks * 64, 128)
        return ipc * (tile + planes) + ipc * 2 * _TILE_WORDS * 4 + (threads // 8) * _TILE_WORDS * 4

    def small_items(self) -> int:
        """The largest per-image item count among the small kernel's loops (see _SMALL_ITEM_LIMIT)."""
        stage = max(self.ht * 8, self.ht * self.wt * self.c)
        convert = self.convert_items()
        emit = self.bh0 * -(-self.w // 16) * 32
        return max(stage, convert, emit, self.blocks, 128)

    def convert_items(self) -> int:
        """hz_items_per_block: 16 per luma / 4:4:4 block, 32 per subsampled chroma block."""
        return _round_up(self.nb0 * 16, 32) + 2 * _round_up(self.nb1 * (32 if self.hs == 2 else 16), 32)

    def emit_items(self) -> int:
        return self.bh0 * -(-self.w // 16) * 32


def _round_up(v: int, m: int) -> int:
    return -(-v // m) * m


def _images_per_cta(mod: _Module, g: _Geom, n: int) -> int:
    """Images per CTA of the small kernel (0: the image does not fit; use the per-phase kernels)."""
    best = 0
    for ipc in range(1, _MAX_IMAGES_PER_CTA + 1):
        if g.small_layout(ipc, _THREADS) > mod.small_shared_limit or ipc * g.small_items() >= _SMALL_ITEM_LIMIT:
            break
        best = ipc
    if best == 0:
        return 0
    # keep at least ~4 CTAs per SM when the batch is small
    return max(1, min(best, -(-n // (4 * mod.sm_count))))


# ---- qualities ---------------------------------------------------------------------------------

class _Qualities:
    """Per (row, image) qualities: packed kernel arguments, or a device array (rows, n)."""

    def __init__(self, rows: int, n: int, device=None, packed=None):
        self.rows, self.n, self.device, self.packed = rows, n, device, packed

    def chunks(self):
        """(first row, row count, qual pointer, qp0, qp1) per launch group of rows."""
        if self.device is not None:
            yield 0, self.rows, self.device, np.uint64(0), np.uint64(0)
            return
        for r0 in range(0, self.rows, _PACKED_ROWS):
            rows = self.packed[r0:r0 + _PACKED_ROWS]
            p = [0, 0]
            for k, q in enumerate(rows):
                p[k // 9] |= int(q) << (7 * (k % 9))
            yield r0, len(rows), None, np.uint64(p[0]), np.uint64(p[1])


def _qualities(ctx, q, n: int) -> _Qualities:
    """From a host (rows, n) int array, or a device array of n (one row) or (rows, n)."""
    if _is_torch(q) or _is_cupy(q):
        if _is_torch(q) and q.device.type != _TORCH_DEVICE_TYPE:
            q = np.asarray(q)
        else:
            arr = q.reshape(1, -1) if q.ndim == 1 else q
            if tuple(arr.shape)[1] != n:
                raise ValueError(f"quality has {tuple(arr.shape)[1]} entries per row but there are {n} images")
            if _dtype_name(arr) != "int32":
                arr = arr.to(ctx.torch.int32) if ctx.torch_in and _is_torch(arr) else arr.astype("int32")
            arr = _contiguous(ctx, arr)
            return _Qualities(int(arr.shape[0]), n, device=arr)
    q = np.asarray(q, dtype=np.int32).reshape(-1, n)
    if (q == q[:, :1]).all():
        return _Qualities(q.shape[0], n, packed=q[:, 0].tolist())
    return _Qualities(q.shape[0], n, device=ctx.upload(q, "per-image qualities"))


def _offset(ptr: np.uint64, nbytes: int) -> np.uint64:
    return np.uint64(int(ptr) + nbytes) if int(ptr) else ptr


# ---- the round-trip / forward driver -------------------------------------------------------------

def _run(ctx, images, quals: _Qualities, subsampling, *, want_coefs=False, out_kind=0, mean=None, std=None):
    """The round trip (or forward transform). images: (N, H, W, C) uint8 on ctx's device, contiguous.

    Returns pixels (rows, N, H, W, C) / (rows, N, C, H, W), or per-component
    coefficient arrays (rows, N, bh, bw, 8, 8).
    """
    mod = ctx.mod
    n, h, w, c = (int(s) for s in images.shape)
    g = _Geom(h, w, c, subsampling)
    rows = quals.rows
    if want_coefs:
        out = None
        coefs = [ctx.empty((rows, n, bh, bw, 8, 8), "int16") for bh, bw in g.shape_blocks]
    else:
        coefs = None
        out = ctx.empty((rows, n, h, w, c) if out_kind == 0 else (rows, n, c, h, w),
                        ("uint8", "float32", "bfloat16")[out_kind])
    cptr = [_ptr(coefs[k]) if coefs and k < len(coefs) else np.uint64(0) for k in range(3)]
    normalize = mean is not None
    mean3 = np.resize(np.asarray(mean if normalize else [0.0], np.float32), 3)
    std3 = np.resize(np.asarray(std if normalize else [1.0], np.float32), 3)
    ms = tuple(_f32(v) for v in mean3) + tuple(_f32(v) for v in std3)
    mode = 1 if want_coefs else 0
    x = _ptr(images)
    optr = _ptr(out)

    ipc = _images_per_cta(mod, g, n)
    if ipc:
        shared = g.small_layout(ipc, _THREADS)
        for r0, nr, qdev, qp0, qp1 in quals.chunks():
            mod.fn["hz_roundtrip_small"](
                (-(-n // ipc),), (_THREADS,),
                (x, _i32(n), _i32(h), _i32(w), _i32(c), _i32(g.hs), _i32(g.vs), _ptr(qdev), qp0, qp1, _i32(nr),
                 _i32(r0), _i32(ipc), mod.div, _i32(mode), _i32(out_kind), optr) + ms
                + (_i32(int(normalize)),) + tuple(cptr),
                shared_mem=shared,
            )
        return coefs if want_coefs else out

    # Large images: one kernel per phase over chunks of images, planes (and DCTs) in scratch.
    several = rows > 1
    per_image = g.blocks * 64 * (3 if several else 1)
    chunk = max(1, min(n, _SCRATCH_LIMIT // per_image, _GRID_Y_LIMIT, (2**31 - 1) // (g.blocks * 8)))
    planes = ctx.empty((chunk * g.blocks * 64,), "uint8")
    fd = ctx.empty((chunk * g.blocks * 64,), "int16") if several else None
    tiles_shared = (_THREADS // 8) * _TILE_WORDS * 4 + 128 * 4
    img_bytes = h * w * c
    for i0 in range(0, n, chunk):
        m = min(chunk, n - i0)
        mod.fn["hz_convert_global"](
            (-(-g.convert_items() // _THREADS), m), (_THREADS,),
            (_offset(x, i0 * img_bytes), _i32(h), _i32(w), _i32(c), _i32(g.hs), _i32(g.vs), _ptr(planes)))
        groups = m * g.blocks
        grid = (max(1, min(-(-groups // (_THREADS // 8)), mod.sm_count * 8)),)

        def block(kmode, qdev, qp0, qp1, q, q_out):
            mod.fn["hz_block_global"](
                grid, (_THREADS,),
                (_i32(kmode), _ptr(planes), _ptr(fd), _i32(m), _i32(h), _i32(w), _i32(c), _i32(g.hs), _i32(g.vs),
                 _ptr(qdev), qp0, qp1, _i32(q), _i64(n), _i64(i0), _i32(q_out), mod.div) + tuple(cptr)
                + (np.uint64(0), np.uint64(0)),
                shared_mem=tiles_shared)

        if several:
            block(2, None, np.uint64(0), np.uint64(0), 0, 0)
        for r0, nr, qdev, qp0, qp1 in quals.chunks():
            for q in range(nr):
                block((4 if want_coefs else 3) if several else (1 if want_coefs else 0), qdev, qp0, qp1, q, r0 + q)
                if not want_coefs:
                    mod.fn["hz_emit_global"](
                        (-(-g.emit_items() // _THREADS), m), (_THREADS,),
                        (_ptr(planes), _i32(h), _i32(w), _i32(c), _i32(g.hs), _i32(g.vs), _i64((r0 + q) * n + i0),
                         _i32(out_kind), optr) + ms + (_i32(int(normalize)),))
    return coefs if want_coefs else out


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
            x = _contiguous(ctx, images)
            return _run(ctx, x, _qualities(ctx, qualities, int(x.shape[0])), subsampling)

    def forward(self, images, qualities, subsampling: str, num_threads: int = 1):
        """uint8 (N, H, W, C) -> for each quality row a list of int16 (N, bh, bw, 8, 8) per component."""
        ctx = _Ctx(images)
        with ctx:
            x = _contiguous(ctx, images)
            quals = _qualities(ctx, qualities, int(x.shape[0]))
            coefs = _run(ctx, x, quals, subsampling, want_coefs=True)
            return [[comp[q] for comp in coefs] for q in range(quals.rows)]

    def reconstruct(self, components, tables, height: int, width: int, subsampling: str, num_threads: int = 1,
                    *, validate: bool = True):
        """int16 blocks per component + uint16 tables (N, 2, 8, 8) -> uint8 (N, H, W, C).

        Parameters
        ----------
        validate : bool
            Refuse coefficients whose dequantised values lie beyond what an 8-bit
            baseline encoder produces (``|coefficient * table entry| > 2176``)
            with the CPU backend's ValueError. The kernels check every block on
            the device and set a flag; reading that flag back is this module's
            only host synchronisation (one 4-byte copy on the caller's stream),
            and it cannot happen inside CUDA graph capture. ``validate=False``
            skips the read: nothing synchronises and the call can be captured,
            and out-of-range blocks decode with the islow arithmetic as it
            falls (deterministic, not guaranteed to match any libjpeg build).

        Raises
        ------
        ValueError
            With ``validate=True``, for out-of-range coefficients.
        RuntimeError
            With ``validate=True`` while the stream is capturing a CUDA graph.
        """
        ctx = _Ctx(components[0])
        with ctx:
            if validate and ctx.capturing():
                raise RuntimeError(
                    "reconstruct(validate=True) reads back a range flag, which cannot happen while capturing a CUDA "
                    "graph; pass validate=False to capture it (out-of-range coefficients are then not refused)"
                )
            comps = [_contiguous(ctx, x) for x in components]
            for k in comps:
                if _dtype_name(k) != "int16":
                    raise ValueError(f"components must be int16; got {k.dtype}")
            n = int(comps[0].shape[0])
            c = 1 if len(comps) == 1 else 3
            g = _Geom(height, width, c, subsampling)
            if _is_torch(tables) or _is_cupy(tables):
                t = _contiguous(ctx, tables)
                if _dtype_name(t) != "int16" and _dtype_name(t) != "uint16":
                    t = t.to(ctx.torch.int16) if ctx.torch_in and _is_torch(t) else t.astype("uint16")
            else:  # NumPy (jpeg.Coefficients.tables)
                t = ctx.upload(np.asarray(tables, np.uint16).reshape(n, 128), "quantisation tables")
            out = ctx.empty((n, height, width, c), "uint8")
            flag = ctx.zeros_int32(1)
            mod = ctx.mod
            chunk = max(1, min(n, _SCRATCH_LIMIT // (g.blocks * 64), _GRID_Y_LIMIT, (2**31 - 1) // (g.blocks * 8)))
            planes = ctx.empty((chunk * g.blocks * 64,), "uint8")
            cptr = [_ptr(comps[k]) if k < len(comps) else np.uint64(0) for k in range(3)]
            tiles_shared = (_THREADS // 8) * _TILE_WORDS * 4 + 128 * 4
            zero = (np.float32(0),) * 6
            for i0 in range(0, n, chunk):
                m = min(chunk, n - i0)
                grid = (max(1, min(-(-(m * g.blocks) // (_THREADS // 8)), mod.sm_count * 8)),)
                mod.fn["hz_block_global"](
                    grid, (_THREADS,),
                    (_i32(5), _ptr(planes), np.uint64(0), _i32(m), _i32(height), _i32(width), _i32(c), _i32(g.hs),
                     _i32(g.vs), np.uint64(0), np.uint64(0), np.uint64(0), _i32(0), _i64(n), _i64(i0), _i32(0),
                     mod.div) + tuple(cptr) + (_ptr(t), _ptr(flag)),
                    shared_mem=tiles_shared)
                mod.fn["hz_emit_global"](
                    (-(-g.emit_items() // _THREADS), m), (_THREADS,),
                    (_ptr(planes), _i32(height), _i32(width), _i32(c), _i32(g.hs), _i32(g.vs), _i64(i0), _i32(0),
                     _ptr(out)) + zero + (_i32(0),))
            if validate and ctx.download_flag(flag):
                raise ValueError(_RANGE_MESSAGE)
            return out


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
    quality: Any,
    subsampling: str | None = None,
    dtype: str = "float32",
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> Any:
    """JPEG round trip on the GPU straight into a channels-first float batch for training.

    Parameters
    ----------
    images : CuPy array or torch CUDA tensor
        uint8 ``(N, H, W, C)`` (or ``(H, W, C)`` / ``(H, W)``), C = 1 or 3.
    quality : int, sequence of int, or CUDA tensor / CuPy array
        1..100, for all images or one per image. A device array of N int
        qualities is read in place (nothing is copied from the host, so the
        call can be captured in a CUDA graph); values outside 1..100 are
        clamped on the device instead of raising.
    subsampling : {None, "4:2:0", "4:2:2", "4:4:4"}
        None is Pillow's default, as for :func:`helmholtz.jpeg.roundtrip`.
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
    if subsampling is not None:
        check_subsampling(subsampling, none_ok=True)
    batch = _device_batch(images)
    subsampling = resolve_subsampling(subsampling, int(batch.array.shape[3]))
    mean, std = check_normalization(dtype, mean, std, int(batch.array.shape[3]))
    n = int(batch.array.shape[0])
    device_q = (_is_torch(quality) and quality.device.type == _TORCH_DEVICE_TYPE) or _is_cupy(quality)
    if device_q:
        if int(np.prod(tuple(quality.shape))) != n:
            raise ValueError(f"quality has {tuple(quality.shape)} entries but there are {n} images; give one per image")
        q = quality.reshape(1, n)
    else:
        q = as_qualities(quality, n)[None, :]
    ctx = _Ctx(batch.array)
    with ctx:
        x = _contiguous(ctx, batch.array)
        return _run(ctx, x, _qualities(ctx, q, n), subsampling, out_kind=_OUT_KINDS[dtype], mean=mean, std=std)[0]


# ---- entropy-coded sizes ---------------------------------------------------------------------------

def _scan_args(ctx, components, subsampling):
    comps = [_contiguous(ctx, x) for x in components]
    for x in comps:
        if _dtype_name(x) != "int16" or x.ndim != 5:
            raise ValueError(f"components must be int16 (N, bh, bw, 8, 8) arrays; got {x.dtype} {tuple(x.shape)}")
    ncomp = len(comps)
    if ncomp not in (1, 3):
        raise ValueError(f"components must be 1 (grayscale) or 3 arrays; got {ncomp}")
    hs, vs = _FACTORS[resolve_subsampling(subsampling, ncomp)] if ncomp == 3 else (1, 1)
    n = int(comps[0].shape[0])
    bh0, bw0 = int(comps[0].shape[1]), int(comps[0].shape[2])
    bh1, bw1 = (int(comps[1].shape[1]), int(comps[1].shape[2])) if ncomp == 3 else (0, 0)
    if ncomp == 3:
        mcu = (-(-bh0 // vs), -(-bw0 // hs))
        for k in (1, 2):
            if (int(comps[k].shape[0]),) + tuple(int(s) for s in comps[k].shape[1:3]) != (n,) + mcu:
                raise ValueError(
                    f"chroma component {k} has shape {tuple(comps[k].shape)}; with luma {tuple(comps[0].shape)} and "
                    f"{subsampling} it must be {(n,) + mcu + (8, 8)}"
                )
    # The kernels count symbols in 32-bit counters per image and table.
    if max(bh0 * bw0, 2 * bh1 * bw1) * 64 >= 2**32:
        raise ValueError(f"images of {bh0}x{bw0} luma blocks are too large for the GPU entropy kernels")
    ptr = [_ptr(comps[k]) if k < ncomp else np.uint64(0) for k in range(3)]
    return comps, (ptr[0], ptr[1], ptr[2], _i32(ncomp), _i64(n), _i32(bh0), _i32(bw0), _i32(bh1), _i32(bw1),
                   _i32(hs), _i32(vs)), n


def _bits_grid(ctx, n: int) -> tuple:
    return (int(max(1, min(-(-n // (_BITS_THREADS // 32)), ctx.mod.sm_count * 16))),)


def frequencies(components: Sequence[Any], subsampling: str | None = None):
    """Huffman symbol counts of each image's scan, on the GPU.

    ``components`` are quantised coefficients on a CUDA device, one int16
    ``(N, bh, bw, 8, 8)`` array per component (``jpeg.coefficients(...,
    backend="cuda").components``). Returns ``(freq, extra)``: int64
    ``(N, 4, 256)`` and int64 ``(N,)`` (-1 for coefficients outside the baseline
    range), of the input's kind; equal to ``helmholtz.jpeg.symbol_frequencies``.
    ``subsampling`` None is Pillow's default (4:2:0 for three components).
    One warp counts each image; nothing synchronises the host.
    """
    ctx = _Ctx(components[0])
    with ctx:
        _, args, n = _scan_args(ctx, components, subsampling)
        freq = ctx.empty((n, 4, 256), "int64")
        extra = ctx.empty((n,), "int64")
        ctx.mod.fn["hz_frequencies"](_bits_grid(ctx, n), (_BITS_THREADS,), args + (_ptr(freq), _ptr(extra)),
                                     shared_mem=(_BITS_THREADS // 32) * 4096)
        return freq, extra


def bits(components: Sequence[Any], subsampling: str | None = None, optimize: bool = False):
    """Entropy-coded bits of each image's scan, on the GPU.

    As ``helmholtz.jpeg.bits`` (before byte stuffing and padding): int64
    ``(N,)`` of the input's kind, -1 for an image whose coefficients lie outside
    the baseline range. One warp counts each image, with the standard tables or
    (``optimize=True``) with each image's optimal tables, which the warp builds
    as libjpeg's ``jpeg_gen_optimal_table`` does. Nothing synchronises the host.
    """
    ctx = _Ctx(components[0])
    with ctx:
        _, args, n = _scan_args(ctx, components, subsampling)
        out = ctx.empty((n,), "int64")
        if optimize:
            ctx.mod.fn["hz_bits_optimal"](_bits_grid(ctx, n), (_BITS_THREADS,), args + (_ptr(out),),
                                          shared_mem=(_BITS_THREADS // 32) * (4096 + _OPT_WORK_BYTES))
        else:
            ctx.mod.fn["hz_bits_std"](_bits_grid(ctx, n), (_BITS_THREADS,), args + (ctx.mod.lens, _ptr(out)),
                                      shared_mem=1024)
        return out
