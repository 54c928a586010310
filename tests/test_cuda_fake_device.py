"""helmholtz/_cuda.py driven end to end against a fake CuPy whose kernels are
csrc/hz_kernels.cu compiled for the host (tests/cuda_emul.cpp, -DHZ_EMUL_LIB).

The fake CuPy keeps arrays in host memory (a NumPy subclass that calls itself
``cupy``) and runs each RawKernel launch over its grid on the CPU, one CTA at
a time. This checks what no GPU-less test otherwise could: the Python side's
argument order and types, launch geometry, shared-memory sizes, chunking,
views and output layouts, against the kernels' real signatures. Needs g++.
It cannot check streams, DLPack or anything that happens on a real device.
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from helmholtz import jpeg
from helmholtz._codec import entropy as _entropy

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++ to build the host kernels")


class FakeArray(np.ndarray):
    """A host array that says it is a CuPy array on device 0."""

    class _Dev:
        id = 0

    device = _Dev()

    def get(self):
        return np.asarray(self)


FakeArray.__module__ = "cupy"


LAUNCHES: list = []  # kernel names launched on the fake device


def _fake(x):
    return np.asarray(x).view(FakeArray)


def make_fake_cupy(lib) -> types.ModuleType:
    cp = types.ModuleType("cupy")
    cp.__version__ = "fake"
    for name in ("int16", "int32", "int64", "uint8", "uint16", "float32"):
        setattr(cp, name, getattr(np, name))
    cp.ndarray = FakeArray
    def empty(shape, dtype=np.float32):
        a = np.empty(shape, dtype)
        a.reshape(-1).view(np.uint8).fill(0x5A)  # garbage, as device memory would hold
        return _fake(a)

    cp.empty = empty
    cp.asarray = lambda x, dtype=None: _fake(np.ascontiguousarray(np.asarray(x), dtype=dtype))
    cp.ascontiguousarray = lambda x: _fake(np.ascontiguousarray(np.asarray(x)))
    cp.asnumpy = lambda x: np.array(x)
    cp.from_dlpack = lambda x: _fake(np.from_dlpack(x))

    class _Ctx:
        def __init__(self, *a, **k):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    cuda = types.SimpleNamespace()
    cuda.Device = _Ctx
    cuda.ExternalStream = _Ctx
    class _Stream(_Ctx):
        def synchronize(self):
            pass

    cuda.get_current_stream = lambda: _Stream()
    cuda.runtime = types.SimpleNamespace(
        getDeviceCount=lambda: 1, getDeviceProperties=lambda i: {"multiProcessorCount": 2}
    )
    cp.cuda = cuda

    def convert(a):
        if isinstance(a, np.ndarray):
            assert a.flags.c_contiguous, "kernel argument must be contiguous"
            return ctypes.c_void_p(a.ctypes.data)
        if isinstance(a, np.int32):
            return ctypes.c_int32(int(a))
        if isinstance(a, np.int64):
            return ctypes.c_int64(int(a))
        if isinstance(a, np.uint64):
            return ctypes.c_void_p(int(a) or None)
        raise TypeError(f"unexpected kernel argument {type(a)}")

    class RawKernel:
        def __init__(self, name):
            self.name = name
            self.fn = getattr(lib, name)
            self.fn.restype = None

        def __call__(self, grid, block, args, shared_mem=0):
            LAUNCHES.append(self.name)
            assert block == (256,) and 1 <= grid[0] < 2**31 and shared_mem <= 48 * 1024
            cargs = [convert(a) for a in args]
            if self.name == "hz_roundtrip_small":
                shared = ctypes.create_string_buffer(b"\xab" * (shared_mem + 16), shared_mem + 16)
                for b in range(grid[0]):
                    lib.hz_emul_set(b, grid[0], shared)
                    self.fn(*cargs)
            else:  # grid-stride loops: one CTA of one thread covers everything
                lib.hz_emul_set(0, 1, None)
                self.fn(*cargs)

    class RawModule:
        def __init__(self, code=None, options=()):
            assert "-std=c++14" in options and any(o.startswith("-I") for o in options)
            assert "hz_roundtrip_small" in code

        def get_function(self, name):
            return RawKernel(name)

    cp.RawModule = RawModule
    return cp


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    so = tmp_path_factory.mktemp("hzemul") / "libhzemul.so"
    cmd = ["g++", "-O1", "-std=c++14", "-Wall", "-Wextra", "-Werror", f"-I{ROOT / 'csrc'}", "-DHZ_EMUL_LIB",
           "-shared", "-fPIC", str(ROOT / "tests" / "cuda_emul.cpp"), "-o", str(so)]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return ctypes.CDLL(str(so))


@pytest.fixture
def fake_cuda(lib, monkeypatch):
    cp = make_fake_cupy(lib)
    monkeypatch.setitem(sys.modules, "cupy", cp)
    from helmholtz._codec import cuda as _cuda

    monkeypatch.setattr(_cuda, "_MODULES", {})
    from helmholtz._codec import arrays as _arrays

    def as_batch(images, name="images"):  # a FakeArray is a NumPy subclass: as_batch would call it host memory
        b = _arrays.as_batch(np.asarray(images), name)
        return _arrays.Batch(_fake(b.array), b.shape, b.wrap, "cuda", "cupy")

    monkeypatch.setattr(_cuda, "as_batch", as_batch)
    return _cuda


def rand(shape, seed):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


CASES = [((5, 32, 32, 3), "4:2:0"), ((3, 7, 13, 3), "4:2:2"), ((2, 33, 65, 1), "4:2:0"), ((4, 1, 1, 3), "4:4:4"),
         ((2, 150, 200, 3), "4:2:0"), ((2, 100, 90, 3), "4:4:4")]


@pytest.mark.parametrize("shape,subsampling", CASES, ids=[f"{s}-{ss}" for s, ss in CASES])
def test_backend_end_to_end(fake_cuda, shape, subsampling):
    backend = fake_cuda.load_backend()
    images = rand(shape, sum(shape))
    n = shape[0]
    q = np.stack([np.random.default_rng(n).integers(1, 101, n), np.full(n, 90)]).astype(np.int32)
    cpu = jpeg.roundtrip(images, q[0], subsampling=subsampling, backend="cpu")
    got = backend.roundtrip(_fake(images), q, subsampling, 1)
    assert got.shape == (2,) + shape and got.dtype == np.uint8
    np.testing.assert_array_equal(np.asarray(got[0]), cpu)
    np.testing.assert_array_equal(np.asarray(got[1]), jpeg.roundtrip(images, 90, subsampling=subsampling, backend="cpu"))

    comps = backend.forward(_fake(images), q, subsampling, 1)
    want = jpeg.coefficients(images, q[0], subsampling=subsampling, backend="cpu")
    for a, b in zip(comps[0], want.components):
        np.testing.assert_array_equal(np.asarray(a), b)
    rec = backend.reconstruct([_fake(c) for c in want.components], want.tables, shape[1], shape[2], subsampling, 1)
    np.testing.assert_array_equal(np.asarray(rec), cpu)

    fl = fake_cuda.roundtrip_float(_fake(images), q[0], subsampling, mean=[0.5], std=[0.25])
    np.testing.assert_array_equal(
        np.asarray(fl), (cpu.transpose(0, 3, 1, 2).astype(np.float32) / np.float32(255) - np.float32(0.5)) / np.float32(0.25)
    )

    for optimize in (False, True):
        got_bits = fake_cuda.bits([_fake(c) for c in want.components], subsampling, optimize=optimize)
        np.testing.assert_array_equal(np.asarray(got_bits), _entropy.bits(want, optimize=optimize))
    freq, extra = fake_cuda.frequencies([_fake(c) for c in want.components], subsampling)
    wf, we = _entropy.symbol_frequencies(want)
    np.testing.assert_array_equal(np.asarray(freq), wf)
    np.testing.assert_array_equal(np.asarray(extra), we)


def test_large_path_chunks(fake_cuda, monkeypatch):
    """A scratch limit smaller than the batch forces several chunks."""
    monkeypatch.setattr(fake_cuda, "_SCRATCH_LIMIT", 40_000)
    images = rand((5, 130, 70, 3), 11)
    q = np.array([[5, 25, 45, 65, 85], [95, 75, 55, 35, 15]], np.int32)
    got = fake_cuda.load_backend().roundtrip(_fake(images), q, "4:2:0", 1)
    for k in range(2):
        np.testing.assert_array_equal(np.asarray(got[k]), jpeg.roundtrip(images, q[k], backend="cpu"))


@pytest.fixture
def fake_jpeg_cuda(fake_cuda, monkeypatch):
    """Route helmholtz.jpeg's 'cuda' backend to the fake device (as_batch sees FakeArray as CuPy)."""
    from helmholtz._codec import arrays as _arrays
    from helmholtz._codec import lossy
    from helmholtz._codec import registry as backends

    real = _arrays.as_batch

    def as_batch(images, name="images"):
        if isinstance(images, FakeArray):
            b = real(np.asarray(images), name)
            return _arrays.Batch(_fake(b.array), b.shape, b.wrap, "cuda", "cupy")
        return real(images, name)

    monkeypatch.setattr(lossy, "as_batch", as_batch)
    backends.forget("cuda")
    yield
    backends.forget("cuda")


