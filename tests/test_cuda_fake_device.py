"""helmholtz/_cuda.py driven end to end against a fake CuPy whose kernels are
csrc/hz_kernels.cu compiled for the host (tests/_cuda_emul.py, tests/cuda_emul.cpp).

The fake CuPy keeps arrays in host memory and runs each RawKernel launch in
the barrier-aware emulation, checking the argument count and sizes against the
kernels' real signatures. With torch's "device" hooks pointed at the CPU, torch
tensors take the torch path of the module. This checks what no GPU-less test
otherwise could: launch geometry, shared-memory sizes, chunking, layouts; that
torch callers' memory comes from torch and nothing is read back to the host
(the GPU path's no-synchronisation rule); what happens under CUDA-graph capture;
and reconstruct's range check. It cannot check real streams, the caching
allocator's stream bookkeeping or anything else on a real device
(tests/test_cuda.py does, on a GPU).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import _cuda_emul as E
from helmholtz import jpeg
from helmholtz._codec import entropy as _entropy

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not E.HAVE_GXX, reason="needs g++ to build the host kernels")
FakeArray, fake = E.FakeArray, E.fake


@pytest.fixture(scope="module")
def emul(tmp_path_factory):
    return E.build(tmp_path_factory.mktemp("hzemul"))


@pytest.fixture
def fake_cuda(emul, monkeypatch):
    return E.install(monkeypatch, emul)


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
    got = backend.roundtrip(fake(images), q, subsampling, 1)
    assert got.shape == (2,) + shape and got.dtype == np.uint8
    np.testing.assert_array_equal(np.asarray(got[0]), cpu)
    np.testing.assert_array_equal(np.asarray(got[1]), jpeg.roundtrip(images, 90, subsampling=subsampling, backend="cpu"))

    comps = backend.forward(fake(images), q, subsampling, 1)
    want = jpeg.coefficients(images, q[0], subsampling=subsampling, backend="cpu")
    for a, b in zip(comps[0], want.components):
        np.testing.assert_array_equal(np.asarray(a), b)
    rec = backend.reconstruct([fake(c) for c in want.components], want.tables, shape[1], shape[2], subsampling, 1)
    np.testing.assert_array_equal(np.asarray(rec), cpu)

    fl = fake_cuda.roundtrip_float(fake(images), q[0], subsampling, mean=[0.5], std=[0.25])
    np.testing.assert_array_equal(
        np.asarray(fl), (cpu.transpose(0, 3, 1, 2).astype(np.float32) / np.float32(255) - np.float32(0.5)) / np.float32(0.25)
    )
    for optimize in (False, True):
        got_bits = fake_cuda.bits([fake(c) for c in want.components], subsampling, optimize=optimize)
        np.testing.assert_array_equal(np.asarray(got_bits), _entropy.bits(want, optimize=optimize))
    freq, extra = fake_cuda.frequencies([fake(c) for c in want.components], subsampling)
    wf, we = _entropy.symbol_frequencies(want)
    np.testing.assert_array_equal(np.asarray(freq), wf)
    np.testing.assert_array_equal(np.asarray(extra), we)


def test_small_kernel_opts_in_to_more_shared_memory(fake_cuda):
    """4 CTAs of 256 threads per H100 SM need ~54 KiB each: the module raises the kernel's limit."""
    backend = fake_cuda.load_backend()
    images = rand((64, 32, 32, 3), 1)
    backend.roundtrip(fake(images), np.full((1, 64), 50, np.int32), "4:2:0", 1)
    assert E.FAKE_STATE["shared_attr"].get("hz_roundtrip_small") == 56 * 1024
    g = fake_cuda._Geom(32, 32, 3, "4:2:0")
    assert g.small_layout(8, 256) <= 56 * 1024 < g.small_layout(9, 256)


