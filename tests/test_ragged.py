"""Ragged batches: lists of images of different sizes through every public codec function.

Lists may mix sizes (1x1 and odd sizes included) and channel counts; each
result equals the function applied to the image alone, which equals Pillow.
"""

from __future__ import annotations

import io

import numpy as np
import pytest

from helmholtz import jpeg
from helmholtz._codec import registry as backends

Image = pytest.importorskip("PIL.Image")

BACKENDS = [b for b in ("numpy", "cpu") if b in backends.available()]
SHAPES = [(1, 1, 3), (7, 13, 3), (32, 32), (33, 65, 1), (13, 7, 3), (2, 3, 1), (64, 48, 3), (8, 8, 3), (17, 130)]


def pillow_file(img: np.ndarray, q: int, subsampling: str | None = "4:2:0", optimize: bool = False) -> bytes:
    """Pillow's file; ``subsampling=None`` calls ``save`` without that argument (Pillow's default)."""
    buf = io.BytesIO()
    extra = {} if subsampling is None else {"subsampling": subsampling}
    Image.fromarray(img[..., 0] if img.ndim == 3 and img.shape[2] == 1 else img).save(
        buf, "JPEG", quality=q, optimize=optimize, **extra
    )
    return buf.getvalue()


def pillow_roundtrip(img: np.ndarray, q: int, subsampling: str = "4:2:0") -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(pillow_file(img, q, subsampling)))).reshape(img.shape)


@pytest.fixture
def mixed():
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, s, dtype=np.uint8) for s in SHAPES]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("subsampling", ["4:2:0", "4:2:2", "4:4:4"])
def test_roundtrip_of_a_mixed_list_equals_pillow_per_image(mixed, backend, subsampling):
    q = [3 + 11 * i for i in range(len(mixed))]
    out = jpeg.roundtrip(mixed, q, subsampling=subsampling, backend=backend)
    assert isinstance(out, list) and len(out) == len(mixed)
    for im, o, qi in zip(mixed, out, q):
        assert o.shape == im.shape and o.dtype == np.uint8
        np.testing.assert_array_equal(o, pillow_roundtrip(im, qi, subsampling))
    same = jpeg.roundtrip(tuple(mixed), 40, subsampling=subsampling, backend=backend)  # tuples and one quality too
    for im, o in zip(mixed, same):
        np.testing.assert_array_equal(o, pillow_roundtrip(im, 40, subsampling))


@pytest.mark.parametrize("backend", BACKENDS)
def test_roundtrip_many_gives_every_quality_per_image(mixed, backend):
    qualities = [1, 20, 100]
    many = jpeg.roundtrip_many(mixed, qualities, backend=backend)
    for im, m in zip(mixed, many):
        assert m.shape == (3,) + im.shape
        for k, q in enumerate(qualities):
            np.testing.assert_array_equal(m[k], pillow_roundtrip(im, q))


@pytest.mark.parametrize("backend", BACKENDS)
def test_coefficients_give_one_container_per_image(mixed, backend):
    q = [10 + 7 * i for i in range(len(mixed))]
    coefs = jpeg.coefficients(mixed, q, backend=backend)
    assert len(coefs) == len(mixed)
    for im, c, qi in zip(mixed, coefs, q):
        assert isinstance(c, jpeg.Coefficients) and c.shape == im.shape and c.batch_size == 1
        assert len(c.components) == (1 if im.ndim == 2 or im.shape[2] == 1 else 3)
        single = jpeg.coefficients(im, qi, backend="numpy")
        for a, b in zip(c.components, single.components):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(c.tables, single.tables)
        np.testing.assert_array_equal(jpeg.reconstruct(c), pillow_roundtrip(im, qi))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("optimize", [False, True])
def test_bits_and_files_of_a_mixed_list(mixed, backend, optimize):
    q = [5 + 9 * i for i in range(len(mixed))]
    counts = jpeg.bits(mixed, q, optimize=optimize, backend=backend)
    files = jpeg.encode(mixed, q, optimize=optimize, backend=backend)
    assert counts.dtype == np.int64 and counts.shape == (len(mixed),) and len(files) == len(mixed)
    for im, n, f, qi in zip(mixed, counts, files, q):
        assert f == pillow_file(im, qi, subsampling=None, optimize=optimize)  # Pillow's default, gray items too
        assert n == int(jpeg.bits(im, qi, optimize=optimize, backend="numpy")[0])
    # the containers of coefficients() count and encode to the same
    coefs = jpeg.coefficients(mixed, q, backend=backend)
    np.testing.assert_array_equal(jpeg.bits(coefs, optimize=optimize, backend=backend), counts)
    assert jpeg.encode(coefs, optimize=optimize, backend=backend) == files


@pytest.mark.parametrize("backend", BACKENDS)
def test_bits_many_rows_are_bits_per_quality(mixed, backend):
    qualities = [1, 5, 10, 15, 20, 25, 50, 75, 100]
    many = jpeg.bits_many(mixed, qualities, backend=backend)
    assert many.shape == (len(qualities), len(mixed))
    for k, q in enumerate(qualities):
        np.testing.assert_array_equal(many[k], jpeg.bits(mixed, q, backend=backend))


