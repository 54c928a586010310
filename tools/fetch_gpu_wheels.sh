#!/usr/bin/env bash
# Download the peers the device image lacks (kornia and its Rust core) as wheels into .whl/
# (git-ignored), for tools/gpu_check.sh to install there without a network. Run here, where
# PyPI is reachable; the device machine runs Python 3.12 on x86-64.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mkdir -p .whl
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .whl kornia==0.9.0 kornia-rs==0.2.0
ls -l .whl
