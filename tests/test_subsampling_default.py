"""``subsampling=None`` (the default) is Pillow's default: what ``save(buf, "JPEG", quality=q)`` writes.

For colour that is 4:2:0. For grayscale Pillow leaves libjpeg's 1x1
sampling, so the SOF carries 0x11, while Pillow given any explicit
``subsampling`` writes that value's luma factors (0x22 for "4:2:0") even for
grayscale; every explicit value keeps matching Pillow with the same argument.
"""

from __future__ import annotations

import io

import numpy as np
import pytest

from helmholtz import info, jpeg
from helmholtz._codec import registry as backends
from _gpu import needs_gpu

Image = pytest.importorskip("PIL.Image")

BACKENDS = [b for b in ("numpy", "cpu") if b in backends.available()]
GRAY_SHAPES = [(1, 1), (7, 13), (8, 8), (9, 30), (16, 16), (17, 130), (33, 65, 1), (64, 48, 1)]
QUALITIES = [1, 5, 25, 50, 75, 90, 95, 100]
SOF_BYTE = {"4:2:0": 0x22, "4:2:2": 0x21, "4:4:4": 0x11}


def pillow_file(img: np.ndarray, q: int, subsampling: str | None = None, optimize: bool = False) -> bytes:
    """Pillow's file; ``subsampling=None`` leaves the argument out (Pillow's default)."""
    buf = io.BytesIO()
    extra = {} if subsampling is None else {"subsampling": subsampling}
    Image.fromarray(img[..., 0] if img.ndim == 3 and img.shape[2] == 1 else img).save(buf, "JPEG", quality=q, optimize=optimize, **extra)
    return buf.getvalue()


def sof_luma_sampling(f: bytes) -> int:
    """The sampling-factor byte of component 1 in the file's SOF0, found by walking the markers."""
    at = 2
    while f[at] == 0xFF:
        marker, length = f[at + 1], int.from_bytes(f[at + 2 : at + 4], "big")
        if marker == 0xC0:
            return f[at + 11]
        at += 2 + length
    raise AssertionError("no SOF0")


