"""The CUDA kernels' own source, run on the CPU with barriers that matter.

tests/cuda_emul.cpp compiles csrc/hz_kernels.cu for the host and runs every
CTA's threads as fibers, phase by phase between barriers, in forward, reverse
or random order (see its header). Here the kernels, driven by the real
helmholtz/_cuda.py over a fake CuPy (tests/_cuda_emul.py), must equal the C
core byte for byte in every order; a kernel with a barrier removed must not;
and the bank pattern of every shared-memory access, computed from the logged
addresses of the kernels' own index math, must show no conflicts on the
paths the issue names. Needs only g++: no GPU, no CuPy.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest

import _cuda_emul as E
from helmholtz import jpeg
from helmholtz._codec import entropy as _entropy
from helmholtz._codec import registry as backends

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not E.HAVE_GXX, reason="needs g++ to build the host emulation")
ORDERS = ["forward", "reverse", "random"]


@pytest.fixture(scope="module")
def emul(tmp_path_factory):
    return E.build(tmp_path_factory.mktemp("hzemul"))


@pytest.fixture
def gpu(emul, monkeypatch):
    """helmholtz._codec.cuda over the emulated device; yields (module, backend)."""
    cuda_mod = E.install(monkeypatch, emul)
    yield cuda_mod, cuda_mod.load_backend()
    emul.config("forward")


def force_path(cuda_mod, path):
    """'small': whole images per CTA; 'global': the per-phase kernels."""
    mod = cuda_mod._module(sys.modules["cupy"], 0)
    mod.small_shared_limit = cuda_mod._SMALL_SHARED_WANTED if path == "small" else 0


def rand(shape, seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, shape, dtype=np.uint8)
    if shape[0] > 1:  # a smooth image too: low qualities keep AC terms, high ones round interestingly
        yy, xx = np.mgrid[: shape[1], : shape[2]]
        x[0] = ((yy * 5 + xx * 3)[:, :, None] + x[0] // 8).astype(np.uint8)
    return x


CPU = backends.get("cpu")
SHAPES = [((5, 32, 32, 3), "4:2:0"), ((3, 7, 13, 3), "4:2:2"), ((2, 33, 65, 1), "4:2:0"), ((4, 1, 1, 3), "4:4:4"),
          ((2, 17, 9, 3), "4:2:0"), ((3, 16, 8, 3), "4:4:4"), ((2, 2, 3, 3), "4:2:0"), ((2, 40, 24, 3), "4:2:2")]


def check_everything(cuda_mod, be, images, subsampling):
    """Round trip (per-image and constant rows), coefficients, reconstruct, bits, frequencies == the C core."""
    n = images.shape[0]
    rng = np.random.default_rng(n)
    per_image = np.stack([rng.integers(1, 101, n), np.full(n, 90), np.full(n, 3)]).astype(np.int32)
    per_image[0, 0] = 100
    got = np.asarray(be.roundtrip(E.fake(images), per_image, subsampling, 1))
    np.testing.assert_array_equal(got, CPU.roundtrip(images, per_image, subsampling, 1))
    np.testing.assert_array_equal(np.asarray(be.roundtrip(E.fake(images), per_image[:1], subsampling, 1)), got[:1])
    constant = np.stack([np.full(n, 50), np.full(n, 1)]).astype(np.int32)
    np.testing.assert_array_equal(np.asarray(be.roundtrip(E.fake(images), constant, subsampling, 1)),
                                  CPU.roundtrip(images, constant, subsampling, 1))
    for rows in (per_image[:1], per_image):
        comps = be.forward(E.fake(images), rows, subsampling, 1)
        want = CPU.forward(images, rows, subsampling, 1)
        for k in range(len(rows)):
            for a, b in zip(comps[k], want[k]):
                np.testing.assert_array_equal(np.asarray(a), b)
    container = jpeg.coefficients(images, per_image[0], subsampling=subsampling, backend="cpu")
    rec = be.reconstruct([E.fake(c) for c in container.components], container.tables, images.shape[1],
                         images.shape[2], subsampling, 1)
    np.testing.assert_array_equal(np.asarray(rec), got[0])
    dev = [E.fake(c) for c in container.components]
    for optimize in (False, True):
        np.testing.assert_array_equal(np.asarray(cuda_mod.bits(dev, subsampling, optimize=optimize)),
                                      _entropy.bits(container, optimize=optimize))
    freq, extra = cuda_mod.frequencies(dev, subsampling)
    wf, we = _entropy.symbol_frequencies(container)
    np.testing.assert_array_equal(np.asarray(freq), wf)
    np.testing.assert_array_equal(np.asarray(extra), we)


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("path", ["small", "global"])
@pytest.mark.parametrize("shape,subsampling", SHAPES, ids=[f"{s[1]}x{s[2]}x{s[3]}-{ss}" for s, ss in SHAPES])
def test_every_kernel_equals_the_c_core_in_every_thread_order(gpu, emul, order, path, shape, subsampling):
    cuda_mod, be = gpu
    force_path(cuda_mod, path)
    emul.config(order, seed=sum(shape))
    E.FAKE_STATE["launches"].clear()
    check_everything(cuda_mod, be, rand(shape, sum(shape)), subsampling)
    launched = set(E.FAKE_STATE["launches"])
    assert ("hz_roundtrip_small" in launched) == (path == "small")
    assert {"hz_bits_std", "hz_bits_optimal", "hz_frequencies", "hz_block_global", "hz_emit_global"} <= launched


def test_many_images_per_cta_with_a_partial_last_cta(gpu, emul):
    cuda_mod, be = gpu
    force_path(cuda_mod, "small")
    images = rand((37, 32, 32, 3), 3)
    q = np.random.default_rng(3).integers(1, 101, (2, 37)).astype(np.int32)
    # 37 images over 2 SMs: 4 CTAs per SM -> ipc 5, the last CTA holds 2
    assert cuda_mod._images_per_cta(cuda_mod._module(sys.modules["cupy"], 0), cuda_mod._Geom(32, 32, 3, "4:2:0"), 37) == 5
    for order in ORDERS:
        emul.config(order)
        np.testing.assert_array_equal(np.asarray(be.roundtrip(E.fake(images), q, "4:2:0", 1)),
                                      CPU.roundtrip(images, q, "4:2:0", 1))


def test_more_quality_rows_than_one_launch_packs(gpu):
    """roundtrip_many over 20 qualities: rows travel 18 per launch as kernel arguments."""
    cuda_mod, be = gpu
    images = rand((3, 32, 32, 3), 5)
    rows = np.repeat(np.arange(5, 101, 5, dtype=np.int32)[:, None], 3, axis=1)
    E.FAKE_STATE["launches"].clear()
    np.testing.assert_array_equal(np.asarray(be.roundtrip(E.fake(images), rows, "4:2:0", 1)),
                                  CPU.roundtrip(images, rows, "4:2:0", 1))
    assert E.FAKE_STATE["launches"].count("hz_roundtrip_small") == 2


@pytest.mark.parametrize("path", ["small", "global"])
def test_float_outputs_equal_uint8_over_255(gpu, path):
    torch = pytest.importorskip("torch")
    cuda_mod, _ = gpu
    force_path(cuda_mod, path)
    images = rand((3, 11, 20, 3), 7)
    q = np.array([10, 50, 95], np.int32)
    u8 = torch.from_numpy(np.ascontiguousarray(CPU.roundtrip(images, q[None], "4:2:0", 1)[0].transpose(0, 3, 1, 2)))
    plain = np.asarray(cuda_mod.roundtrip_float(E.fake(images), q))
    np.testing.assert_array_equal(plain, (u8.float() / 255).numpy())
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    m = torch.tensor(mean).view(1, 3, 1, 1)
    s = torch.tensor(std).view(1, 3, 1, 1)
    norm = np.asarray(cuda_mod.roundtrip_float(E.fake(images), q, mean=mean, std=std))
    np.testing.assert_array_equal(norm, ((u8.float() / 255 - m) / s).numpy())
    bf = np.asarray(cuda_mod.roundtrip_float(E.fake(images), q, dtype="bfloat16", mean=mean, std=std))
    np.testing.assert_array_equal(bf, ((u8.float() / 255 - m) / s).to(torch.bfloat16).view(torch.int16).numpy())
    even = rand((2, 8, 16, 1), 8)  # whole quads: the 128-bit / 64-bit stores
    u8e = CPU.roundtrip(even, np.array([[40, 60]], np.int32), "4:2:0", 1)[0].transpose(0, 3, 1, 2)
    np.testing.assert_array_equal(np.asarray(cuda_mod.roundtrip_float(E.fake(even), [40, 60])),
                                  u8e.astype(np.float32) / np.float32(255))


# ---- barriers ---------------------------------------------------------------------------------

def test_a_missing_barrier_gives_wrong_results(emul):
    """The deliberately broken kernel: a shared-memory reverse without its __syncthreads."""
    x = np.arange(100, 356, dtype=np.int32)
    for order in ORDERS:
        emul.config(order)
        out = np.zeros_like(x)
        emul.launch("hz_emul_reverse", (1,), (256,), (x, out, np.int32(256)), shared_mem=1024)
        np.testing.assert_array_equal(out, x[::-1])
    wrong = 0
    for order in ORDERS:
        emul.config(order, drop=("reverse",))
        out = np.zeros_like(x)
        try:
            emul.launch("hz_emul_reverse", (1,), (256,), (x, out, np.int32(256)), shared_mem=1024)
            wrong += not np.array_equal(out, x[::-1])
        except E.EmulError as exc:  # the reader found a slot nobody had written yet
            assert "uninitialised shared memory" in str(exc)
            wrong += 1
    assert wrong == 3
    emul.config("forward")


def barrier_sites():
    text = "".join((ROOT / "csrc" / f).read_text() for f in ("hz_kernels.cu", "hz_gpu_block.cuh"))
    return sorted(set(re.findall(r'HZ_SYNC(?:WARP)?\("([^"]+)"\)', text)))


# Warp barriers right after a shuffle or ballot: on a GPU __shfl_sync / __ballot_sync do not
# order memory, so these are needed there, but the emulation's shuffles hold every lane (a
# phase boundary), so dropping them cannot show. "opt.scanned": lane 0 rewrites counts the
# others have just scanned (a top-2 shuffle reduction in between); "opt.done": the next
# table's lanes overwrite what others have just read (a shuffle sum in between);
# "bits.hist_counted": lanes read counts others have just incremented (a ballot in between).
NOT_SHOWABLE = {"opt.scanned", "opt.done", "bits.hist_counted"}


def test_barrier_sites_are_the_known_ones():
    assert set(barrier_sites()) == {
        "stage", "convert", "blocks", "tables", "quantised", "lens",
        "tile.rows_written", "tile.cols_written", "tile.reuse_rows", "tile.reuse_cols",
        "bits.hist_zeroed", "bits.hist_counted",
        "opt.ready", "opt.scanned", "opt.merged", "opt.ordered", "opt.done",
    }


@pytest.mark.parametrize("site", [s for s in barrier_sites() if s not in NOT_SHOWABLE])
def test_every_barrier_is_needed(gpu, emul, site):
    """Without any one barrier some kernel's result is wrong (or the emulation reports the race)."""
    cuda_mod, be = gpu
    failures = []
    for path in ("small", "global"):
        force_path(cuda_mod, path)
        for order in ORDERS:
            emul.config(order, seed=7, drop=(site,))
            for shape, ss in (((9, 32, 32, 3), "4:2:0"), ((2, 9, 17, 1), "4:2:0")):
                try:
                    check_everything(cuda_mod, be, rand(shape, 11), ss)
                except (AssertionError, E.EmulError) as exc:
                    failures.append(f"{path}/{order}/{shape}: {type(exc).__name__}")
    emul.config("forward")
    assert failures, f"dropping barrier '{site}' changed nothing: it is not needed (or not exercised)"


