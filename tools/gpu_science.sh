#!/usr/bin/env bash
# The second command of a GPU window: the paper's quality sweep of model A on the carried CIFAR-10
# subset, in <= 400 s, after tools/gpu_check.sh on the same machine.
#
#   run(command="bash tools/gpu_science.sh", carry=["gpu-data"], timeout_s=420)
#
# Trains model A at the qualities 1, 5, 10, 15, 20, 25, 50, 75, 100 with the fast recipe, all nine
# trials at once on the GPU (helmholtz sweep --trials-per-device 9). A one-epoch probe of the same
# sweep measures the epoch time and the fixed cost first; the epochs that fit the budget left
# (at most 30) are chosen from it and recorded. Writes $OUT/science.json (summary, the chosen
# epochs, the accuracy-against-quality table with bits per pixel, the Helmholtz numbers),
# science.jsonl, science.log, science_report.json (helmholtz report --format json) and three plots:
# seven files. Extra arguments go to tools/gpu_science.py, e.g. --epochs 20 (no probe: finishes a
# sweep cut short), --budget-s 300, --max-epochs 50; --device cpu checks the plumbing without a GPU.
# See tools/README-gpu-check.md.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT="${OUT:-$PWD/gpu-science-out}"
export OUT
mkdir -p "$OUT"
PY="${PYTHON:-python3}"
exec "$PY" tools/gpu_science.py --out "$OUT" "$@"
