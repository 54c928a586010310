#!/usr/bin/env bash
# Compile every csrc/*.cu with nvcc for sm_80 and sm_90 (warnings are errors),
# then, when libnvrtc can be found, with NVRTC as CuPy does at run time
# (tools/nvrtc_check.py). No GPU needed.
#
# Budgets (tools/ptxas_budget.py), enforced for the architectures in
# BUDGET_ARCHS (default sm_90) with both compilers: every kernel at most 64
# registers per thread (HZ_MAX_REGISTERS) and no local memory (stack frame and
# spills 0). The other architectures are reported only.
#
# Exits non-zero on any failure; exits 0 with a message when nvcc is absent.
#
#   tools/check_cuda_compile.sh            # sm_80 sm_90
#   ARCHS="80 90 100" tools/check_cuda_compile.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NVCC="${NVCC:-$(command -v nvcc || true)}"
ARCHS="${ARCHS:-80 90}"
BUDGET_ARCHS="${BUDGET_ARCHS:-90}"
PYTHON="${PYTHON:-python3}"

if [[ -z "$NVCC" ]]; then
    echo "check_cuda_compile: nvcc not found; skipped (install the CUDA toolkit or set NVCC=...)"
    exit 0
fi
echo "check_cuda_compile: $("$NVCC" --version | tail -n 2 | head -n 1)"

status=0
shopt -s nullglob
for cu in "$ROOT"/csrc/*.cu; do
    for arch in $ARCHS; do
        cmd=("$NVCC" -arch="sm_$arch" -std=c++14 -I"$ROOT/csrc" -Werror all-warnings -Xcompiler -Wall
             --resource-usage -c "$cu" -o /dev/null)
        echo "+ ${cmd[*]}"
        if out="$("${cmd[@]}" 2>&1)"; then
            echo "  ok: $(basename "$cu") sm_$arch"
            enforce=""
            [[ " $BUDGET_ARCHS " == *" $arch "* ]] && enforce="--enforce"
            "$PYTHON" "$ROOT/tools/ptxas_budget.py" "nvcc sm_$arch" $enforce <<<"$out" || status=1
        else
            echo "$out"
            echo "  FAILED: $(basename "$cu") sm_$arch"
            status=1
        fi
    done
done

if "$PYTHON" -c "import sys" 2>/dev/null; then
    nvrtc_archs=()
    for arch in $ARCHS; do nvrtc_archs+=("sm_$arch" "compute_$arch"); done
    BUDGET_ARCHS="$BUDGET_ARCHS" "$PYTHON" "$ROOT/tools/nvrtc_check.py" "${nvrtc_archs[@]}" || status=1
fi
exit $status