def test_large_path_chunks(fake_cuda, monkeypatch):
    """A scratch limit smaller than the batch forces several chunks of the per-phase kernels."""
    monkeypatch.setattr(fake_cuda, "_SCRATCH_LIMIT", 60_000)
    images = rand((5, 130, 70, 3), 11)
    q = np.array([[5, 25, 45, 65, 85], [95, 75, 55, 35, 15]], np.int32)
    be = fake_cuda.load_backend()
    got = be.roundtrip(fake(images), q, "4:2:0", 1)
    for k in range(2):
        np.testing.assert_array_equal(np.asarray(got[k]), jpeg.roundtrip(images, q[k], backend="cpu"))
    assert E.FAKE_STATE["launches"].count("hz_convert_global") == 5  # one image per chunk
    coefs = jpeg.coefficients(images, q[0], backend="cpu")
    rec = be.reconstruct([fake(c) for c in coefs.components], coefs.tables, 130, 70, "4:2:0", 1)
    np.testing.assert_array_equal(np.asarray(rec), jpeg.roundtrip(images, q[0], backend="cpu"))


# ---- reconstruct's range check ----------------------------------------------------------------

def test_reconstruct_refuses_out_of_range_coefficients_as_the_cpu_does(fake_cuda):
    images = rand((3, 24, 40, 3), 2)
    coefs = jpeg.coefficients(images, [20, 50, 90], backend="cpu")
    comps = [c.copy() for c in coefs.components]
    comps[1][2, 0, 1, 3, 3] = 2000  # |2000 * table entry| > 2176
    be = fake_cuda.load_backend()
    with pytest.raises(ValueError) as cpu_err:
        jpeg.reconstruct(jpeg.Coefficients(tuple(comps), coefs.tables, coefs.quality, coefs.subsampling, coefs.shape),
                         backend="cpu")
    E.FAKE_STATE["downloads"] = 0
    with pytest.raises(ValueError) as gpu_err:
        be.reconstruct([fake(c) for c in comps], coefs.tables, 24, 40, "4:2:0", 1)
    assert str(gpu_err.value) == str(cpu_err.value)
    assert E.FAKE_STATE["downloads"] == 1  # the flag, once
    # opting out: no read-back, the in-range images still decode exactly
    E.FAKE_STATE["downloads"] = 0
    out = np.asarray(be.reconstruct([fake(c) for c in comps], coefs.tables, 24, 40, "4:2:0", 1, validate=False))
    assert E.FAKE_STATE["downloads"] == 0
    np.testing.assert_array_equal(out[:2], jpeg.roundtrip(images[:2], [20, 50], backend="cpu"))
    # and the flag of a clean call is clear
    clean = be.reconstruct([fake(c) for c in coefs.components], coefs.tables, 24, 40, "4:2:0", 1)
    np.testing.assert_array_equal(np.asarray(clean), jpeg.roundtrip(images, [20, 50, 90], backend="cpu"))


def test_reconstruct_inside_capture_needs_validate_false(fake_cuda):
    images = rand((2, 16, 16, 3), 3)
    coefs = jpeg.coefficients(images, 40, backend="cpu")
    be = fake_cuda.load_backend()
    tables = fake(coefs.tables.reshape(2, 128).astype(np.uint16))  # device tables: nothing to upload
    be.roundtrip(fake(images), np.full((1, 2), 40, np.int32), "4:2:0", 1)  # warm-up
    E.FAKE_STATE["capturing"] = True
    with pytest.raises(RuntimeError, match="validate=False"):
        be.reconstruct([fake(c) for c in coefs.components], tables, 16, 16, "4:2:0", 1)
    out = be.reconstruct([fake(c) for c in coefs.components], tables, 16, 16, "4:2:0", 1, validate=False)
    E.FAKE_STATE["capturing"] = False
    np.testing.assert_array_equal(np.asarray(out), jpeg.roundtrip(images, 40, backend="cpu"))


# ---- the torch path: allocation, read-back, capture ------------------------------------------------

@pytest.fixture
def torch_cuda(fake_cuda, monkeypatch):
    """torch CPU tensors standing in for CUDA tensors: the module's torch path over the emulation."""
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(fake_cuda, "_TORCH_DEVICE_TYPE", "cpu")
    monkeypatch.setattr(fake_cuda, "_torch_stream_ptr", lambda torch, device: 0)
    monkeypatch.setattr(fake_cuda, "_torch_capturing", lambda torch, device: E.FAKE_STATE["capturing"])
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.Tensor, "pin_memory", lambda self: self)  # no CUDA here to pin with
    return torch


