"""The CUDA kernels' own source run on the CPU, compared with the C core.

tests/cuda_emul.cpp compiles csrc/hz_kernels.cu as host C++ (one thread per
CTA, CTAs in turn) and runs its kernels over their grids: the small-image
kernel (whole images staged per CTA) and the per-phase global kernels,
reconstruction, standard-table bits and symbol counts. Needs only g++; no
GPU, no CuPy. It shows the kernels' indexing, edge rules and math are exact;
it cannot show the absence of races or anything GPU-specific.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from helmholtz import jpeg
from helmholtz._codec.container import tables_for
from helmholtz._codec import entropy as _entropy
from helmholtz._codec import reference as ref

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "tests" / "cuda_emul.cpp"
FACTORS = {"4:4:4": (1, 1), "4:2:2": (2, 1), "4:2:0": (2, 2)}

pytestmark = pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++ to build the host emulation")


@pytest.fixture(scope="module")
def emul(tmp_path_factory):
    exe = tmp_path_factory.mktemp("cuda_emul") / "cuda_emul"
    cmd = ["g++", "-O1", "-std=c++14", "-Wall", "-Wextra", "-Werror", f"-I{ROOT / 'csrc'}", str(SOURCE), "-o", str(exe)]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return exe


def run_emul(exe, images, qualities, subsampling, mode, ipc=1, out_kind=0, mean=None, std=None):
    n, h, w, c = images.shape
    nq = qualities.shape[0]
    hs, vs = FACTORS[subsampling] if c == 3 else (1, 1)
    normalize = mean is not None
    header = np.array([n, h, w, c, hs, vs, nq, ipc, mode, out_kind, int(normalize)], np.int32)
    ms = np.zeros(6, np.float32)
    if normalize:
        ms[:3] = np.resize(np.asarray(mean, np.float32), 3)
        ms[3:] = np.resize(np.asarray(std, np.float32), 3)
    tables = tables_for(qualities[0]).astype(np.uint16)
    stdin = header.tobytes() + ms.tobytes() + qualities.astype(np.int32).tobytes() + tables.tobytes() + images.tobytes()
    raw = subprocess.run([str(exe)], input=stdin, capture_output=True, check=True).stdout
    at = 0

    def take(dtype, shape):
        nonlocal at
        count = int(np.prod(shape))
        arr = np.frombuffer(raw, dtype=dtype, count=count, offset=at).reshape(shape)
        at += count * np.dtype(dtype).itemsize
        return arr

    if out_kind == 0:
        pixels = take(np.uint8, (nq, n, h, w, c))
    else:
        pixels = take(np.float32 if out_kind == 1 else np.uint16, (nq, n, c, h, w))
    geoms = ref.component_geometry(h, w, c, subsampling)
    coefs = [take(np.int16, (nq, n, g.blocks_high, g.blocks_wide, 8, 8)) for g in geoms]
    recon = take(np.uint8, (n, h, w, c))
    bits = take(np.int64, (n,))
    freq = take(np.int64, (n, 4, 256))
    extra = take(np.int64, (n,))
    assert at == len(raw)
    return pixels, coefs, recon, bits, freq, extra


SIZES = [(1, 1), (7, 13), (33, 65), (32, 32), (16, 8), (9, 17), (2, 3), (5, 4)]


@pytest.mark.parametrize("mode", [0, 1], ids=["small-kernel", "global-kernels"])
@pytest.mark.parametrize("channels,subsampling", [(3, "4:2:0"), (3, "4:2:2"), (3, "4:4:4"), (1, "4:2:0")])
@pytest.mark.parametrize("size", SIZES, ids=[f"{h}x{w}" for h, w in SIZES])
def test_kernels_match_cpu(emul, mode, subsampling, channels, size):
    rng = np.random.default_rng(hash((mode, subsampling, channels, size)) & 0xFFFF)
    n = 5
    h, w = size
    images = rng.integers(0, 256, (n, h, w, channels), dtype=np.uint8)
    images[0] = np.clip(images[0].astype(int) // 4 + 100, 0, 255)  # smooth-ish image
    qualities = rng.integers(1, 101, (2, n)).astype(np.int32)
    qualities[0, 0], qualities[1, 0] = 100, 1
    pixels, coefs, recon, bits, freq, extra = run_emul(emul, images, qualities, subsampling, mode, ipc=2)

    from helmholtz._codec import registry as backends

    be = backends.get("cpu")
    want = be.roundtrip(images, qualities, subsampling, 1)
    np.testing.assert_array_equal(pixels, want)
    want_coefs = be.forward(images, qualities, subsampling, 1)
    for k in range(2):
        for got_c, want_c in zip(coefs, want_coefs[k]):
            np.testing.assert_array_equal(got_c[k], want_c)
    np.testing.assert_array_equal(recon, want[0])

    container = jpeg.coefficients(images, qualities[0], subsampling=subsampling, backend="cpu")
    np.testing.assert_array_equal(bits, _entropy.bits(container, backend="auto"))
    want_freq, want_extra = _entropy.symbol_frequencies(container, backend="auto")
    np.testing.assert_array_equal(freq, want_freq)
    np.testing.assert_array_equal(extra, want_extra)


@pytest.mark.parametrize("mode", [0, 1], ids=["small-kernel", "global-kernels"])
def test_float_outputs(emul, mode):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    images = rng.integers(0, 256, (3, 11, 19, 3), dtype=np.uint8)
    qualities = np.array([[10, 50, 95]], np.int32)
    u8 = run_emul(emul, images, qualities, "4:2:0", mode)[0]
    nchw = torch.from_numpy(np.ascontiguousarray(u8.transpose(0, 1, 4, 2, 3)))

    plain = run_emul(emul, images, qualities, "4:2:0", mode, out_kind=1)[0]
    np.testing.assert_array_equal(plain, (nchw.float() / 255).numpy())

    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    norm = run_emul(emul, images, qualities, "4:2:0", mode, out_kind=1, mean=mean, std=std)[0]
    m = torch.tensor(mean, dtype=torch.float32).view(1, 1, 3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, 1, 3, 1, 1)
    np.testing.assert_array_equal(norm, ((nchw.float() / 255 - m) / s).numpy())

    bf = run_emul(emul, images, qualities, "4:2:0", mode, out_kind=2, mean=mean, std=std)[0]
    want_bf = ((nchw.float() / 255 - m) / s).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
    np.testing.assert_array_equal(bf, want_bf)


def test_many_images_per_cta(emul):
    """ipc > 1 with a partial last CTA (n not a multiple of ipc)."""
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, (7, 32, 32, 3), dtype=np.uint8)
    qualities = rng.integers(1, 101, (3, 7)).astype(np.int32)
    from helmholtz._codec import registry as backends

    want = backends.get("cpu").roundtrip(images, qualities, "4:2:0", 1)
    for ipc in (1, 3, 4, 8):
        np.testing.assert_array_equal(run_emul(emul, images, qualities, "4:2:0", 0, ipc=ipc)[0], want)