def image(shape: tuple, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    # smooth plus noise, so that the scans hold runs and large values alike
    y, x = np.mgrid[: shape[0], : shape[1]]
    base = (x * 7 + y * 3) % 256
    noisy = base[..., None] if len(shape) == 3 else base
    return np.clip(noisy + rng.integers(-40, 41, shape), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", GRAY_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_encode_of_grayscale_equals_pillows_default_save_byte_for_byte(shape, backend):
    img = image(shape)
    files = [jpeg.encode(img, q, backend=backend)[0] for q in QUALITIES]
    for q, f in zip(QUALITIES, files):
        assert f == pillow_file(img, q), q
        assert sof_luma_sampling(f) == 0x11
    # a batch, and one quality per image
    batch = np.stack([img, image(shape, 1)]).reshape((2,) + shape[:2] + (1,))  # (N, H, W, 1)
    assert jpeg.encode(batch, [5, 95], backend=backend) == [pillow_file(batch[0], 5), pillow_file(batch[1], 95)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_optimized_grayscale_files_take_the_default_too(backend):
    img = image((23, 41))
    for q in (10, 60, 100):
        assert jpeg.encode(img, q, optimize=True, backend=backend)[0] == pillow_file(img, q, optimize=True)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("subsampling", ["4:2:0", "4:2:2", "4:4:4"])
def test_explicit_subsampling_of_grayscale_keeps_equal_to_pillow_given_it(subsampling, backend):
    for shape in [(7, 13), (17, 130), (33, 65, 1)]:
        img = image(shape)
        for q in (5, 50, 95):
            f = jpeg.encode(img, q, subsampling=subsampling, backend=backend)[0]
            assert f == pillow_file(img, q, subsampling)
            assert sof_luma_sampling(f) == SOF_BYTE[subsampling]


@pytest.mark.parametrize("backend", BACKENDS)
def test_colour_default_is_420(backend):
    for shape in [(1, 1, 3), (19, 23, 3), (64, 48, 3)]:
        img = image(shape)
        for q in (5, 50, 95):
            f = jpeg.encode(img, q, backend=backend)[0]
            assert f == pillow_file(img, q) == pillow_file(img, q, "4:2:0")
            assert f == jpeg.encode(img, q, subsampling="4:2:0", backend=backend)[0]
            assert sof_luma_sampling(f) == 0x22
        np.testing.assert_array_equal(jpeg.roundtrip(img, 30, backend=backend), jpeg.roundtrip(img, 30, subsampling="4:2:0", backend=backend))
        np.testing.assert_array_equal(jpeg.bits_many(img, [5, 50], backend=backend),
                                      jpeg.bits_many(img, [5, 50], subsampling="4:2:0", backend=backend))
        assert jpeg.coefficients(img, 30, backend=backend).subsampling == "4:2:0"


@pytest.mark.parametrize("backend", BACKENDS)
def test_default_grayscale_container_records_444_and_encodes_to_pillows_default(backend):
    img = image((17, 130))
    coefs = jpeg.coefficients(img, 40, backend=backend)
    assert coefs.subsampling == "4:4:4"
    assert jpeg.encode(coefs, backend=backend)[0] == pillow_file(img, 40)
    explicit = jpeg.coefficients(img, 40, subsampling="4:2:0", backend=backend)
    assert explicit.subsampling == "4:2:0"
    assert jpeg.encode(explicit, backend=backend)[0] == pillow_file(img, 40, "4:2:0")
    # the coefficients, pixels and bits of a grayscale image do not depend on the choice
    np.testing.assert_array_equal(coefs.components[0], explicit.components[0])
    np.testing.assert_array_equal(jpeg.reconstruct(coefs, backend=backend), jpeg.reconstruct(explicit, backend=backend))
    np.testing.assert_array_equal(jpeg.roundtrip(img, 40, backend=backend), jpeg.roundtrip(img, 40, subsampling="4:2:0", backend=backend))
    np.testing.assert_array_equal(jpeg.bits(coefs, backend=backend), jpeg.bits(explicit, backend=backend))
    many = jpeg.coefficients_many(img, [5, 50], backend=backend)
    assert [c.subsampling for c in many] == ["4:4:4", "4:4:4"]
    assert jpeg.encode(many[1], backend=backend)[0] == pillow_file(img, 50)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_ragged_list_takes_each_items_own_default(backend):
    items = [image((19, 23, 3)), image((9, 30)), image((1, 1, 3)), image((33, 65, 1)), image((8, 8))]
    q = [5, 25, 50, 75, 95]
    files = jpeg.encode(items, q, backend=backend)
    assert files == [pillow_file(im, qi) for im, qi in zip(items, q)]
    assert [sof_luma_sampling(f) for f in files] == [0x22, 0x11, 0x22, 0x11, 0x11]
    coefs = jpeg.coefficients(items, q, backend=backend)
    assert [c.subsampling for c in coefs] == ["4:2:0", "4:4:4", "4:2:0", "4:4:4", "4:4:4"]
    assert jpeg.encode(coefs, backend=backend) == files
    for subsampling in ("4:2:0", "4:2:2", "4:4:4"):  # explicit values: Pillow given them, grayscale too
        got = jpeg.encode(items, q, subsampling=subsampling, backend=backend)
        assert got == [pillow_file(im, qi, subsampling) for im, qi in zip(items, q)]
        assert [c.subsampling for c in jpeg.coefficients(items, q, subsampling=subsampling, backend=backend)] == [subsampling] * 5
    # pixels and bits of the default equal those of the explicit 4:2:0
    for a, b in zip(jpeg.roundtrip(items, q, backend=backend), jpeg.roundtrip(items, q, subsampling="4:2:0", backend=backend)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(jpeg.bits(items, q, backend=backend), jpeg.bits(items, q, subsampling="4:2:0", backend=backend))
    np.testing.assert_array_equal(jpeg.bits_many(items, [5, 60], backend=backend),
                                  jpeg.bits_many(items, [5, 60], subsampling="4:2:0", backend=backend))


@pytest.mark.parametrize("backend", BACKENDS)
def test_file_bits_per_pixel_of_grayscale_measures_pillows_default_file(backend):
    img = image((16, 16))
    assert info.file_bits_per_pixel(img, 50, backend=backend)[0] == 8 * len(pillow_file(img, 50)) / 256




@pytest.mark.cuda
@needs_gpu
def test_the_cuda_path_takes_the_same_default():
    import cupy

    gray, colour = image((17, 130)), image((19, 23, 3))
    for img, want in ((gray, "4:4:4"), (colour, "4:2:0")):
        coefs = jpeg.coefficients(cupy.asarray(img), 40, backend="cuda")
        assert coefs.subsampling == want
        assert jpeg.encode(coefs)[0] == pillow_file(img, 40)
        np.testing.assert_array_equal(cupy.asnumpy(jpeg.roundtrip(cupy.asarray(img), 40, backend="cuda")), jpeg.roundtrip(img, 40, backend="cpu"))
        np.testing.assert_array_equal(cupy.asnumpy(jpeg.bits(cupy.asarray(img), 40, backend="cuda")), jpeg.bits(img, 40, backend="cpu"))