def _shared_bodies():
    import test_cuda as t

    return [
        ("every_quality_420", lambda: t.test_every_quality_matches_pillow("cuda", "4:2:0")),
        ("sizes_7x13_422", lambda: t.test_sizes_match_cpu_and_pillow("cuda", (7, 13), 3, "4:2:2")),
        ("sizes_33x65_gray", lambda: t.test_sizes_match_cpu_and_pillow("cuda", (33, 65), 1, "4:2:0")),
        ("sizes_1x1_444", lambda: t.test_sizes_match_cpu_and_pillow("cuda", (1, 1), 3, "4:4:4")),
        ("large", lambda: t.test_large_images_match_cpu("cuda", (3, 200, 300, 3))),
        ("many_qualities", lambda: t.test_many_qualities_match_cpu("cuda")),
        ("per_image_qualities", lambda: t.test_per_image_qualities_in_many_images_per_cta("cuda")),
        ("coefficients_420", lambda: t.test_coefficients_and_reconstruct("cuda", 3, "4:2:0")),
        ("coefficients_gray", lambda: t.test_coefficients_and_reconstruct("cuda", 1, "4:2:0")),
    ]


@pytest.mark.parametrize("index", range(9), ids=[name for name, _ in [
    ("every_quality_420", 0), ("sizes_7x13_422", 0), ("sizes_33x65_gray", 0), ("sizes_1x1_444", 0), ("large", 0),
    ("many_qualities", 0), ("per_image_qualities", 0), ("coefficients_420", 0), ("coefficients_gray", 0)]])
