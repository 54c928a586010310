#!/usr/bin/env bash
# The first command of a GPU window: helmholtz's CUDA backend checked and measured in <= 300 s.
#
# Prepare where PyPI is reachable (no GPU needed; all three paths are git-ignored):
#   make gpu-check-prep     # .whl/ (peers' wheels), gpu-data/prebuilt/ (the C extension for Python 3.12),
#                           # gpu-data/cifar10-subset.npz (the CIFAR-10 subset that fits the 64 MiB that travel)
#
# Then, with the device tool (the science run, tools/gpu_science.sh, is the second command):
#   run(command="bash tools/gpu_check.sh", carry=["gpu-data", ".whl"], timeout_s=360)
#
# On any machine with a GPU:  bash tools/gpu_check.sh   (results in $OUT, else ./gpu-check-out)
#
# Writes $OUT/gpu_check.json (the summary, rewritten as each section ends), gpu_check.jsonl,
# gpu_check.log and bench.json: four files. Each section runs as its own process group under its
# own limit, all within a 300 s budget (GPU_CHECK_BUDGET_S); a section that fails, hangs or
# crashes is recorded as such and the others still run. Without a GPU it stops after `env` with
# one line (exit 3). Extra arguments go to tools/gpu_check.py, e.g. --only bench,sanitize or
# --skip large (a rerun with little time left), --plan (print the sections and their caps).
# HELMHOLTZ_GPU_CHECK_DRY=1 runs the same machinery with every section mocked (no GPU needed).
# See tools/README-gpu-check.md.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT="${OUT:-$PWD/gpu-check-out}"
export OUT
mkdir -p "$OUT"
PY="${PYTHON:-python3}"
exec "$PY" tools/gpu_check.py --out "$OUT" "$@"
