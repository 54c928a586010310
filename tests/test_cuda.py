"""The 'cuda' backend: the same checks as the 'cpu' backend, on the GPU.

Each exactness test runs once per backend ("cpu", "cuda"); the "cuda" runs
skip cleanly without CuPy or a visible GPU, the "cpu" runs keep the test
bodies themselves exercised everywhere. The last tests need no GPU: they
check the error raised when the backend cannot run.
"""

from __future__ import annotations

import io

import numpy as np
import pytest

from helmholtz import jpeg
from helmholtz._codec import registry as backends
from helmholtz.errors import BackendUnavailable
from _gpu import CUDA_REASON, needs_gpu




@pytest.fixture(params=["cpu", pytest.param("cuda", marks=[needs_gpu, pytest.mark.cuda])])
def backend(request):
    return request.param


def dev(x: np.ndarray, backend: str):
    """Put a NumPy array where `backend` computes (CuPy for cuda)."""
    if backend == "cuda":
        import cupy

        return cupy.asarray(x)
    return x


def host(x) -> np.ndarray:
    if type(x).__module__.startswith("cupy"):
        return x.get()
    if type(x).__module__.startswith("torch"):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def pillow_roundtrip(img: np.ndarray, q: int, subsampling: str) -> np.ndarray:
    Image = pytest.importorskip("PIL.Image")
    buf = io.BytesIO()
    arr = img[..., 0] if img.ndim == 3 and img.shape[2] == 1 else img
    Image.fromarray(arr).save(buf, "JPEG", quality=int(q), subsampling=subsampling)
    out = np.asarray(Image.open(io.BytesIO(buf.getvalue())))
    return out.reshape(img.shape)