@pytest.fixture
def no_readback(monkeypatch, torch_cuda):
    """Count every way the module could read device data back to the host."""
    torch = torch_cuda
    seen = []
    for name in ("item", "cpu", "numpy", "tolist"):
        real = getattr(torch.Tensor, name)

        def spy(self, *a, _real=real, _name=name, **k):
            seen.append(_name)
            return _real(self, *a, **k)

        monkeypatch.setattr(torch.Tensor, name, spy)
    return seen


def test_torch_callers_get_torch_memory_and_no_host_read_back(fake_cuda, torch_cuda, no_readback):
    torch = torch_cuda
    be = fake_cuda.load_backend()
    x = torch.from_numpy(rand((6, 32, 32, 3), 4))
    big = torch.from_numpy(rand((2, 150, 120, 3), 5))
    be.roundtrip(x, np.full((1, 6), 10, np.int32), "4:2:0", 1)  # warm-up: module and tables (CuPy, once)
    E.FAKE_STATE["allocations"] = 0
    no_readback.clear()
    allocations = []
    real_empty, real_zeros = torch.empty, torch.zeros
    monkey = pytest.MonkeyPatch()
    monkey.setattr(torch, "empty", lambda *a, **k: allocations.append(a) or real_empty(*a, **k))
    monkey.setattr(torch, "zeros", lambda *a, **k: allocations.append(a) or real_zeros(*a, **k))
    try:
        q = np.arange(6, dtype=np.int32)[None] * 15 + 5
        out = be.roundtrip(x, q, "4:2:0", 1)
        many = be.roundtrip(x, np.repeat(np.array([[5], [50], [95]], np.int32), 6, axis=1), "4:2:0", 1)
        big_out = be.roundtrip(big, np.array([[30, 70], [90, 90]], np.int32), "4:2:0", 1)  # per-phase kernels + scratch
        fl = fake_cuda.roundtrip_float(x, torch.arange(6, dtype=torch.int32) * 15 + 5, "4:2:0", "bfloat16")
        comps = be.forward(x, q, "4:2:0", 1)[0]
        b_std = fake_cuda.bits(comps, "4:2:0")
        b_opt = fake_cuda.bits(comps, "4:2:0", optimize=True)
        freq, extra = fake_cuda.frequencies(comps, "4:2:0")
    finally:
        monkey.undo()
    assert E.FAKE_STATE["allocations"] == 0, "memory allocated outside torch's allocator"
    assert no_readback == [] and E.FAKE_STATE["downloads"] == 0, f"host read-back: {no_readback}"
    assert len(allocations) >= 9  # outputs and scratch all came from torch
    for t in (out, many, big_out, fl, b_std, b_opt, freq, extra, *comps):
        assert isinstance(t, torch.Tensor)
    assert fl.dtype == torch.bfloat16 and fl.shape == (6, 3, 32, 32)
    xn = x.numpy()
    np.testing.assert_array_equal(out.numpy(), jpeg.roundtrip(xn, q[0], backend="cpu")[None])
    np.testing.assert_array_equal(many.numpy(), jpeg.roundtrip_many(xn, [5, 50, 95], backend="cpu"))
    np.testing.assert_array_equal(big_out[0].numpy(), jpeg.roundtrip(big.numpy(), [30, 70], backend="cpu"))
    want = jpeg.coefficients(xn, q[0], backend="cpu")
    np.testing.assert_array_equal(b_opt.numpy(), _entropy.bits(want, optimize=True))
    np.testing.assert_array_equal(b_std.numpy(), _entropy.bits(want))
    u8 = torch.from_numpy(jpeg.roundtrip(xn, q[0], backend="cpu")).permute(0, 3, 1, 2).float() / 255
    np.testing.assert_array_equal(fl.float().numpy(), u8.bfloat16().float().numpy())