def test_backends_agree_on_random_lists():
    rng = np.random.default_rng(4)
    for trial in range(6):
        shapes = [(int(rng.integers(1, 70)), int(rng.integers(1, 70))) + ((3,) if rng.random() < 0.7 else (1,)) for _ in range(7)]
        items = [rng.integers(0, 256, s, dtype=np.uint8) for s in shapes]
        q = rng.integers(1, 101, size=len(items))
        ss = ["4:2:0", "4:2:2", "4:4:4"][trial % 3]
        fast = jpeg.roundtrip(items, q, subsampling=ss, backend="cpu")
        spec = jpeg.roundtrip(items, q, subsampling=ss, backend="numpy")
        for a, b in zip(fast, spec):
            np.testing.assert_array_equal(a, b)


def test_thread_counts_and_one_dominant_image_do_not_change_results():
    rng = np.random.default_rng(5)
    items = [rng.integers(0, 256, (300, 410, 3), dtype=np.uint8)] + [rng.integers(0, 256, (h, 2 * h + 1, 3), dtype=np.uint8) for h in range(1, 40, 3)]
    base = jpeg.roundtrip(items, 30, num_threads=1)
    bits = jpeg.bits_many(items, [10, 90], num_threads=1)
    for threads in (2, 3, 8):
        for a, b in zip(jpeg.roundtrip(items, 30, num_threads=threads), base):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(jpeg.bits_many(items, [10, 90], num_threads=threads), bits)
    np.testing.assert_array_equal(base[0], pillow_roundtrip(items[0], 30))


def test_strided_items_and_torch_tensors():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(6)
    base = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    items = [base[::2, 1::3], base[::-1], np.asfortranarray(base[:9, :11])]
    for o, im in zip(jpeg.roundtrip(items, 25), items):
        np.testing.assert_array_equal(o, pillow_roundtrip(np.ascontiguousarray(im), 25))
    tensors = [torch.from_numpy(np.ascontiguousarray(im)) for im in items]
    out = jpeg.roundtrip(tensors, 25)
    assert all(isinstance(t, torch.Tensor) and t.dtype == torch.uint8 for t in out)
    for t, im in zip(out, items):
        np.testing.assert_array_equal(t.numpy(), pillow_roundtrip(np.ascontiguousarray(im), 25))


def test_results_outlive_the_call_and_each_other():
    """Results of one call share a buffer: it must stay valid while any of them lives."""
    rng = np.random.default_rng(8)
    items = [rng.integers(0, 256, (300, 300, 3), dtype=np.uint8) for _ in range(6)]
    keep = jpeg.roundtrip(items, 50)[2]
    expected = pillow_roundtrip(items[2], 50)
    for _ in range(3):  # later calls may reuse freed buffers, never this one
        jpeg.roundtrip(items, 90)
    np.testing.assert_array_equal(keep, expected)


# --------------------------------------------------------------------------
# Bad input names the argument
# --------------------------------------------------------------------------

GOOD = np.zeros((8, 8, 3), np.uint8)


@pytest.mark.parametrize(
    "items, quality, exc, words",
    [
        ([], 50, ValueError, "images is an empty list"),
        ([GOOD, GOOD.astype(np.float32)], 50, TypeError, r"images\[1\] must have dtype uint8"),
        ([GOOD, "a string"], 50, TypeError, r"images\[1\]"),
        ([GOOD, np.zeros((2, 8, 8, 3), np.uint8)], 50, ValueError, r"images\[1\] must be one image"),
        ([np.zeros((8,), np.uint8)], 50, ValueError, r"images\[0\] must be one image"),
        ([GOOD, np.zeros((8, 8, 2), np.uint8)], 50, ValueError, r"images\[1\] must have 1 \(grayscale\) or 3"),
        ([np.zeros((0, 8, 3), np.uint8)], 50, ValueError, r"images\[0\] is a zero-size image"),
        ([GOOD, GOOD], [10, 20, 30], ValueError, "quality has 3 entries but there are 2 images"),
        ([GOOD, GOOD], 0, ValueError, "quality must be in 1..100"),
        ([GOOD, GOOD], 2.5, TypeError, "quality"),
    ],
)
@pytest.mark.parametrize("fn", [jpeg.roundtrip, jpeg.coefficients, jpeg.bits, jpeg.encode])
def test_bad_lists_raise_clear_errors(fn, items, quality, exc, words):
    with pytest.raises(exc, match=words):
        fn(items, quality)


def test_bad_quality_lists_and_backends():
    with pytest.raises(ValueError, match="qualities"):
        jpeg.roundtrip_many([GOOD], [])
    with pytest.raises(ValueError, match="qualities"):
        jpeg.bits_many([GOOD], [0, 50])
    with pytest.raises(ValueError, match="backend"):
        jpeg.roundtrip([GOOD], 50, backend="gpu")
    with pytest.raises(ValueError, match="subsampling"):
        jpeg.bits([GOOD], 50, subsampling="4:1:1")
