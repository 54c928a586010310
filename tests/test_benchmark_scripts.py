"""The side-by-side benchmark scripts still run against the current API.

Only that they run to completion on a tiny workload is checked here; their
figures are measured by hand (``make bench``), never asserted in tests.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = os.environ.get("HELMHOLTZ_DATA")
needs_cifar = pytest.mark.skipif(
    not DATA or not (Path(DATA) / "cifar10.npz").exists(), reason="needs HELMHOLTZ_DATA with cifar10.npz"
)


def run_script(name: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / name), *args],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )


@pytest.mark.slow
@needs_cifar
def test_bench_entropy_runs_on_a_small_workload():
    res = run_script("bench_entropy.py", "--data-dir", DATA, "--limit", "300", "--peer-limit", "50",
                     "--encode-batch", "100", "--repeat", "1")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "helmholtz bits_many" in res.stdout


@pytest.mark.slow
@needs_cifar
def test_bench_targets_runs_the_cifar_workloads():
    res = run_script("bench_targets.py", "--data-dir", DATA, "--only", "cifar", "bits_many", "--repeats", "1")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "### The targets, measured in this run" in res.stdout


@pytest.mark.slow
@needs_cifar
def test_bench_stages_writes_its_table(tmp_path):
    out = tmp_path / "STAGES.md"
    res = run_script("bench_stages.py", "--data-dir", DATA, "--repeats", "1", "--write", str(out))
    assert res.returncode == 0, res.stderr[-3000:]
    assert "| round trip (all but count) |" in out.read_text()