def test_capture_after_warm_up_runs_without_host_traffic(fake_cuda, torch_cuda, no_readback):
    """What a CUDA-graph capture needs, on the CPU: no uploads, read-backs or foreign allocations."""
    torch = torch_cuda
    be = fake_cuda.load_backend()
    x = torch.from_numpy(rand((4, 32, 32, 3), 6))
    dev_q = torch.tensor([5, 40, 70, 100], dtype=torch.int32)
    be.roundtrip(x, np.full((1, 4), 50, np.int32), "4:2:0", 1)  # warm-up
    E.FAKE_STATE.update(capturing=True, allocations=0)
    no_readback.clear()
    uploads = []
    monkey = pytest.MonkeyPatch()
    monkey.setattr(torch, "from_numpy", lambda a: uploads.append(a) or torch.as_tensor(a))
    try:
        one = be.roundtrip(x, np.full((1, 4), 50, np.int32), "4:2:0", 1)  # jpeg.roundtrip(x, 50)
        many = be.roundtrip(x, np.repeat(np.array([[10], [60]], np.int32), 4, axis=1), "4:2:0", 1)
        per_image = fake_cuda.roundtrip_float(x, dev_q)  # per-image qualities on the device
        with pytest.raises(ValueError, match="cannot be captured"):
            be.roundtrip(x, np.array([[5, 40, 70, 100]], np.int32), "4:2:0", 1)  # per-image, on the host
    finally:
        monkey.undo()
        E.FAKE_STATE["capturing"] = False
    assert uploads == [] and no_readback == [] and E.FAKE_STATE["allocations"] == 0
    xn = x.numpy()
    np.testing.assert_array_equal(one[0].numpy(), jpeg.roundtrip(xn, 50, backend="cpu"))
    np.testing.assert_array_equal(many.numpy(), jpeg.roundtrip_many(xn, [10, 60], backend="cpu"))
    want = jpeg.roundtrip(xn, [5, 40, 70, 100], backend="cpu").transpose(0, 3, 1, 2).astype(np.float32) / np.float32(255)
    np.testing.assert_array_equal(per_image.numpy(), want)


def test_per_image_host_qualities_travel_through_pinned_memory(fake_cuda, torch_cuda, no_readback):
    torch = torch_cuda
    pinned = []
    monkey = pytest.MonkeyPatch()
    monkey.setattr(torch.Tensor, "pin_memory", lambda self: pinned.append(self.shape) or self)
    try:
        be = fake_cuda.load_backend()
        x = torch.from_numpy(rand((3, 16, 16, 3), 7))
        out = be.roundtrip(x, np.array([[3, 50, 97]], np.int32), "4:2:0", 1)
    finally:
        monkey.undo()
    assert pinned == [(1, 3)] and no_readback == []
    np.testing.assert_array_equal(out[0].numpy(), jpeg.roundtrip(x.numpy(), [3, 50, 97], backend="cpu"))


def test_bad_arguments_name_the_problem(fake_cuda):
    be = fake_cuda.load_backend()
    with pytest.raises(TypeError, match="CuPy arrays or torch CUDA tensors"):
        be.roundtrip(np.zeros((1, 8, 8, 3), np.uint8), np.full((1, 1), 50, np.int32), "4:2:0", 1)
    coefs = jpeg.coefficients(rand((2, 32, 48, 3), 8), 50, backend="cpu")
    bad = [fake(coefs.components[0]), fake(coefs.components[1][:, :1]), fake(coefs.components[2])]
    with pytest.raises(ValueError, match="chroma component 1 has shape"):
        fake_cuda.bits(bad, "4:2:0")
    with pytest.raises(ValueError, match="int16"):
        fake_cuda.bits([fake(c.astype(np.int32)) for c in coefs.components], "4:2:0")
    with pytest.raises(ValueError, match="entries"):
        fake_cuda.roundtrip_float(fake(rand((3, 8, 8, 3), 9)), fake(np.array([1, 2], np.int32)))


# ---- helmholtz.jpeg through the fake device --------------------------------------------------------

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
            return _arrays.Batch(fake(b.array), b.shape, b.wrap, "cuda", "cupy")
        return real(images, name)

    monkeypatch.setattr(lossy, "as_batch", as_batch)
    backends.forget("cuda")
    yield
    backends.forget("cuda")


_BODIES = ["every_quality_420", "sizes_7x13_422", "sizes_33x65_gray", "sizes_1x1_444", "large", "many_qualities",
           "per_image_qualities", "coefficients_420", "coefficients_gray"]