def test_barrier_divergence_is_reported_not_hung(emul):
    """Threads that exit while the others wait at __syncthreads are an error, not a hang."""
    out = np.zeros(64, np.int32)
    emul.config("forward")
    emul.launch("hz_emul_divergent", (1,), (64,), (out, np.int32(0)))
    assert (out == 1).all()
    with pytest.raises(E.EmulError, match="barrier divergence.*'divergent', 5 exited"):
        emul.launch("hz_emul_divergent", (1,), (64,), (out, np.int32(5)))


def test_out_of_bounds_and_uninitialised_shared_reads_are_reported(emul):
    x = np.arange(64, dtype=np.int32)
    out = np.zeros_like(x)
    emul.config("forward")
    with pytest.raises(E.EmulError, match="uninitialised shared memory at 'reverse.load'"):
        emul.launch("hz_emul_reverse", (1,), (32,), (x, out, np.int32(64)), shared_mem=64 * 4)  # 32 writers, 64 slots read
    with pytest.raises(E.EmulError, match="outside the 128 bytes of dynamic shared memory"):
        emul.launch("hz_emul_reverse", (1,), (64,), (x, out, np.int32(64)), shared_mem=128)


# ---- bank conflicts -----------------------------------------------------------------------------

# The accesses of the block pipeline, which the issue requires free of conflicts: the rows of the
# planes, the padded transpose tile, the int16 DCTs between qualities, the divisor tables.
DCT_SITES = {"planes.load_row", "planes.store_row", "tile.write_row", "tile.read_col", "tile.write_col",
             "tile.read_row", "fd.store", "fd.load", "tables.load"}


