"""pytest-benchmark suite of the speed targets (the side-by-side table is bench_targets.py).

Run: ``make bench`` (``pytest benchmarks --benchmark-only --benchmark-autosave
--benchmark-group-by=group``; needs ``pip install 'helmholtz-ml[bench]'``;
workloads without their data are skipped). Each run is saved under
``.benchmarks/``; ``pytest benchmarks --benchmark-only --benchmark-compare``
compares the tree with the last saved run, ``pytest-benchmark compare 0001
0002`` two saved runs. Each group holds helmholtz and every peer on the same
work, so the report shows them side by side. ``make test`` never runs these:
speed goals are not timed assertions in the tests.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _workloads as W  # noqa: E402

from helmholtz import jpeg  # noqa: E402

pytest.importorskip("pytest_benchmark")

ROUNDS = 5


@pytest.fixture(scope="module")
def cifar():
    x = W.cifar_test()
    if x is None:
        pytest.skip("CIFAR-10 not found: set HELMHOLTZ_DATA")
    return x


@pytest.fixture(scope="module")
def photos():
    p = W.photographs(32)
    if p is None:
        pytest.skip("scikit-image not installed")
    return p


@pytest.fixture(scope="module")
def crops():
    c = W.ragged_crops(1000)
    if c is None:
        pytest.skip("scikit-image not installed")
    return c


@pytest.fixture(scope="module")
def pool():
    with ThreadPoolExecutor(W.cores()) as ex:
        yield ex


def _peer(benchmark, fn, images, how, pool):
    fn(images[0])
    if how == "loop":
        benchmark.pedantic(W.loop, args=(fn, images), rounds=ROUNDS, iterations=1, warmup_rounds=1)
    else:
        benchmark.pedantic(W.pooled, args=(fn, images, pool, W.cores()), rounds=ROUNDS, iterations=1, warmup_rounds=1)


PEERS = ["Pillow", "OpenCV", "simplejpeg"]
HOWS = ["loop", "pool"]


def _peer_or_skip(table: dict, name: str):
    if name not in table:
        pytest.skip(f"{name} not installed")
    return table[name]


@pytest.mark.benchmark(group="cifar round trip")
def test_cifar_roundtrip_helmholtz(benchmark, cifar):
    benchmark.pedantic(jpeg.roundtrip, args=(cifar, W.QUALITY), rounds=ROUNDS, iterations=1, warmup_rounds=1)


@pytest.mark.benchmark(group="cifar round trip")
@pytest.mark.parametrize("how", HOWS)
@pytest.mark.parametrize("peer", PEERS)
def test_cifar_roundtrip_peer(benchmark, cifar, pool, peer, how):
    _peer(benchmark, _peer_or_skip(W.roundtrip_peers(), peer), cifar, how, pool)


@pytest.mark.benchmark(group="photo round trip")
def test_photo_roundtrip_helmholtz(benchmark, photos):
    benchmark.pedantic(jpeg.roundtrip, args=(photos, W.QUALITY), rounds=ROUNDS, iterations=1, warmup_rounds=1)


@pytest.mark.benchmark(group="photo round trip")
@pytest.mark.parametrize("how", HOWS)
@pytest.mark.parametrize("peer", PEERS)
def test_photo_roundtrip_peer(benchmark, photos, pool, peer, how):
    _peer(benchmark, _peer_or_skip(W.roundtrip_peers(), peer), photos, how, pool)


@pytest.mark.benchmark(group="cifar sizes at nine qualities")
def test_cifar_bits_many_helmholtz(benchmark, cifar):
    benchmark.pedantic(jpeg.bits_many, args=(cifar, W.PAPER_QUALITIES), rounds=ROUNDS, iterations=1, warmup_rounds=1)


@pytest.mark.benchmark(group="cifar sizes at nine qualities")
@pytest.mark.parametrize("how", HOWS)
@pytest.mark.parametrize("peer", ["OpenCV", "simplejpeg"])  # Pillow takes ~10 s a round here
def test_cifar_encode_sizes_peer(benchmark, cifar, pool, peer, how):
    _peer(benchmark, _peer_or_skip(W.size_peers(W.PAPER_QUALITIES), peer), cifar, how, pool)


@pytest.mark.benchmark(group="ragged round trip")
def test_ragged_roundtrip_helmholtz(benchmark, crops):
    benchmark.pedantic(jpeg.roundtrip, args=(crops, W.QUALITY), rounds=ROUNDS, iterations=1, warmup_rounds=1)


@pytest.mark.benchmark(group="ragged round trip")
@pytest.mark.parametrize("how", HOWS)
@pytest.mark.parametrize("peer", PEERS)
def test_ragged_roundtrip_peer(benchmark, crops, pool, peer, how):
    _peer(benchmark, _peer_or_skip(W.roundtrip_peers(), peer), crops, how, pool)


@pytest.mark.benchmark(group="cifar coefficients vs bits")
@pytest.mark.parametrize("fn", ["coefficients", "bits"])
def test_cifar_coefficients_and_bits(benchmark, cifar, fn):
    benchmark.pedantic(getattr(jpeg, fn), args=(cifar, W.QUALITY), rounds=ROUNDS, iterations=1, warmup_rounds=1)