def rand(shape, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, shape, dtype=np.uint8)
    # half smooth content so that low qualities keep AC terms and high ones round interestingly
    if len(shape) == 4 and shape[0] > 1:
        yy, xx = np.mgrid[: shape[1], : shape[2]]
        x[::2] = ((yy * 7 + xx * 3)[None, :, :, None] + x[::2] // 8).astype(np.uint8)
    return x


# ---- exactness, shared by both backends ------------------------------------------------------------


@pytest.mark.parametrize("subsampling", ["4:2:0", "4:2:2", "4:4:4"])
def test_every_quality_matches_pillow(backend, subsampling):
    images = rand((100, 16, 24, 3), seed=1)
    qualities = np.arange(1, 101)
    got = host(jpeg.roundtrip(dev(images, backend), qualities, subsampling=subsampling, backend=backend))
    for i, q in enumerate(qualities):
        np.testing.assert_array_equal(got[i], pillow_roundtrip(images[i], q, subsampling), err_msg=f"quality {q}")


SIZES = [(1, 1), (7, 13), (33, 65), (32, 32), (2, 3), (17, 9)]


@pytest.mark.parametrize("size", SIZES, ids=[f"{h}x{w}" for h, w in SIZES])
@pytest.mark.parametrize("channels,subsampling", [(3, "4:2:0"), (3, "4:2:2"), (3, "4:4:4"), (1, "4:2:0")])
def test_sizes_match_cpu_and_pillow(backend, size, channels, subsampling):
    images = rand((4,) + size + (channels,), seed=size[0] * 100 + size[1])
    qualities = [1, 37, 75, 100]
    got = host(jpeg.roundtrip(dev(images, backend), qualities, subsampling=subsampling, backend=backend))
    want = jpeg.roundtrip(images, qualities, subsampling=subsampling, backend="cpu")
    np.testing.assert_array_equal(got, want)
    for i, q in enumerate(qualities):
        np.testing.assert_array_equal(got[i], pillow_roundtrip(images[i], q, subsampling))


@pytest.mark.parametrize("shape", [(3, 200, 300, 3), (2, 129, 257, 1), (1, 480, 640, 3)])
def test_large_images_match_cpu(backend, shape):
    """Sizes beyond the small-image kernel's shared memory take the per-phase kernels."""
    images = rand(shape, seed=5)
    q = [10, 60, 95][: shape[0]]
    got = host(jpeg.roundtrip(dev(images, backend), q, backend=backend))
    np.testing.assert_array_equal(got, jpeg.roundtrip(images, q, backend="cpu"))


def test_many_qualities_match_cpu(backend):
    images = rand((9, 32, 32, 3), seed=3)
    qualities = [1, 5, 10, 25, 50, 75, 90, 95, 100]
    got = host(jpeg.roundtrip_many(dev(images, backend), qualities, backend=backend))
    want = jpeg.roundtrip_many(images, qualities, backend="cpu")
    np.testing.assert_array_equal(got, want)


def test_per_image_qualities_in_many_images_per_cta(backend):
    """CIFAR-sized batch: several images per CTA, a partial last CTA, a quality per image."""
    images = rand((1001, 32, 32, 3), seed=4)
    q = np.random.default_rng(4).integers(1, 101, 1001)
    got = host(jpeg.roundtrip(dev(images, backend), q, backend=backend))
    np.testing.assert_array_equal(got, jpeg.roundtrip(images, q, backend="cpu"))


@pytest.mark.parametrize("channels,subsampling", [(3, "4:2:0"), (3, "4:2:2"), (3, "4:4:4"), (1, "4:2:0")])
def test_coefficients_and_reconstruct(backend, channels, subsampling):
    images = rand((5, 23, 41, channels), seed=6)
    q = [3, 30, 50, 80, 100]
    coefs = jpeg.coefficients(dev(images, backend), q, subsampling=subsampling, backend=backend)
    want = jpeg.coefficients(images, q, subsampling=subsampling, backend="cpu")
    assert len(coefs.components) == len(want.components)
    for a, b in zip(coefs.components, want.components):
        np.testing.assert_array_equal(host(a), b)
    np.testing.assert_array_equal(host(jpeg.reconstruct(coefs, backend=backend)), jpeg.roundtrip(images, q, subsampling=subsampling, backend="cpu"))
    many = jpeg.coefficients_many(dev(images, backend), [20, 90], subsampling=subsampling, backend=backend)
    for k, qq in enumerate([20, 90]):
        ref = jpeg.coefficients(images, qq, subsampling=subsampling, backend="cpu")
        for a, b in zip(many[k].components, ref.components):
            np.testing.assert_array_equal(host(a), b)


# ---- GPU-only features -----------------------------------------------------------------------------


@needs_gpu
@pytest.mark.cuda
def test_torch_cuda_in_torch_out():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA")
    images = rand((6, 33, 65, 3), seed=7)
    t = torch.from_numpy(images).cuda()
    out = jpeg.roundtrip(t, 42)
    assert isinstance(out, torch.Tensor) and out.device == t.device and out.dtype == torch.uint8
    assert out.shape == t.shape
    np.testing.assert_array_equal(out.cpu().numpy(), jpeg.roundtrip(images, 42, backend="cpu"))
    # on a side stream: results are ordered on the caller's stream
    s = torch.cuda.Stream()
    with torch.cuda.stream(s):
        out2 = jpeg.roundtrip(t, 42)
    s.synchronize()
    np.testing.assert_array_equal(out2.cpu().numpy(), out.cpu().numpy())
    one = jpeg.roundtrip(t[0], 42)  # (H, W, C) keeps its shape
    assert one.shape == t[0].shape


@needs_gpu
@pytest.mark.cuda
@pytest.mark.parametrize("kind", ["cupy", "torch"])
def test_float_output_equals_uint8_over_255(kind):
    from helmholtz._codec import cuda as _cuda

    images = rand((8, 32, 32, 3), seed=8)
    q = np.arange(8) * 12 + 5
    u8 = jpeg.roundtrip(images, q, backend="cpu").transpose(0, 3, 1, 2).astype(np.float32)
    if kind == "torch":
        torch = pytest.importorskip("torch")
        x = torch.from_numpy(images).cuda()
    else:
        import cupy

        x = cupy.asarray(images)
    plain = host(_cuda.roundtrip_float(x, q))
    np.testing.assert_array_equal(plain, u8 / np.float32(255))
    mean, std = np.float32([0.49, 0.48, 0.45]), np.float32([0.25, 0.24, 0.26])
    norm = host(_cuda.roundtrip_float(x, q, mean=mean, std=std))
    np.testing.assert_array_equal(norm, (u8 / np.float32(255) - mean[:, None, None]) / std[:, None, None])
    if kind == "torch":
        import torch

        bf = _cuda.roundtrip_float(x, q, dtype="bfloat16", mean=mean, std=std)
        assert bf.dtype == torch.bfloat16 and bf.shape == (8, 3, 32, 32)
        np.testing.assert_array_equal(bf.float().cpu().numpy(), torch.from_numpy(norm).bfloat16().float().numpy())


@needs_gpu
@pytest.mark.cuda
@pytest.mark.parametrize("optimize", [False, True])
def test_bits_match_cpu(optimize):
    from helmholtz._codec import cuda as _cuda
    from helmholtz._codec import entropy as _entropy

    import cupy

    images = rand((12, 32, 32, 3), seed=9)
    q = np.arange(12) * 8 + 4
    for channels in (3, 1):
        imgs = np.ascontiguousarray(images[..., :channels])
        coefs = jpeg.coefficients(cupy.asarray(imgs), q, backend="cuda")
        got = host(_cuda.bits(coefs.components, coefs.subsampling, optimize=optimize))
        want = _entropy.bits(jpeg.coefficients(imgs, q, backend="cpu"), optimize=optimize)
        np.testing.assert_array_equal(got, want)


def _torch_cuda():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA")
    return torch


@needs_gpu
@pytest.mark.cuda
def test_input_written_on_a_side_stream_after_a_sleep_is_read_in_order():
    """Kernels run on the caller's current stream: work queued behind a long sleep is waited for."""
    torch = _torch_cuda()
    images = rand((64, 32, 32, 3), seed=10)
    want = jpeg.roundtrip(images, 37, backend="cpu")
    src = torch.from_numpy(images).cuda()
    for case in ("inside-the-side-stream", "main-stream-waits"):
        x = torch.zeros_like(src)
        side = torch.cuda.Stream()
        torch.cuda.synchronize()
        with torch.cuda.stream(side):
            torch.cuda._sleep(200_000_000)  # ~0.1 s of GPU time before the input exists
            x.copy_(src)
            if case == "inside-the-side-stream":
                out = jpeg.roundtrip(x, 37)
                fl = jpeg.roundtrip_float(x, 37)
        if case == "main-stream-waits":
            torch.cuda.current_stream().wait_stream(side)
            out = jpeg.roundtrip(x, 37)
            fl = jpeg.roundtrip_float(x, 37)
        torch.cuda.synchronize()
        np.testing.assert_array_equal(out.cpu().numpy(), want, err_msg=case)
        np.testing.assert_array_equal(fl.cpu().numpy(), want.transpose(0, 3, 1, 2).astype(np.float32) / np.float32(255))


@needs_gpu
@pytest.mark.cuda
def test_outputs_come_from_torchs_allocator():
    torch = _torch_cuda()
    x = torch.from_numpy(rand((256, 32, 32, 3), seed=11)).cuda()
    jpeg.roundtrip(x, 50)  # warm-up (module, tables)
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    out = jpeg.roundtrip(x, 50)
    assert torch.cuda.memory_allocated() - before >= out.numel()
    side = torch.cuda.Stream()
    with torch.cuda.stream(side):
        out.record_stream(side)  # a torch allocation: record_stream is valid
    del out
    torch.cuda.synchronize()
    torch.cuda.empty_cache()  # frees blocks whose recorded streams are done
    assert torch.cuda.memory_allocated() <= before + 4096


@needs_gpu
@pytest.mark.cuda
def test_roundtrip_can_be_captured_in_a_cuda_graph_after_warm_up():
    torch = _torch_cuda()
    from helmholtz._codec import cuda as _cuda

    images = rand((128, 32, 32, 3), seed=12)
    static_x = torch.from_numpy(images).cuda()
    q_dev = torch.arange(128, dtype=torch.int32, device="cuda") % 100 + 1
    jpeg.roundtrip(static_x, 30)
    _cuda.roundtrip_float(static_x, q_dev)
    torch.cuda.synchronize()
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        out_u8 = jpeg.roundtrip(static_x, 30)
        out_f = _cuda.roundtrip_float(static_x, q_dev, dtype="bfloat16")
        out_many = jpeg.roundtrip_many(static_x, [10, 90])
    new = rand((128, 32, 32, 3), seed=13)
    static_x.copy_(torch.from_numpy(new))
    g.replay()
    torch.cuda.synchronize()
    np.testing.assert_array_equal(out_u8.cpu().numpy(), jpeg.roundtrip(new, 30, backend="cpu"))
    np.testing.assert_array_equal(out_many.cpu().numpy(), jpeg.roundtrip_many(new, [10, 90], backend="cpu"))
    q = np.arange(128) % 100 + 1
    u8 = torch.from_numpy(jpeg.roundtrip(new, q, backend="cpu")).permute(0, 3, 1, 2).float() / 255
    np.testing.assert_array_equal(out_f.float().cpu().numpy(), u8.bfloat16().float().numpy())


@needs_gpu
@pytest.mark.cuda
def test_reconstruct_refuses_out_of_range_coefficients_on_the_gpu():
    import cupy

    images = rand((4, 24, 40, 3), seed=14)
    coefs = jpeg.coefficients(cupy.asarray(images), [20, 40, 60, 80], backend="cuda")
    comps = [c.copy() for c in coefs.components]
    comps[0][1, 0, 0, 0, 1] = 3000
    bad = jpeg.Coefficients(tuple(comps), coefs.tables, coefs.quality, coefs.subsampling, coefs.shape)
    with pytest.raises(ValueError, match="outside the range"):
        jpeg.reconstruct(bad, backend="cuda")
    out = backends.get("cuda").reconstruct(comps, coefs.tables, 24, 40, "4:2:0", validate=False)
    np.testing.assert_array_equal(host(out)[[0, 2, 3]], jpeg.roundtrip(images, [20, 40, 60, 80], backend="cpu")[[0, 2, 3]])


# ---- without a GPU ---------------------------------------------------------------------------------


def test_missing_cuda_raises_backend_unavailable_naming_the_fix():
    if CUDA_REASON is None:
        pytest.skip("a CUDA backend is available here")
    with pytest.raises(BackendUnavailable) as err:
        jpeg.roundtrip(np.zeros((8, 8, 3), np.uint8), 20, backend="cuda")
    msg = str(err.value)
    assert "pip install 'helmholtz-ml[cuda]'" in msg or "no CUDA GPU visible" in msg
    assert "cuda" not in backends.available()


def test_missing_cupy_names_the_install(monkeypatch):
    import builtins

    from helmholtz._codec import cuda as _cuda

    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "cupy" or name.startswith("cupy."):
            raise ImportError("No module named 'cupy'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    backends.forget("cuda")
    with pytest.raises(BackendUnavailable, match=r"pip install 'helmholtz-ml\[cuda\]'"):
        _cuda.load_backend()
    with pytest.raises(BackendUnavailable, match=r"pip install 'helmholtz-ml\[cuda\]'"):
        backends.get("cuda")


def test_kernel_sources_are_found():
    from helmholtz._codec import cuda as _cuda

    d = _cuda.kernel_source_dir()
    for name in ("hz_kernels.cu", "hz_gpu_tiles.h", "hz_gpu_block.cuh", "hz_block.h"):
        assert (d / name).is_file(), name
