"""Every kernel set of the C core (portable, avx2, avx512) computes the same integers.

Each test runs once per kernel set this CPU supports, switched in-process with
``use_kernels``; the oracles are Pillow (libjpeg-turbo) and the NumPy reference.
``HELMHOLTZ_KERNELS`` is checked in subprocesses.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys

import numpy as np
import pytest

from helmholtz import jpeg

from helmholtz._codec import native as N

Image = pytest.importorskip("PIL.Image")

SETS = N.supported_kernels()
ODD_SIZES = [(1, 1), (2, 3), (7, 13), (13, 7), (9, 17), (33, 65), (40, 48), (17, 130)]
SUBSAMPLINGS = ["4:2:0", "4:2:2", "4:4:4"]


@pytest.fixture(params=SETS)
def kernels(request):
    """Run the test with one kernel set active, then restore the default."""
    before = N.kernel_name()
    N.use_kernels(request.param)
    yield request.param
    N.use_kernels(before)


def pillow_file(img: np.ndarray, q: int, subsampling: str, optimize: bool = False) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img).save(buf, "JPEG", quality=q, subsampling=subsampling, optimize=optimize)
    return buf.getvalue()


def pillow_roundtrip(img: np.ndarray, q: int, subsampling: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(pillow_file(img, q, subsampling)))).reshape(img.shape)


def images(rng, h, w, c, n=2):
    """Noise and a smooth gradient with a little noise."""
    noise = rng.integers(0, 256, (h, w, c), dtype=np.uint8)
    yy, xx = np.mgrid[:h, :w]
    smooth = 128 + 90 * np.sin(yy[..., None] / 5.0 + np.arange(c)) * np.cos(xx[..., None] / 7.0)
    smooth = np.clip(smooth + rng.normal(0, 8, (h, w, c)), 0, 255).astype(np.uint8)
    return np.stack([noise, smooth][:n])


# --------------------------------------------------------------------------
# Selection
# --------------------------------------------------------------------------


def test_the_portable_set_is_always_there_and_the_best_is_the_default():
    assert SETS[0] == "portable"
    if os.environ.get("HELMHOLTZ_KERNELS"):
        pytest.skip("HELMHOLTZ_KERNELS chooses the set in this run")
    assert N.kernel_name() == SETS[-1]


def test_use_kernels_switches_and_refuses_unknown_names(kernels):
    assert N.kernel_name() == kernels
    with pytest.raises(ValueError, match="unknown kernel set 'sse9'.*portable"):
        N.use_kernels("sse9")
    assert N.kernel_name() == kernels


def _run_with_env(value: str, code: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, HELMHOLTZ_KERNELS=value)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("name", SETS)
def test_environment_variable_forces_a_set(name):
    code = (
        "import numpy as np\n"
        "from helmholtz import jpeg\n"
        "from helmholtz._codec import native as N\n"
        "x = np.random.default_rng(0).integers(0, 256, (2, 19, 23, 3), dtype=np.uint8)\n"
        "assert np.array_equal(jpeg.roundtrip(x, 40, backend='cpu'), jpeg.roundtrip(x, 40, backend='numpy'))\n"
        "print(N.kernel_name())\n"
    )
    res = _run_with_env(name, code)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == name


def test_environment_variable_with_an_unknown_set_is_a_clear_error():
    code = (
        "import numpy as np\n"
        "from helmholtz import jpeg\n"
        "try:\n    jpeg.roundtrip(np.zeros((8, 8, 3), np.uint8), 50, backend='cpu')\n"
        "except RuntimeError as e:\n    print(e)\n"
    )
    res = _run_with_env("avx9000", code)
    assert res.returncode == 0, res.stderr
    assert "HELMHOLTZ_KERNELS='avx9000' is not a kernel set" in res.stdout
    assert "portable" in res.stdout


def test_environment_variable_with_a_set_the_cpu_lacks_is_a_clear_error():
    missing = [k for k in ("avx2", "avx512") if k not in SETS]
    if not missing:
        pytest.skip("this CPU runs every kernel set")
    code = (
        "import numpy as np\n"
        "from helmholtz import jpeg\n"
        "try:\n    jpeg.roundtrip(np.zeros((8, 8, 3), np.uint8), 50, backend='cpu')\n"
        "except RuntimeError as e:\n    print(e)\n"
    )
    res = _run_with_env(missing[0], code)
    assert res.returncode == 0, res.stderr
    assert f"HELMHOLTZ_KERNELS={missing[0]} asks for a kernel set this CPU cannot run" in res.stdout


# --------------------------------------------------------------------------
# The exactness grid, per kernel set
# --------------------------------------------------------------------------


@pytest.mark.parametrize("ss", SUBSAMPLINGS + ["gray"])
def test_roundtrip_equals_pillow_at_every_quality(kernels, ss):
    rng = np.random.default_rng(len(ss) + len(kernels))
    subsampling = "4:2:0" if ss == "gray" else ss
    c = 1 if ss == "gray" else 3
    for h, w in ODD_SIZES:
        x = images(rng, h, w, c)
        for q in range(1, 101, 1 if (h, w) in ((7, 13), (33, 65)) else 9):
            expected = np.stack([pillow_roundtrip(im, q, subsampling) for im in x])
            np.testing.assert_array_equal(jpeg.roundtrip(x, q, subsampling=subsampling, backend="cpu"), expected,
                                          err_msg=f"{kernels} q={q} {ss} {h}x{w}")


@pytest.mark.parametrize("ss", SUBSAMPLINGS + ["gray"])
def test_coefficients_bits_and_files_equal_the_reference_and_pillow(kernels, ss):
    rng = np.random.default_rng(3)
    subsampling = "4:2:0" if ss == "gray" else ss
    c = 1 if ss == "gray" else 3
    for h, w in ODD_SIZES:
        x = images(rng, h, w, c)
        q = rng.integers(1, 101, size=len(x))
        fast = jpeg.coefficients(x, q, subsampling=subsampling, backend="cpu")
        spec = jpeg.coefficients(x, q, subsampling=subsampling, backend="numpy")
        for a, b in zip(fast.components, spec.components):
            np.testing.assert_array_equal(a, b, err_msg=f"{kernels} {ss} {h}x{w}")
        # bits straight from the images (quantised and counted in one pass) equal
        # the entropy core's count of the stored coefficients, and Pillow's scan
        for optimize in (False, True):
            direct = jpeg.bits(x, q, subsampling=subsampling, optimize=optimize, backend="cpu")
            np.testing.assert_array_equal(direct, jpeg.bits(fast, optimize=optimize, backend="cpu"))
            files = jpeg.encode(x, q, subsampling=subsampling, optimize=optimize, backend="cpu")
            for i, im in enumerate(x):
                assert files[i] == pillow_file(im, int(q[i]), subsampling, optimize), f"{kernels} {ss} {h}x{w}"
        np.testing.assert_array_equal(jpeg.reconstruct(fast, backend="cpu"), jpeg.roundtrip(x, q, subsampling=subsampling, backend="numpy"))


def test_many_qualities_from_one_transform(kernels):
    rng = np.random.default_rng(5)
    x = images(rng, 21, 30, 3, n=2)
    qualities = [1, 5, 10, 15, 20, 25, 50, 75, 100]
    for ss in SUBSAMPLINGS:
        many = jpeg.roundtrip_many(x, qualities, subsampling=ss, backend="cpu")
        bits = jpeg.bits_many(x, qualities, subsampling=ss, backend="cpu")
        coefs = jpeg.coefficients_many(x, qualities, subsampling=ss, backend="cpu")
        for k, q in enumerate(qualities):
            np.testing.assert_array_equal(many[k], jpeg.roundtrip(x, q, subsampling=ss, backend="numpy"))
            np.testing.assert_array_equal(bits[k], jpeg.bits(coefs[k], backend="numpy"))


@pytest.mark.parametrize("ss", SUBSAMPLINGS + ["gray"])
def test_one_large_image_shared_by_threads(kernels, ss):
    rng = np.random.default_rng(7)
    subsampling = "4:2:0" if ss == "gray" else ss
    x = images(rng, 257, 301, 1 if ss == "gray" else 3, n=1)
    for q in (9, 91):
        expected = pillow_roundtrip(x[0], q, subsampling)
        for threads in (1, 3):
            np.testing.assert_array_equal(jpeg.roundtrip(x, q, subsampling=subsampling, num_threads=threads)[0], expected)
        one = jpeg.bits_many(x, [q, 50], subsampling=subsampling, optimize=True, num_threads=1)
        shared = jpeg.bits_many(x, [q, 50], subsampling=subsampling, optimize=True, num_threads=3)
        np.testing.assert_array_equal(one, shared)
        np.testing.assert_array_equal(shared[0], jpeg.bits(jpeg.coefficients(x, q, subsampling=subsampling), optimize=True))


def test_ragged_lists(kernels):
    rng = np.random.default_rng(11)
    items = [images(rng, h, w, c, n=1)[0] for (h, w), c in zip(ODD_SIZES, [3, 1, 3, 3, 1, 3, 3, 1])]
    q = list(range(5, 5 + 11 * len(items), 11))
    for ss in SUBSAMPLINGS:
        out = jpeg.roundtrip(items, q, subsampling=ss)
        for im, o, qi in zip(items, out, q):
            np.testing.assert_array_equal(o, pillow_roundtrip(im, qi, ss), err_msg=f"{kernels} {ss} {im.shape}")
        counts = jpeg.bits(items, q, subsampling=ss)
        assert counts.tolist() == [int(jpeg.bits(im, qi, subsampling=ss, backend="numpy")[0]) for im, qi in zip(items, q)]


def test_extreme_images(kernels):
    """Checkerboards and flat extremes give the largest coefficients and wrap the IDCT range."""
    yy, xx = np.mgrid[:48, :48]
    board = np.stack([(((yy + xx) % 2) * 255).astype(np.uint8)] * 3, -1)
    x = np.stack([board, 255 - board, np.zeros_like(board), np.full_like(board, 255)])
    for q in (1, 50, 100):
        for ss in SUBSAMPLINGS:
            np.testing.assert_array_equal(jpeg.roundtrip(x, q, subsampling=ss), np.stack([pillow_roundtrip(im, q, ss) for im in x]))
            np.testing.assert_array_equal(jpeg.bits(x, q, subsampling=ss), jpeg.bits(jpeg.coefficients(x, q, subsampling=ss), backend="numpy"))


def test_stage_timer_reports_every_stage(kernels):
    x = images(np.random.default_rng(2), 64, 64, 3)
    ticks = N.stage_ticks(x, 20, "4:2:0", 2)
    assert tuple(ticks) == N.STAGES
    assert all(isinstance(v, int) and v >= 0 for v in ticks.values())
    assert ticks["dct"] > 0 and ticks["colour"] > 0 and ticks["colour back"] > 0