def bank_report(emul, cuda_mod, be, images, subsampling, rows):
    emul.config("forward", log=True)
    be.roundtrip(E.fake(images), rows, subsampling, 1)
    be.forward(E.fake(images), rows, subsampling, 1)
    report = emul.bank_report()
    emul.config("forward")
    return report


def format_report(report) -> str:
    lines = [f"{'site':<22}{'accesses':>9}{'conflicted':>11}{'ways':>6}{'wavefronts/ideal':>18}"]
    for site, r in sorted(report.items()):
        lines.append(f"{site:<22}{r['instances']:>9}{r['conflicted']:>11}{r['worst_ways']:>6}"
                     f"{r['wavefronts']:>10}/{r['ideal']:<7}")
    return "\n".join(lines)


@pytest.mark.parametrize("rows", [1, 3], ids=["one-quality", "three-qualities"])
def test_cifar_shared_memory_accesses_have_no_bank_conflicts(gpu, emul, rows):
    """CIFAR 4:2:0, the target: every shared-memory access of the small kernel is conflict-free."""
    cuda_mod, be = gpu
    force_path(cuda_mod, "small")
    images = rand((16, 32, 32, 3), 1)
    q = np.repeat(np.array([[75], [30], [95]][:rows], np.int32), 16, axis=1)
    report = bank_report(emul, cuda_mod, be, images, "4:2:0", q)
    print(format_report(report))
    assert DCT_SITES - {"fd.store", "fd.load"} <= set(report) if rows == 1 else DCT_SITES <= set(report)
    conflicted = {s: r for s, r in report.items() if r["conflicted"]}
    assert not conflicted, format_report(conflicted)