def test_shared_cuda_test_bodies_on_fake_device(fake_jpeg_cuda, index, monkeypatch):
    """tests/test_cuda.py's own 'cuda' bodies through helmholtz.jpeg, on the fake device."""
    monkeypatch.syspath_prepend(str(ROOT / "tests"))
    name, body = _shared_bodies()[index]
    LAUNCHES.clear()
    body()
    assert "hz_roundtrip_small" in LAUNCHES or "hz_quant_global" in LAUNCHES, "the body did not reach the kernels"


@pytest.mark.parametrize("native", [False, True], ids=["reference-tables", "native-tables"])
def test_optimal_bits_from_frequencies(native, monkeypatch):
    """The host half of bits(optimize=True): optimal tables from GPU symbol counts."""
    from helmholtz._codec import cuda as _cuda
    from helmholtz._codec import entropy_reference as er

    try:
        from helmholtz._codec import native as _native
    except ImportError:
        pytest.skip("no compiled extension")
    if native:
        def optimal_table(f):  # the C core's signature, answered by the reference
            t = er.gen_optimal_table(np.asarray(f))
            return bytes(t.bits), bytes(t.huffval)

        monkeypatch.setattr(_native, "optimal_table", optimal_table, raising=False)
    else:
        monkeypatch.delattr(_native, "optimal_table", raising=False)
    for channels in (3, 1):
        x = rand((4, 24, 40, channels), 12)
        co = jpeg.coefficients(x, [5, 40, 80, 100], backend="cpu")
        f, e = _entropy.symbol_frequencies(co)
        got = _cuda._optimal_bits(f, e, 4 if channels == 3 else 2)
        np.testing.assert_array_equal(got, _entropy.bits(co, optimize=True))


def test_jpeg_bits_route_device_inputs_to_the_gpu(fake_jpeg_cuda, monkeypatch):
    """jpeg.bits / bits_many on device images count on the (fake) device and equal the CPU counts."""
    import cupy

    from helmholtz._codec import registry as backends

    monkeypatch.setattr(backends, "on_cuda", lambda x: isinstance(x, FakeArray))
    monkeypatch.setattr(cupy, "stack", lambda rows: _fake(np.stack([np.asarray(r) for r in rows])), raising=False)
    images = rand((4, 33, 17, 3), 21)
    LAUNCHES.clear()
    for optimize in (False, True):
        got = jpeg.bits(_fake(images), 30, optimize=optimize)
        np.testing.assert_array_equal(np.asarray(got), jpeg.bits(images, 30, optimize=optimize, backend="cpu"))
    assert "hz_bits_std" in LAUNCHES and "hz_frequencies" in LAUNCHES
    many = jpeg.bits_many(_fake(images), [5, 50, 95])
    np.testing.assert_array_equal(np.asarray(many), jpeg.bits_many(images, [5, 50, 95], backend="cpu"))
    coefs = jpeg.coefficients(_fake(images), 40)
    np.testing.assert_array_equal(np.asarray(jpeg.bits(coefs, backend="cuda")), jpeg.bits(images, 40, backend="cpu"))
    assert "cuda" in backends.loaded()
