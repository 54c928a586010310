"""Entropy coding: bit counts and JPEG files against Pillow (libjpeg-turbo) as the oracle."""

from __future__ import annotations

import io

import numpy as np
import pytest

from helmholtz._codec import entropy as E

try:
    from helmholtz._codec import native as NATIVE
except ImportError:  # a build without the C core
    NATIVE = None
from helmholtz._codec import entropy_reference as er
from helmholtz import jpeg

Image = pytest.importorskip("PIL.Image")

BACKENDS = ["numpy"] + (["cpu"] if NATIVE is not None else [])
SUBSAMPLINGS = ["4:2:0", "4:2:2", "4:4:4"]


def _pillow(img: np.ndarray, q: int, subsampling: str, optimize: bool) -> bytes:
    buf = io.BytesIO()
    pil = Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img)
    pil.save(buf, "JPEG", quality=q, subsampling=subsampling, optimize=optimize)
    return buf.getvalue()


def _scan(data: bytes) -> bytes:
    """The entropy-coded segment of a baseline JPEG file (between SOS and EOI), stuffing included."""
    i = 2
    while True:
        assert data[i] == 0xFF
        marker = data[i + 1]
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        if marker == 0xDA:
            start = i + 2 + length
            break
        i += 2 + length
    assert data[-2:] == b"\xff\xd9"
    return data[start:-2]


