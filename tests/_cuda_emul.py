"""The CUDA kernels on the host: build tests/cuda_emul.cpp, launch kernels, fake CuPy over it.

Used by tests/test_cuda_emulation.py (kernels against the C core, barriers,
bank conflicts) and tests/test_cuda_fake_device.py (helmholtz/_cuda.py end to
end). Needs g++.
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
import types
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "tests" / "cuda_emul.cpp"
HAVE_GXX = shutil.which("g++") is not None

_LIBS: dict[str, "Emul"] = {}


def build(out_dir: Path) -> "Emul":
    """Compile the emulation library into out_dir (once per process)."""
    key = "lib"
    if key not in _LIBS:
        so = Path(out_dir) / "libhzemul.so"
        cmd = ["g++", "-O2", "-std=c++17", "-Wall", "-Wextra", "-Werror", "-fwrapv", f"-I{ROOT / 'csrc'}", "-shared",
               "-fPIC", str(SOURCE), "-o", str(so)]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            raise RuntimeError(f"building the emulation failed:\n{res.stderr}")
        _LIBS[key] = Emul(ctypes.CDLL(str(so)))
    return _LIBS[key]


class EmulError(RuntimeError):
    """A kernel failed in the emulation: barrier misuse, bad shared access, uninitialised read."""


class Emul:
    """ctypes front of the emulation library."""

    def __init__(self, lib):
        self.lib = lib
        lib.hz_emul_launch.restype = ctypes.c_int
        lib.hz_emul_launch.argtypes = [ctypes.c_char_p, ctypes.c_uint, ctypes.c_uint, ctypes.c_uint, ctypes.c_size_t,
                                       ctypes.POINTER(ctypes.c_void_p), ctypes.c_char_p, ctypes.c_int]
        lib.hz_emul_param_sizes.restype = ctypes.c_int
        lib.hz_emul_param_sizes.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_int), ctypes.c_int]
        lib.hz_emul_config.argtypes = [ctypes.c_int, ctypes.c_uint, ctypes.c_int, ctypes.c_char_p]
        lib.hz_emul_bank_report.restype = ctypes.c_int
        lib.hz_emul_bank_report.argtypes = [ctypes.c_char_p, ctypes.c_int]
        self.config()

    def config(self, order: str = "forward", seed: int = 1, log: bool = False, drop: tuple = ()):
        """Thread order between barriers, bank logging, barrier sites to drop (resets the bank statistics)."""
        self.order = order
        self.lib.hz_emul_config({"forward": 0, "reverse": 1, "random": 2}[order], seed, int(log),
                                ",".join(drop).encode())

    def bank_report(self) -> dict:
        """site -> dict(instances, conflicted, worst_ways, wavefronts, ideal) since the last config."""
        size = self.lib.hz_emul_bank_report(None, 0)
        buf = ctypes.create_string_buffer(size)
        self.lib.hz_emul_bank_report(buf, size)
        out = {}
        for line in buf.value.decode().splitlines():
            site, *nums = line.split()
            out[site] = dict(zip(("instances", "conflicted", "worst_ways", "wavefronts", "ideal"), map(int, nums)))
        return out

    def param_sizes(self, name: str) -> list[int]:
        sizes = (ctypes.c_int * 64)()
        count = self.lib.hz_emul_param_sizes(name.encode(), sizes, 64)
        if count < 0:
            raise KeyError(name)
        return list(sizes[:count])

    def launch(self, name: str, grid, block, args, shared_mem: int = 0):
        """Launch as CuPy would: NumPy arrays / objects with a device pointer, NumPy scalars."""
        sizes = self.param_sizes(name)
        if len(sizes) != len(args):
            raise TypeError(f"{name} takes {len(sizes)} arguments; got {len(args)}")
        values = []
        for k, (a, size) in enumerate(zip(args, sizes)):
            v = _ctype(a)
            if ctypes.sizeof(v) != size:
                raise TypeError(f"{name} argument {k}: the kernel takes {size} bytes, got {type(a).__name__} "
                                f"({ctypes.sizeof(v)} bytes)")
            values.append(v)
        params = (ctypes.c_void_p * len(values))(*[ctypes.cast(ctypes.pointer(v), ctypes.c_void_p) for v in values])
        grid = tuple(grid) + (1,) * (2 - len(grid))
        err = ctypes.create_string_buffer(1024)
        rc = self.lib.hz_emul_launch(name.encode(), grid[0], grid[1], block[0], shared_mem, params, err, 1024)
        if rc != 0:
            raise EmulError(err.value.decode())


def _ctype(a):
    if isinstance(a, np.ndarray):
        return ctypes.c_void_p(a.ctypes.data)
    if isinstance(a, np.uint64):
        return ctypes.c_uint64(int(a))
    if isinstance(a, np.int64):
        return ctypes.c_int64(int(a))
    if isinstance(a, np.int32):
        return ctypes.c_int32(int(a))
    if isinstance(a, np.float32):
        return ctypes.c_float(float(a))
    if hasattr(a, "data_ptr"):  # a torch tensor (the fake device keeps torch tensors on the CPU)
        return ctypes.c_void_p(a.data_ptr())
    raise TypeError(f"unexpected kernel argument {type(a).__name__}")


# ---- a fake CuPy whose arrays live in host memory and whose kernels run in the emulation ----

class FakeArray(np.ndarray):
    """A host array that says it is a CuPy array on device 0."""

    class _Dev:
        id = 0

    device = _Dev()

    @property
    def data(self):  # CuPy: a.data.ptr is the device address
        return types.SimpleNamespace(ptr=self.ctypes.data)

    def get(self):
        FAKE_STATE["downloads"] += 1
        return np.array(self)

    def set(self, arr, stream=None):
        np.copyto(np.asarray(self), np.asarray(arr))


FakeArray.__module__ = "cupy"

# What the fake device saw: kernel launches, CuPy allocations after module set-up, read-backs.
FAKE_STATE = {"launches": [], "allocations": 0, "downloads": 0, "capturing": False, "shared_attr": {}}


def fake(x) -> FakeArray:
    return np.asarray(x).view(FakeArray)


def make_fake_cupy(emul: Emul) -> tuple[types.ModuleType, types.ModuleType]:
    """(cupy, cupyx) stand-ins over the emulation."""
    cp = types.ModuleType("cupy")
    cp.__version__ = "fake"
    for name in ("int16", "int32", "int64", "uint8", "uint16", "uint32", "float32"):
        setattr(cp, name, getattr(np, name))
    cp.ndarray = FakeArray

    def empty(shape, dtype=np.float32):
        FAKE_STATE["allocations"] += 1
        a = np.empty(shape, dtype)
        a.reshape(-1).view(np.uint8).fill(0x5A)  # garbage, as device memory would hold
        return fake(a)

    def zeros(shape, dtype=np.float32):
        FAKE_STATE["allocations"] += 1
        return fake(np.zeros(shape, dtype))

    def asnumpy(x):
        FAKE_STATE["downloads"] += 1
        return np.array(x)

    cp.empty = empty
    cp.zeros = zeros
    cp.asarray = lambda x, dtype=None: fake(np.ascontiguousarray(np.asarray(x), dtype=dtype))
    cp.ascontiguousarray = lambda x: x if (isinstance(x, FakeArray) and x.flags.c_contiguous) else fake(
        np.ascontiguousarray(np.asarray(x)))
    cp.asnumpy = asnumpy

    class _Ctx:
        def __init__(self, *a, **k):
            self.ptr = 0

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def synchronize(self):
            pass

    class _Event:
        def __init__(self, *a, **k):
            pass

        def record(self, stream=None):
            pass

        done = True

    cuda = types.SimpleNamespace()
    cuda.Device = _Ctx
    cuda.ExternalStream = _Ctx
    cuda.Stream = _Ctx
    cuda.Event = _Event
    cuda.get_current_stream = lambda: _Ctx()
    cuda.runtime = types.SimpleNamespace(
        getDeviceCount=lambda: 1, getDeviceProperties=lambda i: {"multiProcessorCount": 2},
        streamIsCapturing=lambda ptr: FAKE_STATE["capturing"],
    )
    cp.cuda = cuda

    class RawKernel:
        def __init__(self, name):
            self.name = name
            self._max_shared = 48 * 1024

        @property
        def max_dynamic_shared_size_bytes(self):
            return self._max_shared

        @max_dynamic_shared_size_bytes.setter
        def max_dynamic_shared_size_bytes(self, v):
            assert v <= 227 * 1024, "more than an H100 allows"
            self._max_shared = int(v)
            FAKE_STATE["shared_attr"][self.name] = int(v)

        def __call__(self, grid, block, args, shared_mem=0):
            FAKE_STATE["launches"].append(self.name)
            assert len(block) == 1 and block[0] % 32 == 0, block
            assert all(1 <= g < 2**31 for g in grid) and (len(grid) < 2 or grid[1] <= 65535), grid
            assert shared_mem <= self._max_shared, (self.name, shared_mem, self._max_shared)
            for a in args:
                if isinstance(a, np.ndarray):
                    assert a.flags.c_contiguous, "kernel argument must be contiguous"
            emul.launch(self.name, grid, block, args, shared_mem)

    class RawModule:
        def __init__(self, code=None, options=()):
            assert "-std=c++14" in options and any(o.startswith("-I") for o in options)
            assert "hz_roundtrip_small" in code

        def get_function(self, name):
            return RawKernel(name)

    cp.RawModule = RawModule

    cpx = types.ModuleType("cupyx")

    def empty_pinned(shape, dtype=np.float32):
        return np.empty(shape, dtype)

    cpx.empty_pinned = empty_pinned
    return cp, cpx


def install(monkeypatch, emul: Emul):
    """Put the fake CuPy in sys.modules for one test and return helmholtz._codec.cuda, reset to a fresh device.

    helmholtz._codec.cuda's as_batch also takes FakeArray (a NumPy subclass) and torch tensors
    (for the torch path, whose device hooks the torch tests point at the CPU) as device batches.
    """
    import sys

    cp, cpx = make_fake_cupy(emul)
    monkeypatch.setitem(sys.modules, "cupy", cp)
    monkeypatch.setitem(sys.modules, "cupyx", cpx)
    from helmholtz._codec import arrays as _arrays
    from helmholtz._codec import cuda as _cuda

    monkeypatch.setattr(_cuda, "_MODULES", {})

    def as_batch(images, name="images"):
        if type(images).__module__.startswith("torch"):
            shape = tuple(images.shape)
            return _arrays.Batch(images.reshape((1,) * (4 - images.ndim) + shape), shape, lambda x: x, "cuda", "torch")
        b = _arrays.as_batch(np.asarray(images), name)
        return _arrays.Batch(fake(b.array), b.shape, b.wrap, "cuda", "cupy")

    monkeypatch.setattr(_cuda, "as_batch", as_batch)
    FAKE_STATE.update(launches=[], allocations=0, downloads=0, capturing=False, shared_attr={})
    emul.config("forward")
    return _cuda
