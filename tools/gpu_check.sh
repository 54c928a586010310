#!/usr/bin/env bash
# One-command GPU check of helmholtz's CUDA backend: under 8 minutes on an H100/H200.
#
# Prepare here (no GPU needed; both paths are git-ignored and travel as `carry`):
#   python tools/pack_gpu_data.py        # gpu-data/: 20,000 + 5,000 CIFAR-10 images, lossless (~40 MiB)
#   bash tools/fetch_gpu_wheels.sh       # .whl/: kornia + kornia-rs for the peer benchmark (~7 MiB)
#
# Then, with the device tool (one call; the whole tree that travels is ~48 MiB of the 64 MiB allowed):
#   run(command="bash tools/gpu_check.sh", carry=["gpu-data", ".whl"], timeout_s=540)
#
# On any machine with a GPU:  bash tools/gpu_check.sh   (results in $OUT, else ./gpu-check-out)
#
# Writes $OUT/gpu_check.json (per section: ok / failed / skipped with the reason, seconds, figures),
# $OUT/gpu_check.log (every section's output) and $OUT/bench.json. Each section runs in its own
# process under one overall deadline (GPU_CHECK_BUDGET_S, default 470 s), so one failing section
# does not stop the others. It installs nothing from a network. Extra arguments go to
# tools/gpu_check.py, e.g. --only tests,stream or --skip sweep. See tools/README-gpu-check.md.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT="${OUT:-$PWD/gpu-check-out}"
export OUT
mkdir -p "$OUT"
PY="${PYTHON:-python3}"
exec "$PY" tools/gpu_check.py --out "$OUT" "$@"