def _images(shape, n, kind, seed):
    rng = np.random.default_rng(seed)
    h, w, c = shape
    noise = rng.integers(0, 256, (n, h, w, c), dtype=np.uint8)
    if kind == "noise":
        return noise
    ramp = (np.add.outer(np.arange(h), 2 * np.arange(w))[None, ..., None] * 3 + noise // 16).astype(np.uint8)
    return np.ascontiguousarray(np.broadcast_to(ramp, (n, h, w, c)))


# ---------------------------------------------------------------------------
# Byte-exact files and exact bits
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("optimize", [False, True])
@pytest.mark.parametrize("subsampling", SUBSAMPLINGS)
def test_every_quality_matches_pillow(backend, optimize, subsampling):
    img = _images((13, 21, 3), 1, "smooth", 1)
    for q in range(1, 101):
        coefs = jpeg.coefficients(img, q, subsampling=subsampling, backend="auto")
        data = _pillow(img[0], q, subsampling, optimize)
        assert E.encode(coefs, optimize=optimize, backend=backend)[0] == data, q
        nbits = int(E.bits(coefs, optimize=optimize, backend=backend)[0])
        scan = _scan(data).replace(b"\xff\x00", b"\xff")
        assert 0 <= 8 * len(scan) - nbits < 8, q


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("optimize", [False, True])
@pytest.mark.parametrize("subsampling", SUBSAMPLINGS)
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("size", [(1, 1), (7, 13), (13, 7), (33, 65), (32, 32), (8, 8), (17, 9)])
@pytest.mark.parametrize("kind", ["noise", "smooth"])
def test_files_and_bits_match_pillow(backend, optimize, subsampling, channels, size, kind):
    imgs = _images(size + (channels,), 2, kind, hash((size, kind, channels)) % 1000)
    for q in (1, 10, 50, 93, 100):
        coefs = jpeg.coefficients(imgs, q, subsampling=subsampling, backend="auto")
        files = E.encode(coefs, optimize=optimize, backend=backend)
        nbits = E.bits(coefs, optimize=optimize, backend=backend)
        assert nbits.dtype == np.int64 and nbits.shape == (2,)
        for i in range(2):
            data = _pillow(imgs[i], q, subsampling, optimize)
            assert files[i] == data
            scan = _scan(data).replace(b"\xff\x00", b"\xff")
            pad = 8 * len(scan) - int(nbits[i])
            assert 0 <= pad < 8
            if pad:
                assert scan[-1] & ((1 << pad) - 1) == (1 << pad) - 1  # padded with 1-bits


@pytest.mark.parametrize("backend", BACKENDS)
def test_bits_from_images_equals_bits_from_coefficients(backend):
    imgs = _images((24, 40, 3), 3, "noise", 5)
    qs = [5, 40, 77]
    direct = E.bits(imgs, qs, subsampling="4:2:2", backend=backend)
    coefs = jpeg.coefficients(imgs, qs, subsampling="4:2:2", backend="auto")
    assert np.array_equal(direct, E.bits(coefs, backend=backend))
    assert np.array_equal(E.bits(coefs, subsampling="4:2:2", backend=backend), direct)
    files = E.encode(imgs, qs, subsampling="4:2:2", backend=backend)
    for i, q in enumerate(qs):
        assert files[i] == _pillow(imgs[i], q, "4:2:2", False)


@pytest.mark.parametrize("backend", BACKENDS)
def test_bits_many_rows_equal_bits(backend):
    imgs = _images((16, 16, 3), 2, "smooth", 3)
    qs = [1, 20, 100]
    many = E.bits_many(imgs, qs, optimize=True, backend=backend)
    assert many.shape == (3, 2) and many.dtype == np.int64
    for k, q in enumerate(qs):
        assert np.array_equal(many[k], E.bits(imgs, q, optimize=True, backend=backend))


def test_optimal_tables_never_cost_more():
    imgs = _images((32, 32, 3), 4, "noise", 9)
    for q in (10, 90):
        std = E.bits(imgs, q, backend=BACKENDS[-1])
        opt = E.bits(imgs, q, optimize=True, backend=BACKENDS[-1])
        assert (opt <= std).all()


def test_flat_image_bits_by_hand():
    # 16x16 mid-gray: 4 luma blocks (DC 0: 2 bits, EOB: 4 bits) + Cb, Cr (2 + 2 bits each).
    img = np.full((16, 16, 3), 128, np.uint8)
    for backend in BACKENDS:
        assert int(E.bits(img, 75, backend=backend)[0]) == 4 * 6 + 2 * 4


def test_cpu_and_numpy_agree_on_arbitrary_coefficients(tmp_path):
    if "cpu" not in BACKENDS:
        pytest.skip("the compiled entropy core is not built")
    rng = np.random.default_rng(0)
    base = jpeg.coefficients(_images((19, 35, 3), 3, "noise", 2), 50, backend="auto")
    comps = []
    for c in base.components:
        sparse = rng.integers(-1023, 1024, c.shape) * (rng.random(c.shape) < 0.15)
        sparse[..., 0, 0] = rng.integers(-1024, 1017, c.shape[:3])
        comps.append(sparse.astype(np.int16))
    coefs = jpeg.Coefficients(tuple(comps), base.tables, base.quality, base.subsampling, base.shape)
    for optimize in (False, True):
        assert np.array_equal(E.bits(coefs, optimize=optimize, backend="cpu"), E.bits(coefs, optimize=optimize, backend="numpy"))
        files = E.encode(coefs, optimize=optimize, backend="cpu")
        assert files == E.encode(coefs, optimize=optimize, backend="numpy")
    jpeglib = pytest.importorskip("jpeglib")
    path = tmp_path / "x.jpg"
    path.write_bytes(files[1])
    back = jpeglib.read_dct(str(path))
    for got, want in zip((back.Y, back.Cb, back.Cr), comps):
        assert np.array_equal(np.asarray(got)[: want.shape[1], : want.shape[2]], want[1])


def test_optimal_table_reference_matches_cpu():
    if "cpu" not in BACKENDS:
        pytest.skip("the compiled entropy core is not built")
    rng = np.random.default_rng(4)
    for trial in range(50):
        freq = np.zeros(256, np.int64)
        k = rng.integers(1, 257)
        freq[rng.choice(256, k, replace=False)] = rng.integers(1, [2, 10, 10**6][trial % 3], k) ** rng.integers(1, 3)
        table = er.gen_optimal_table(freq)
        bits, vals = NATIVE.optimal_table(freq)
        assert tuple(bits) == table.bits and tuple(vals) == table.huffval
        assert sum(table.bits) == k and max(i for i in range(16) if table.bits[i]) < 16


def test_skewed_frequencies_limit_code_length_to_16():
    fib = [1, 1]
    while len(fib) < 28:
        fib.append(fib[-1] + fib[-2])
    freq = np.array(fib + [0] * 228, np.int64)  # Fibonacci counts: an unlimited code needs 27 bits
    table = er.gen_optimal_table(freq)
    assert len(table.bits) == 16 and sum(table.bits) == 28
    lengths = er.code_lengths(table)
    assert lengths.max() <= 16
    codes = table.codes()
    assert all(code != (1 << n) - 1 for code, n in codes.values())  # the all-ones codeword stays reserved
    if NATIVE is not None:
        bits, vals = NATIVE.optimal_table(freq)
        assert tuple(bits) == table.bits and tuple(vals) == table.huffval


# ---------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_container_that_does_not_fit_is_rejected(backend):
    coefs = jpeg.coefficients(_images((16, 16, 3), 2, "noise", 1), 30, subsampling="4:4:4", backend="auto")
    with pytest.raises(ValueError, match="quality must be None"):
        E.bits(coefs, 30, backend=backend)
    with pytest.raises(ValueError, match="subsampling='4:2:0' does not fit"):
        E.bits(coefs, subsampling="4:2:0", backend=backend)
    with pytest.raises(ValueError, match="subsampling"):
        E.encode(coefs, subsampling="4:2:2", backend=backend)
    broken = jpeg.Coefficients(coefs.components[:2], coefs.tables, coefs.quality, coefs.subsampling, coefs.shape)
    with pytest.raises(ValueError, match="components"):
        E.bits(broken, backend=backend)
    wrong = jpeg.Coefficients(coefs.components, coefs.tables, coefs.quality, "4:2:0", coefs.shape)
    with pytest.raises(ValueError, match="shape"):
        E.encode(wrong, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_out_of_range_coefficients_raise(backend):
    coefs = jpeg.coefficients(_images((8, 8, 1), 1, "noise", 1), 30, backend="auto")
    big = coefs.components[0].copy()
    big[0, 0, 0, 3, 3] = 2000
    bad = jpeg.Coefficients((big,), coefs.tables, coefs.quality, coefs.subsampling, coefs.shape)
    with pytest.raises(ValueError, match="baseline JPEG range"):
        E.bits(bad, backend=backend)
    with pytest.raises(ValueError, match="baseline JPEG range"):
        E.encode(bad, optimize=True, backend=backend)


def test_bad_arguments():
    img = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(TypeError, match="quality is required"):
        E.bits(img)
    with pytest.raises(TypeError, match="optimize"):
        E.bits(img, 50, optimize=1)
    with pytest.raises(ValueError, match="backend"):
        E.bits(img, 50, backend="gpu")
    with pytest.raises(TypeError, match="backend"):
        E.encode(img, 50, backend=3)
    with pytest.raises(TypeError, match="uint8"):
        E.bits(img.astype(np.float32), 50)
    with pytest.raises(ValueError, match="quality"):
        E.encode(img, 0)
    with pytest.raises(ValueError, match="subsampling"):
        E.bits(img, 50, subsampling="4:1:1")
    with pytest.raises(TypeError):
        E.symbol_frequencies(img)


def test_a_build_without_the_c_core_names_it_when_cpu_is_asked_for(monkeypatch):
    import sys

    from helmholtz import BackendUnavailable
    from helmholtz._codec import registry

    import helmholtz._codec

    monkeypatch.setitem(sys.modules, "helmholtz._codec.native", None)  # as if the extension was never built
    monkeypatch.delattr(helmholtz._codec, "native", raising=False)
    registry.forget("cpu")
    try:
        with pytest.raises(BackendUnavailable, match="compiled"):
            E.bits(np.zeros((8, 8, 3), np.uint8), 50, backend="cpu")
        with pytest.raises(BackendUnavailable, match="cpu"):
            jpeg.roundtrip(np.zeros((8, 8, 3), np.uint8), 50, backend="cpu")
        assert jpeg.roundtrip(np.zeros((8, 8, 3), np.uint8), 50).shape == (8, 8, 3)  # auto falls back to the reference
    finally:
        registry.forget("cpu")


@pytest.mark.parametrize("backend", BACKENDS)
def test_symbol_frequencies_reproduce_bits(backend):
    imgs = _images((20, 28, 3), 2, "noise", 8)
    coefs = jpeg.coefficients(imgs, 60, backend="auto")
    freq, extra = E.symbol_frequencies(coefs, backend=backend)
    lengths = np.stack([er.code_lengths(t) for t in er.STD_TABLES])
    assert np.array_equal((freq * lengths).sum(axis=(1, 2)) + extra, E.bits(coefs, backend=backend))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("channels, subsampling", [(1, "4:2:0"), (3, "4:4:4"), (3, "4:2:0")])
def test_bits_many_in_chunks(backend, channels, subsampling, monkeypatch):
    monkeypatch.setattr(E, "_CHUNK", 2)
    imgs = _images((9, 23, channels), 5, "noise", 12)
    many = E.bits_many(imgs, [3, 60], subsampling=subsampling, backend=backend)
    for k, q in enumerate([3, 60]):
        coefs = jpeg.coefficients(imgs, q, subsampling=subsampling, backend="auto")
        assert np.array_equal(many[k], E.bits(coefs, backend=backend))
        for i in (0, 4):
            scan = _scan(_pillow(imgs[i], q, subsampling, False)).replace(b"\xff\x00", b"\xff")
            assert 0 <= 8 * len(scan) - many[k, i] < 8
