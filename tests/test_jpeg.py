"""Exactness, API and robustness tests of helmholtz.jpeg on every CPU backend.

Oracles: Pillow (libjpeg-turbo) for pixels, jpeglib reading Pillow's file for
coefficients, and the NumPy reference for the fast backends.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

from helmholtz import BackendUnavailable, jpeg
from helmholtz._codec import registry as backends
from helmholtz._codec import reference as ref

Image = pytest.importorskip("PIL.Image")

BACKENDS = [b for b in ("numpy", "cpu") if b in backends.available()]
SUBSAMPLINGS = ["4:4:4", "4:2:2", "4:2:0", "gray"]
ODD_SIZES = [(1, 1), (7, 13), (13, 7), (33, 65), (2, 3), (9, 17)]


def test_fast_backend_is_built():
    """A normal install has the C core; the suite must not silently test only NumPy."""
    assert "cpu" in backends.available()


def make_image(rng, h, w, c, kind):
    """Noise, or a smooth gradient with a little noise (realistic DCT content)."""
    if kind == "noise":
        return rng.integers(0, 256, (h, w, c), dtype=np.uint8)
    yy, xx = np.mgrid[:h, :w]
    base = 128 + 90 * np.sin(yy[..., None] / 5.0 + np.arange(c)) * np.cos(xx[..., None] / 7.0)
    return np.clip(base + rng.normal(0, 8, (h, w, c)), 0, 255).astype(np.uint8)


def pillow_file(img: np.ndarray, quality: int, subsampling: str) -> bytes:
    buf = io.BytesIO()
    pil = Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img)
    pil.save(buf, "JPEG", quality=quality, subsampling=subsampling)
    return buf.getvalue()


def pillow_roundtrip(img: np.ndarray, quality: int, subsampling: str) -> np.ndarray:
    out = np.asarray(Image.open(io.BytesIO(pillow_file(img, quality, subsampling))))
    return out.reshape(img.shape)


def case_images(rng, h, w, ss, n=2):
    c = 1 if ss == "gray" else 3
    return np.stack([make_image(rng, h, w, c, kind) for kind in ("noise", "smooth")[:n]])


# --------------------------------------------------------------------------
# Exactness against Pillow: every quality, every subsampling, odd sizes
# --------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("ss", SUBSAMPLINGS)
def test_roundtrip_equals_pillow_all_qualities(backend, ss):
    rng = np.random.default_rng(hash((backend, ss)) % 2**32)
    subsampling = "4:2:0" if ss == "gray" else ss
    qualities = range(1, 101) if backend == "cpu" else range(1, 101, 3)
    sizes = ODD_SIZES if backend == "cpu" else ODD_SIZES[:4]
    for h, w in sizes:
        imgs = case_images(rng, h, w, ss)
        for q in qualities:
            expected = np.stack([pillow_roundtrip(im, q, subsampling) for im in imgs])
            got = jpeg.roundtrip(imgs, q, subsampling=subsampling, backend=backend)
            assert got.dtype == np.uint8 and got.shape == imgs.shape
            np.testing.assert_array_equal(got, expected, err_msg=f"q={q} {ss} {h}x{w} backend={backend}")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("ss", SUBSAMPLINGS)
def test_coefficients_equal_pillow_file(backend, ss, tmp_path):
    jpeglib = pytest.importorskip("jpeglib")
    rng = np.random.default_rng(7)
    subsampling = "4:2:0" if ss == "gray" else ss
    qualities = [1, 2, 7, 10, 20, 33, 50, 51, 75, 90, 99, 100] if backend == "cpu" else [1, 20, 75, 100]
    for h, w in ODD_SIZES:
        imgs = case_images(rng, h, w, ss)
        for q in qualities:
            coefs = jpeg.coefficients(imgs, q, subsampling=subsampling, backend=backend)
            for i, img in enumerate(imgs):
                path = tmp_path / "x.jpg"
                path.write_bytes(pillow_file(img, q, subsampling))
                stored = jpeglib.read_dct(str(path))
                expected = [stored.Y] + ([stored.Cb, stored.Cr] if ss != "gray" else [])
                assert len(coefs.components) == len(expected)
                for comp, exp in zip(coefs.components, expected):
                    np.testing.assert_array_equal(comp[i], exp, err_msg=f"q={q} {ss} {h}x{w}")
                np.testing.assert_array_equal(coefs.tables[i, 0], stored.qt[0])
                if ss != "gray":
                    np.testing.assert_array_equal(coefs.tables[i, 1], stored.qt[1])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("ss", SUBSAMPLINGS)
def test_reconstruct_equals_roundtrip(backend, ss):
    rng = np.random.default_rng(3)
    subsampling = "4:2:0" if ss == "gray" else ss
    for h, w in ODD_SIZES:
        imgs = case_images(rng, h, w, ss)
        q = rng.integers(1, 101, size=len(imgs))
        coefs = jpeg.coefficients(imgs, q, subsampling=subsampling, backend=backend)
        np.testing.assert_array_equal(jpeg.reconstruct(coefs, backend=backend), jpeg.roundtrip(imgs, q, subsampling=subsampling, backend=backend))


def test_backends_agree_on_random_batches():
    rng = np.random.default_rng(11)
    for ss in ("4:2:0", "4:2:2", "4:4:4"):
        imgs = rng.integers(0, 256, (6, 21, 30, 3), dtype=np.uint8)
        q = rng.integers(1, 101, size=6)
        a = jpeg.roundtrip(imgs, q, subsampling=ss, backend="numpy")
        b = jpeg.roundtrip(imgs, q, subsampling=ss, backend="cpu")
        np.testing.assert_array_equal(a, b)


def test_generic_kernels_match(tmp_path):
    """The portable (non-AVX2) kernels compute the same integers."""
    script = tmp_path / "generic.py"
    script.write_text(
        "import numpy as np\n"
        "from helmholtz import jpeg\nfrom helmholtz._codec import native as _native\n"
        "assert _native.kernel_name() == 'portable'\n"
        "rng = np.random.default_rng(5)\n"
        "for ss in ('4:2:0', '4:2:2', '4:4:4'):\n"
        "    for h, w in ((1, 1), (7, 13), (33, 65), (40, 48)):\n"
        "        x = rng.integers(0, 256, (3, h, w, 3), dtype=np.uint8)\n"
        "        q = [1, 37, 95]\n"
        "        assert np.array_equal(jpeg.roundtrip(x, q, subsampling=ss, backend='cpu'), jpeg.roundtrip(x, q, subsampling=ss, backend='numpy'))\n"
        "        c = jpeg.coefficients(x, q, subsampling=ss, backend='cpu')\n"
        "        assert np.array_equal(jpeg.reconstruct(c, backend='cpu'), jpeg.roundtrip(x, q, subsampling=ss, backend='numpy'))\n"
        "print('ok')\n"
    )
    env = dict(os.environ, HELMHOLTZ_KERNELS="portable")
    res = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "ok"


# --------------------------------------------------------------------------
# Many qualities from one transform, per-image qualities
# --------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_roundtrip_many_equals_single_calls(backend):
    rng = np.random.default_rng(1)
    imgs = rng.integers(0, 256, (3, 19, 23, 3), dtype=np.uint8)
    qualities = [1, 5, 20, 50, 100]
    many = jpeg.roundtrip_many(imgs, qualities, backend=backend)
    assert many.shape == (5,) + imgs.shape
    for k, q in enumerate(qualities):
        np.testing.assert_array_equal(many[k], jpeg.roundtrip(imgs, q, backend=backend))
    coefs = jpeg.coefficients_many(imgs, qualities, backend=backend)
    for k, q in enumerate(qualities):
        single = jpeg.coefficients(imgs, q, backend=backend)
        for a, b in zip(coefs[k].components, single.components):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(coefs[k].quality, np.full(3, q))


def test_per_image_quality():
    rng = np.random.default_rng(2)
    imgs = rng.integers(0, 256, (4, 16, 16, 3), dtype=np.uint8)
    q = [3, 30, 60, 97]
    got = jpeg.roundtrip(imgs, q)
    for i in range(4):
        np.testing.assert_array_equal(got[i], pillow_roundtrip(imgs[i], q[i], "4:2:0"))


def test_quant_tables():
    luma, chroma = jpeg.quant_tables(50)
    np.testing.assert_array_equal(luma, ref.ANNEX_K_LUMA)
    np.testing.assert_array_equal(chroma, ref.ANNEX_K_CHROMA)
    assert (jpeg.quant_tables(100)[0] == 1).all()
    assert jpeg.quant_tables(1)[0].max() == 255
    assert jpeg.quant_tables(1, baseline=False)[0].max() > 255
    # q = 20: scale 5000 // 20 = 250 -> (16 * 250 + 50) // 100 = 40
    assert jpeg.quant_tables(20)[0][0, 0] == 40
    assert luma.dtype == np.uint16


# --------------------------------------------------------------------------
# Input kinds and layouts
# --------------------------------------------------------------------------


def test_shapes_single_gray_and_color():
    rng = np.random.default_rng(4)
    gray = rng.integers(0, 256, (9, 11), dtype=np.uint8)
    out = jpeg.roundtrip(gray, 40)
    assert out.shape == (9, 11)
    np.testing.assert_array_equal(out, pillow_roundtrip(gray[..., None], 40, "4:2:0")[..., 0])
    one = rng.integers(0, 256, (9, 11, 1), dtype=np.uint8)
    assert jpeg.roundtrip(one, 40).shape == (9, 11, 1)
    rgb = rng.integers(0, 256, (9, 11, 3), dtype=np.uint8)
    np.testing.assert_array_equal(jpeg.roundtrip(rgb, 40), pillow_roundtrip(rgb, 40, "4:2:0"))


def test_non_contiguous_and_negative_strides():
    rng = np.random.default_rng(6)
    base = rng.integers(0, 256, (4, 40, 50, 3), dtype=np.uint8)
    for view in (base[:, ::2, 1::3], base[::-1, :, ::-1], base[:, ::-1], np.asfortranarray(base[0]), base[..., ::-1]):
        expected = jpeg.roundtrip(np.ascontiguousarray(view), 25)
        np.testing.assert_array_equal(jpeg.roundtrip(view, 25), expected)


def test_torch_tensor_in_tensor_out():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(8)
    x = rng.integers(0, 256, (2, 17, 19, 3), dtype=np.uint8)
    t = torch.from_numpy(x.copy())
    out = jpeg.roundtrip(t, 30)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.uint8 and tuple(out.shape) == x.shape
    np.testing.assert_array_equal(out.numpy(), jpeg.roundtrip(x, 30))
    np.testing.assert_array_equal(t.numpy(), x)  # input untouched
    many = jpeg.roundtrip_many(t, [10, 90])
    assert isinstance(many, torch.Tensor) and tuple(many.shape) == (2,) + x.shape
    coefs = jpeg.coefficients(t, 30)
    np.testing.assert_array_equal(jpeg.reconstruct(coefs), out.numpy())


def test_buffer_protocol_and_dlpack_inputs():
    rng = np.random.default_rng(9)
    x = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    expected = jpeg.roundtrip(x, 50)
    np.testing.assert_array_equal(jpeg.roundtrip(memoryview(x), 50), expected)

    class OnlyDLPack:
        def __init__(self, a):
            self._a = a

        def __dlpack__(self, **kwargs):
            return self._a.__dlpack__(**kwargs)

        def __dlpack_device__(self):
            return self._a.__dlpack_device__()

    np.testing.assert_array_equal(jpeg.roundtrip(OnlyDLPack(x), 50), expected)


def test_num_threads_do_not_change_results():
    rng = np.random.default_rng(10)
    x = rng.integers(0, 256, (37, 24, 40, 3), dtype=np.uint8)
    base = jpeg.roundtrip(x, 20, num_threads=1)
    for t in (2, 3, 8, 64):
        np.testing.assert_array_equal(jpeg.roundtrip(x, 20, num_threads=t), base)


def test_concurrent_calls_match_serial():
    rng = np.random.default_rng(12)
    batches = [rng.integers(0, 256, (16, 32, 32, 3), dtype=np.uint8) for _ in range(8)]
    qualities = [5, 10, 20, 30, 50, 70, 90, 100]
    serial = [jpeg.roundtrip(b, q) for b, q in zip(batches, qualities)]
    results = [None] * len(batches)

    def work(i):
        for _ in range(3):
            results[i] = jpeg.roundtrip(batches[i], qualities[i], num_threads=2)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(batches))]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for a, b in zip(results, serial):
        np.testing.assert_array_equal(a, b)


# --------------------------------------------------------------------------
# Bad input: clear errors naming the argument
# --------------------------------------------------------------------------

GOOD = np.zeros((8, 8, 3), np.uint8)


@pytest.mark.parametrize(
    "kwargs, exc, words",
    [
        (dict(images=np.zeros((8, 8, 3), np.float32)), TypeError, "uint8"),
        (dict(images=np.zeros((8, 8, 3), np.int16)), TypeError, "uint8"),
        (dict(images=np.zeros((8,), np.uint8)), ValueError, "images must have shape"),
        (dict(images=np.zeros((1, 2, 8, 8, 3), np.uint8)), ValueError, "images must have shape"),
        (dict(images=np.zeros((8, 8, 2), np.uint8)), ValueError, "channels"),
        (dict(images=np.zeros((8, 8, 4), np.uint8)), ValueError, "channels"),
        (dict(images=np.zeros((0, 8, 8, 3), np.uint8)), ValueError, "empty batch"),
        (dict(images=np.zeros((0, 8, 3), np.uint8)), ValueError, "zero-size"),
        (dict(images=np.zeros((8, 0, 3), np.uint8)), ValueError, "zero-size"),
        (dict(images="not an image"), TypeError, "images"),
        (dict(quality=0), ValueError, "quality must be in 1..100"),
        (dict(quality=101), ValueError, "quality must be in 1..100"),
        (dict(quality=20.5), TypeError, "quality"),
        (dict(quality="20"), TypeError, "quality"),
        (dict(quality=True), TypeError, "quality"),
        (dict(quality=[20, 30]), ValueError, "one per image"),
        (dict(quality=[[20]]), ValueError, "quality"),
        (dict(subsampling="4:1:1"), ValueError, "subsampling"),
        (dict(subsampling=2), TypeError, "subsampling"),
        (dict(backend="gpu"), ValueError, "backend"),
        (dict(backend=3), TypeError, "backend"),
        (dict(num_threads=0), ValueError, "num_threads"),
        (dict(num_threads=1.5), TypeError, "num_threads"),
    ],
)
def test_bad_input_raises_clear_errors(kwargs, exc, words):
    args = dict(images=GOOD, quality=20)
    args.update(kwargs)
    images, quality = args.pop("images"), args.pop("quality")
    with pytest.raises(exc, match=words):
        jpeg.roundtrip(images, quality, **args)
    with pytest.raises(exc, match=words):
        jpeg.coefficients(images, quality, **args)


@pytest.mark.parametrize("qualities, exc", [([], ValueError), ([0, 50], ValueError), ([1.5], TypeError), (7, ValueError)])
def test_bad_quality_lists(qualities, exc):
    with pytest.raises(exc, match="qualities"):
        jpeg.roundtrip_many(GOOD, qualities)


def test_cuda_backend_missing_is_a_clear_error():
    if "cuda" in backends.available():
        pytest.skip("a CUDA backend is available here")
    with pytest.raises((BackendUnavailable, ValueError), match="cuda|CUDA|CuPy|GPU"):
        jpeg.roundtrip(GOOD, 20, backend="cuda")


def test_reconstruct_rejects_inconsistent_containers():
    coefs = jpeg.coefficients(np.zeros((2, 16, 16, 3), np.uint8), 50)
    with pytest.raises(TypeError, match="Coefficients"):
        jpeg.reconstruct({"components": coefs.components})
    broken = jpeg.Coefficients(coefs.components[:1], coefs.tables, coefs.quality, "4:2:0", coefs.shape)
    with pytest.raises(ValueError, match="components"):
        jpeg.reconstruct(broken)
    wrong_shape = jpeg.Coefficients(coefs.components, coefs.tables, coefs.quality, "4:2:0", (2, 32, 16, 3))
    with pytest.raises(ValueError, match="shape"):
        jpeg.reconstruct(wrong_shape)
    wrong_ss = jpeg.Coefficients(coefs.components, coefs.tables, coefs.quality, "4:4:4", coefs.shape)
    with pytest.raises(ValueError, match="shape"):
        jpeg.reconstruct(wrong_ss)
    bad_tables = jpeg.Coefficients(coefs.components, np.zeros((2, 2, 8, 8), np.uint16), coefs.quality, "4:2:0", coefs.shape)
    with pytest.raises(ValueError):
        jpeg.reconstruct(bad_tables)


# --------------------------------------------------------------------------
# Property-based: random shapes, strides, qualities never crash and match the spec
# --------------------------------------------------------------------------

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 3),
    h=st.integers(1, 40),
    w=st.integers(1, 40),
    c=st.sampled_from([1, 3]),
    ss=st.sampled_from(["4:4:4", "4:2:2", "4:2:0"]),
    step=st.sampled_from([1, 2, -1]),
    data=st.data(),
)
def test_property_cpu_matches_reference(n, h, w, c, ss, step, data):
    seed = data.draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (n, h * abs(step), w * abs(step), c), dtype=np.uint8)
    view = base[:, ::step, ::step]
    q = data.draw(st.lists(st.integers(1, 100), min_size=n, max_size=n))
    fast = jpeg.roundtrip(view, q, subsampling=ss, backend="cpu")
    spec = jpeg.roundtrip(np.ascontiguousarray(view), q, subsampling=ss, backend="numpy")
    np.testing.assert_array_equal(fast, spec)


def test_sanitized_build_is_the_one_under_test():
    """`make sanitize` sets HELMHOLTZ_EXPECT_SANITIZED: make sure its ASan build is what runs."""
    if not os.environ.get("HELMHOLTZ_EXPECT_SANITIZED"):
        pytest.skip("only meaningful under `make sanitize`")
    from helmholtz._codec import native as _native

    assert "build/asan" in _native.__file__.replace(os.sep, "/")


@pytest.mark.parametrize("backend", BACKENDS)
def test_reconstruct_refuses_out_of_range_coefficients(backend):
    coefs = jpeg.coefficients(np.zeros((2, 16, 16, 3), np.uint8), 90, backend=backend)
    comps = [c.copy() for c in coefs.components]
    comps[0][1, 0, 0, 3, 3] = 30000  # no 8-bit image quantises to this
    bad = jpeg.Coefficients(tuple(comps), coefs.tables, coefs.quality, coefs.subsampling, coefs.shape)
    with pytest.raises(ValueError, match="range a baseline JPEG encoder"):
        jpeg.reconstruct(bad, backend=backend)


def test_extreme_images_stay_in_range():
    """Checkerboards and flat extremes produce the largest coefficients; they must decode."""
    yy, xx = np.mgrid[:32, :32]
    board = (((yy + xx) % 2) * 255).astype(np.uint8)
    imgs = np.stack([np.stack([board] * 3, -1), 255 - np.stack([board] * 3, -1), np.zeros((32, 32, 3), np.uint8), np.full((32, 32, 3), 255, np.uint8)])
    for q in (1, 50, 100):
        for ss in ("4:4:4", "4:2:0"):
            coefs = jpeg.coefficients(imgs, q, subsampling=ss)
            got = jpeg.reconstruct(coefs)
            np.testing.assert_array_equal(got, np.stack([pillow_roundtrip(im, q, ss) for im in imgs]))


def test_roundtrip_float_cpu():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(13)
    x = rng.integers(0, 256, (3, 12, 20, 3), dtype=np.uint8)
    u8 = jpeg.roundtrip(x, 30)
    f = jpeg.roundtrip_float(x, 30)
    assert f.shape == (3, 3, 12, 20) and f.dtype == np.float32
    np.testing.assert_array_equal(f, u8.transpose(0, 3, 1, 2).astype(np.float32) / np.float32(255))
    mean, std = [0.4914, 0.4822, 0.4465], [0.247, 0.243, 0.261]
    g = jpeg.roundtrip_float(torch.from_numpy(x), 30, mean=mean, std=std)
    expected = (torch.from_numpy(u8).permute(0, 3, 1, 2).float() / 255 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    torch.testing.assert_close(g, expected, rtol=0, atol=1e-6)
    b = jpeg.roundtrip_float(torch.from_numpy(x), 30, dtype="bfloat16")
    assert b.dtype == torch.bfloat16
    with pytest.raises(ValueError, match="bfloat16"):
        jpeg.roundtrip_float(x, 30, dtype="bfloat16")
    with pytest.raises(ValueError, match="mean"):
        jpeg.roundtrip_float(x, 30, mean=[0.5])


@pytest.mark.parametrize("ss", SUBSAMPLINGS)
def test_single_large_image_shared_by_threads(ss):
    """Fewer images than threads: rows and block groups of one image are spread over the threads."""
    rng = np.random.default_rng(14)
    subsampling = "4:2:0" if ss == "gray" else ss
    c = 1 if ss == "gray" else 3
    for h, w in ((257, 513), (300, 500), (256, 256)):  # luma plane narrower than the conversion row, and not
        x = make_image(rng, h, w, c, "noise")[None]
        for q in (7, 93):
            expected = pillow_roundtrip(x[0], q, subsampling)
            for threads in (1, 2, 3):
                np.testing.assert_array_equal(jpeg.roundtrip(x, q, subsampling=subsampling, num_threads=threads)[0], expected)
            many = jpeg.roundtrip_many(x, [q, 50], subsampling=subsampling, num_threads=2)
            np.testing.assert_array_equal(many[0, 0], expected)
            one = jpeg.coefficients(x, q, subsampling=subsampling, num_threads=1)
            shared = jpeg.coefficients(x, q, subsampling=subsampling, num_threads=3)
            for a, b in zip(one.components, shared.components):
                np.testing.assert_array_equal(a, b)