@pytest.mark.parametrize("shape,subsampling", [((4, 7, 13, 3), "4:2:2"), ((3, 33, 65, 1), "4:2:0"),
                                               ((3, 24, 40, 3), "4:4:4"), ((2, 150, 200, 3), "4:2:0")])
def test_block_pipeline_has_no_bank_conflicts_at_any_size(gpu, emul, shape, subsampling):
    """The DCT's shared accesses stay conflict-free for odd sizes and in the per-phase kernels."""
    cuda_mod, be = gpu
    images = rand(shape, 2)
    q = np.stack([np.arange(shape[0]) * 9 + 5, np.full(shape[0], 60)]).astype(np.int32)
    report = bank_report(emul, cuda_mod, be, images, subsampling, q)
    print(format_report(report))
    bad = {s: r for s, r in report.items() if s in DCT_SITES and r["conflicted"]}
    assert not bad, format_report(bad)
    assert {"tile.write_row", "tile.read_col", "tile.write_col", "tile.read_row"} <= set(report)


def test_bank_model_counts_conflicts(emul):
    """The analysis itself: a stride-32-word access is a 32-way conflict, a broadcast is none."""
    # hz_emul_reverse with n = 1 makes every thread read slot 0: a broadcast
    x = np.arange(256, dtype=np.int32)
    out = np.zeros_like(x)
    emul.config("forward", log=True)
    emul.launch("hz_emul_reverse", (1,), (256,), (x, out, np.int32(256)), shared_mem=1024)
    report = emul.bank_report()
    assert report["reverse.store"]["conflicted"] == 0 and report["reverse.load"]["conflicted"] == 0
    assert report["reverse.store"]["instances"] == 8  # 8 warps, one store each
    emul.config("forward")


