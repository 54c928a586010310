"""The register and local-memory budgets that `make cuda-check` enforces (tools/ptxas_budget.py)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import ptxas_budget  # noqa: E402

REPORT = """ptxas info    : Compiling entry function 'fits' for 'sm_90'
ptxas info    : Function properties for fits
    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 64 registers, used 1 barriers
ptxas info    : Function properties for spills
ptxas         .     16 bytes stack frame, 8 bytes spill stores, 8 bytes spill loads
ptxas info    : Used 64 registers, used 0 barriers
ptxas info    : Function properties for fat
    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 65 registers, used 0 barriers
"""


def test_budget_parses_ptxas_and_flags_registers_and_local_memory():
    usage = ptxas_budget.parse(REPORT)
    assert usage["fits"] == {"registers": 64, "stack": 0, "spill_stores": 0, "spill_loads": 0}
    assert usage["spills"]["stack"] == 16 and usage["fat"]["registers"] == 65
    bad = ptxas_budget.violations(usage)
    assert len(bad) == 2 and bad[0].startswith("fat: 65 registers") and bad[1].startswith("spills: local memory")
    assert ptxas_budget.check("t", REPORT, enforce=True) == 1
    assert ptxas_budget.check("t", REPORT, enforce=False) == 0
    assert ptxas_budget.check("t", "no report", enforce=True) == 1


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="needs nvcc")
def test_a_kernel_with_local_memory_fails_the_check(tmp_path):
    """A dynamically indexed local array lands in local memory: the checker exits 1 on it."""
    cu = tmp_path / "bad.cu"
    cu.write_text('extern "C" __global__ void bad(int *o, int k) { int a[64], s = 0;\n'
                  " for (int i = 0; i < 64; i++) a[i] = o[i];\n a[k & 63] += 1;\n"
                  " for (int i = 0; i < 64; i++) s += a[(i * k) & 63];\n o[0] = s; }\n")
    out = subprocess.run(["nvcc", "-arch=sm_90", "--resource-usage", "-c", str(cu), "-o", "/dev/null"],
                         capture_output=True, text=True, check=True)
    res = subprocess.run([sys.executable, str(ROOT / "tools" / "ptxas_budget.py"), "nvcc sm_90", "--enforce"],
                         input=out.stdout + out.stderr, capture_output=True, text=True)
    assert res.returncode == 1 and "BUDGET EXCEEDED" in res.stdout and "bad: local memory" in res.stdout
