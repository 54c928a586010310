# helmholtz: `make demo` and `make test` do all their own set-up.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
# The staged data sets live beside the checkout; users point HELMHOLTZ_DATA elsewhere.
HELMHOLTZ_DATA ?= $(if $(wildcard ../shared/data/cifar10.npz),$(abspath ../shared/data),)
export HELMHOLTZ_DATA
# The CPU build of torch 2.13.0 is pinned here only; the package itself asks for torch>=2.1.
TORCH_PIN ?= torch==2.13.0
CSRC := $(wildcard csrc/*.c csrc/*.h) $(wildcard helmholtz/_codec/*.pyx helmholtz/_codec/*.pxi) setup.py

.PHONY: install build demo test test-fast test-kernels bench bench-codec bench-stages docs sanitize cuda-check gpu-check-prep clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip
	$(PIP) install "setuptools>=77" wheel "Cython>=3" "numpy>=2" $(TORCH_PIN)
	$(PIP) uninstall -y helmholtz 2>/dev/null || true  # the distribution was renamed helmholtz-ml
	$(PIP) install --no-build-isolation -e '.[test,ray]'
	touch $@

$(VENV)/.built: $(VENV)/.installed $(CSRC)
	$(PY) setup.py -q build_ext --inplace
	touch $@

install: $(VENV)/.built

build: $(VENV)/.built

# The main job as a new user sees it: a small real CIFAR-10 Helmholtz sweep, then its report. Its scale
# checks the pipeline end to end; it is too small to show the Helmholtz effect, and it says so.
demo: install
	@test -n "$(HELMHOLTZ_DATA)" || { echo "set HELMHOLTZ_DATA to a folder holding cifar10.npz"; exit 2; }
	@echo "make demo: the whole pipeline at plumbing scale: model A on 2,000 CIFAR-10 training images for 3 epochs,"
	@echo "tested on 500 images (about 10 minutes on 2 CPU cores). A demonstration, not a result: see the note at the end."
	$(PY) -m helmholtz sweep --dataset cifar10 --models A --qualities 5,20,100 --epochs 3 \
	    --train-subset 2000 --test-subset 500 --recipe fast \
	    --eval-qualities 5,20,100,none --attacks fgsm,pgd --eps 2 --attack-subset 64 --defense-qualities 20 \
	    --out out/demo
	$(PY) -m helmholtz report out/demo
	@echo
	@echo "What this demo can and can't show"
	@echo "- It can show that sweep, evaluations, attacks, store and report work end to end, and its bits per pixel are exact."
	@echo "- It can't show which quality trains best: 2,000 images and 3 epochs leave model A barely above chance (10%),"
	@echo "  and on 500 test images (64 for the attacks) a 95% interval spans about +-0.035 (+-0.08), more than the"
	@echo "  differences between qualities; 'What the data can tell apart' above says which levels its data separate."
	@echo "- The paper's experiment is --recipe paper --epochs 200 on all 50,000 training and 10,000 test images, with"
	@echo "  several --seeds, on a GPU (--device cuda) or a Ray cluster (--executor ray)."

test: install
	$(VENV)/bin/lint-imports --no-cache
	$(PY) -m pytest -q
	$(MAKE) docs

test-fast: install
	$(PY) -m pytest -q -m "not slow"

# The distribution as a user gets it (tests/test_packaging.py, also part of `make test`): python -m build's
# sdist and wheel, the wheel installed with NumPy only into a fresh venv: import, a round trip equal to
# Pillow, `helmholtz --help`, the CUDA sources as package data, and every command without its extra.
.PHONY: wheel-check
wheel-check: install
	$(PY) -m pytest -q -p no:cacheprovider tests/test_packaging.py

# `make test` checks every kernel set this CPU runs (tests/test_kernel_sets.py switches
# between them); this also runs the whole codec suite once under each HELMHOLTZ_KERNELS.
KERNEL_SETS = $(shell $(PY) -c "from helmholtz._codec import native as N; print(' '.join(N.supported_kernels()))" 2>/dev/null)
test-kernels: install
	@for k in $(KERNEL_SETS); do echo "== HELMHOLTZ_KERNELS=$$k"; \
	    HELMHOLTZ_KERNELS=$$k $(PY) -m pytest -q -p no:cacheprovider tests/test_jpeg.py tests/test_entropy.py tests/test_ragged.py || exit 1; done

# The pytest-benchmark suites (benchmarks/test_*.py), each run saved under .benchmarks/ for
# `pytest benchmarks --benchmark-only --benchmark-compare` later; then the side-by-side target table.
bench: install
	$(PIP) install -e '.[bench]'
	$(PY) -m pytest benchmarks --benchmark-only --benchmark-autosave --benchmark-group-by=group -q
	$(PY) benchmarks/bench_targets.py

# The side-by-side round-trip table alone (Pillow, OpenCV, simplejpeg).
bench-codec: install
	$(PIP) install -e '.[bench]'
	$(PY) benchmarks/bench_codec.py

# The documentation site, warnings as errors, into docs/_build/html (the docs extra's packages only).
$(VENV)/.docs: $(VENV)/.installed pyproject.toml
	$(PIP) install $$($(PY) -c "import sys; tomllib = __import__('tomllib' if sys.version_info >= (3, 11) else 'pip._vendor.tomli', fromlist=['loads']); print(' '.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies']['docs']))")
	touch $@

docs: $(VENV)/.built $(VENV)/.docs
	rm -rf docs/api/generated
	$(VENV)/bin/sphinx-build -W --keep-going -q -b html docs docs/_build/html

# Cycles per pixel of each pipeline stage per kernel set, written to benchmarks/STAGES.md.
bench-stages: install
	$(PY) benchmarks/bench_stages.py --write benchmarks/STAGES.md

# Build the C core with AddressSanitizer + UBSan into build/asan and run the codec tests against it.
sanitize: install
	rm -rf build/asan && mkdir -p build/asan && cp -r helmholtz tests build/asan/ && rm -f build/asan/helmholtz/_codec/*.so
	HELMHOLTZ_SANITIZE=1 $(PY) setup.py -q build_ext --build-lib build/asan --build-temp build/asan-tmp --force
	cd build/asan && LD_PRELOAD="$$(gcc -print-file-name=libasan.so) $$(gcc -print-file-name=libubsan.so)" \
	ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	HELMHOLTZ_EXPECT_SANITIZED=1 $(abspath $(PY)) -m pytest -q -p no:cacheprovider tests/test_jpeg.py \
	    tests/test_kernel_sets.py tests/test_ragged.py -k "not generic_kernels"

# Compile every CUDA source with nvcc for sm_80 and sm_90, and with NVRTC (what CuPy uses at run
# time, without system headers) for compute_80/90, holding every kernel at sm_90 to <= 64 registers
# and no local memory; then the emulation's static checks: the bank pattern of every shared-memory
# access and the necessity of every barrier. No GPU needed.
cuda-check: install
	$(PIP) install "nvidia-cuda-nvrtc>=12"
	PYTHON=$(abspath $(PY)) bash tools/check_cuda_compile.sh
	$(PY) -m pytest -q tests/test_cuda_budget.py tests/test_cuda_emulation.py -k "budget or local_memory or bank or barrier"

# What the GPU window's two commands (tools/gpu_check.sh, tools/gpu_science.sh) carry to a device machine, all
# git-ignored: the peers' wheels (.whl/), the C extension built for the device's Python 3.12 and the CIFAR-10
# subset sized to what is left of the 64 MiB that travels (gpu-data/). See tools/README-gpu-check.md.
gpu-check-prep: install
	$(PY) tools/fetch_gpu_wheels.py
	$(PY) tools/build_prebuilt.py
	$(PY) tools/pack_gpu_data.py

clean:
	rm -rf build $(VENV) *.egg-info helmholtz/_codec/*.so helmholtz/_codec/native.c