# ---- optimal tables ----------------------------------------------------------------------------

def huffman_max_length(freq) -> int:
    """The longest code of an unlimited Huffman code for these counts (libjpeg adds a pseudo-symbol)."""
    import heapq

    f = [int(v) for v in freq if v] + [1]
    heap = [(v, i, 0) for i, v in enumerate(f)]
    heapq.heapify(heap)
    depth = {i: 0 for i in range(len(f))}
    members = {i: [i] for i in range(len(f))}
    while len(heap) > 1:
        a, ia, _ = heapq.heappop(heap)
        b, ib, _ = heapq.heappop(heap)
        for j in members[ia] + members[ib]:
            depth[j] += 1
        members[ia] = members[ia] + members.pop(ib)
        heapq.heappush(heap, (a + b, ia, 0))
    return max(depth.values())


def fibonacci_blocks() -> np.ndarray:
    """One grayscale image whose AC symbols (run, size) occur 1, 2, 3, 5, 8, ... times: with
    libjpeg's pseudo-symbol (count 1) an optimal Huffman code for such counts is a chain as deep
    as there are symbols, so libjpeg must limit it to 16 bits."""
    from helmholtz._codec.reference import ZIGZAG

    counts = [1, 2]
    while len(counts) < 20:
        counts.append(counts[-1] + counts[-2])
    symbols = [(run, size) for run in range(3) for size in range(1, 11)][: len(counts)]
    total = sum(counts)
    side = int(np.ceil(np.sqrt(total)))
    blocks = np.zeros((1, side, side, 64), np.int16)
    flat = blocks.reshape(-1, 64)
    at = 0
    for (run, size), count in zip(symbols, counts):
        flat[at:at + count, ZIGZAG[run + 1]] = (1 << (size - 1)) * np.where(np.arange(count) % 2, -1, 1)
        at += count
    return blocks.reshape(1, side, side, 8, 8)


def test_device_optimal_tables_equal_the_c_core_on_skewed_and_tied_counts(gpu, emul):
    """Many symbols, ties, and codes longer than 16 bits before libjpeg's limiting."""
    cuda_mod, _ = gpu
    rng = np.random.default_rng(5)
    n, bh, bw = 3, 16, 16
    blocks = np.zeros((n, bh, bw, 8, 8), np.int16)
    # geometric magnitudes and sparse positions: long, skewed run/size distributions
    mags = np.minimum(rng.geometric(0.35, blocks.shape), 1023)
    keep = rng.random(blocks.shape) < rng.choice([0.03, 0.2, 0.6], (n, 1, 1, 1, 1))
    blocks[:] = np.where(keep, mags * rng.choice([-1, 1], blocks.shape), 0)
    blocks[1, ::2] = 0  # ties: many equal counts
    blocks[2, :, :, 0, 0] = rng.integers(-1000, 1000, (bh, bw))
    deep = fibonacci_blocks()
    for b in (blocks, deep):
        n = b.shape[0]
        container = jpeg.Coefficients((b,), np.ones((n, 2, 8, 8), np.uint16), np.full(n, 50), "4:2:0",
                                      (n, b.shape[1] * 8, b.shape[2] * 8, 1))
        want = _entropy.bits(container, optimize=True)
        for order in ORDERS:
            emul.config(order)
            np.testing.assert_array_equal(np.asarray(cuda_mod.bits([E.fake(b)], "4:2:0", optimize=True)), want)
    freq, _ = _entropy.symbol_frequencies(jpeg.Coefficients((deep,), np.ones((1, 2, 8, 8), np.uint16), np.full(1, 50),
                                                            "4:2:0", (1, deep.shape[1] * 8, deep.shape[2] * 8, 1)))
    assert huffman_max_length(freq[0, 1]) > 16, "the deep case does not exercise the length limit"
    bad = blocks.copy()
    bad[0, 0, 0, 0, 5] = 2047  # outside the baseline range
    for optimize in (False, True):
        got = np.asarray(cuda_mod.bits([E.fake(bad)], "4:2:0", optimize=optimize))
        assert got[0] == -1 and (got[1:] >= 0).all()