def _shared_body(name):
    import test_cuda as t

    return {
        "every_quality_420": lambda: t.test_every_quality_matches_pillow("cuda", "4:2:0"),
        "sizes_7x13_422": lambda: t.test_sizes_match_cpu_and_pillow("cuda", (7, 13), 3, "4:2:2"),
        "sizes_33x65_gray": lambda: t.test_sizes_match_cpu_and_pillow("cuda", (33, 65), 1, "4:2:0"),
        "sizes_1x1_444": lambda: t.test_sizes_match_cpu_and_pillow("cuda", (1, 1), 3, "4:4:4"),
        "large": lambda: t.test_large_images_match_cpu("cuda", (3, 200, 300, 3)),
        "many_qualities": lambda: t.test_many_qualities_match_cpu("cuda"),
        "per_image_qualities": lambda: t.test_per_image_qualities_in_many_images_per_cta("cuda"),
        "coefficients_420": lambda: t.test_coefficients_and_reconstruct("cuda", 3, "4:2:0"),
        "coefficients_gray": lambda: t.test_coefficients_and_reconstruct("cuda", 1, "4:2:0"),
    }[name]


@pytest.mark.parametrize("name", _BODIES)
def test_shared_cuda_test_bodies_on_fake_device(fake_jpeg_cuda, name, monkeypatch):
    """tests/test_cuda.py's own 'cuda' bodies through helmholtz.jpeg, on the fake device."""
    monkeypatch.syspath_prepend(str(ROOT / "tests"))
    E.FAKE_STATE["launches"].clear()
    _shared_body(name)()
    launched = E.FAKE_STATE["launches"]
    assert "hz_roundtrip_small" in launched or "hz_block_global" in launched, "the body did not reach the kernels"


def test_jpeg_roundtrip_reads_a_device_quality_array_in_place(fake_jpeg_cuda, monkeypatch):
    """Per-image qualities already on the device go to the kernels as they are: no read-back, no upload."""
    from helmholtz._codec import registry as backends

    monkeypatch.setattr(backends, "on_cuda", lambda x: isinstance(x, E.FakeArray))
    images = rand((5, 16, 24, 3), 5)
    q = np.array([3, 20, 55, 90, 100], np.int32)
    E.FAKE_STATE.update(downloads=0)
    got = jpeg.roundtrip(fake(images), fake(q))
    assert E.FAKE_STATE["downloads"] == 0
    np.testing.assert_array_equal(np.asarray(got), jpeg.roundtrip(images, q, backend="cpu"))
    with pytest.raises(ValueError, match="one per image"):
        jpeg.roundtrip(fake(images), fake(q[:3]))
    with pytest.raises(TypeError, match="integers"):
        jpeg.roundtrip(fake(images), fake(q.astype(np.float32)))


def test_jpeg_bits_route_device_inputs_to_the_gpu(fake_jpeg_cuda, monkeypatch):
    """jpeg.bits / bits_many on device images count on the (fake) device and equal the CPU counts."""
    import cupy

    from helmholtz._codec import registry as backends

    monkeypatch.setattr(backends, "on_cuda", lambda x: isinstance(x, FakeArray))
    monkeypatch.setattr(cupy, "stack", lambda rows: fake(np.stack([np.asarray(r) for r in rows])), raising=False)
    images = rand((4, 33, 17, 3), 21)
    E.FAKE_STATE["launches"].clear()
    for optimize in (False, True):
        got = jpeg.bits(fake(images), 30, optimize=optimize)
        np.testing.assert_array_equal(np.asarray(got), jpeg.bits(images, 30, optimize=optimize, backend="cpu"))
    assert "hz_bits_std" in E.FAKE_STATE["launches"] and "hz_bits_optimal" in E.FAKE_STATE["launches"]
    many = jpeg.bits_many(fake(images), [5, 50, 95])
    np.testing.assert_array_equal(np.asarray(many), jpeg.bits_many(images, [5, 50, 95], backend="cpu"))
    coefs = jpeg.coefficients(fake(images), 40)
    np.testing.assert_array_equal(np.asarray(jpeg.bits(coefs, backend="cuda")), jpeg.bits(images, 40, backend="cpu"))
    assert "cuda" in backends.loaded()
