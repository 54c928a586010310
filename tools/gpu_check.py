"""The GPU check behind tools/gpu_check.sh: the first command of a GPU window (tools/README-gpu-check.md).

    python3 tools/gpu_check.py [--out DIR] [--budget-s 300] [--only a,b] [--skip a,b] [--plan]

Runs its sections (tools/gpu_window.py) in order, each a process group of its
own under its own cap, all within ``--budget-s`` (default 300 s, so that the
documented ``timeout_s=360`` of the device call leaves a margin and the window
leaves room for tools/gpu_science.sh or a rerun). Writes, as it goes,
DIR/gpu_check.json (the summary), DIR/gpu_check.jsonl (one line per finished
section), DIR/gpu_check.log (every section's output) and DIR/bench.json
(benchmarks/bench_cuda.py's rows). Exits 0 when no section failed or timed
out, 3 when it stopped after ``env`` (no GPU), else 1. Needs no network.

Sections, in order (caps in CAPS):
  env       installs the carried wheels (.whl/) into a private folder, unpacks the carried CIFAR-10
            subset, records the GPU, the driver, the build tools, every package's version (peers
            included) and the setuptools floor; without a GPU the check stops here
  build     the C extension: already built, else the carried prebuilt one (gpu-data/prebuilt/),
            else built here (setup.py build_ext --inplace; from a copy without pyproject.toml when
            setuptools is below pyproject's floor)
  compile   the kernels' first call with an empty kernel cache (NVRTC compile + tables), then a
            second call; equal to the C core; the cuda backend really ran (no host fallback)
  tests     every CUDA test (pytest -m cuda): exactness against the C core and Pillow, torch in /
            out, streams, the allocator, graphs; a skipped CUDA test fails the section
  graphs    CUDA-graph capture of roundtrip (uint8) + roundtrip_float (bfloat16) over 50,000 CIFAR
            images: replay time with both outputs counted, memory accounting, exact after replay
  large     batches past 2^31 bytes (720,000 CIFAR-sized and 2,800 of 512x512, per-image qualities)
            against the C core on a quiet CPU; float32 output and bits for the CIFAR batch
  bench     benchmarks/bench_cuda.py on the carried subset (rows in bench.json as they are measured)
  sanitize  compute-sanitizer memcheck, racecheck, synccheck and initcheck over small odd shapes with
            CuPy's pool off and torch's caching off, and over a captured CUDA graph; last, capped

Dry run (no GPU needed): HELMHOLTZ_GPU_CHECK_DRY=1 runs every section as a mock process
(figures marked "mock"); HELMHOLTZ_GPU_CHECK_MOCK="bench=hang,tests=fail" makes sections hang
(with a child process), fail, crash (SIGKILL), exit silently, skip or report no GPU ("env=nogpu");
HZ_GPU_CHECK_CAPS="bench=5" overrides caps. tests/test_gpu_check.py runs it that way.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

TOOLS = Path(__file__).resolve().parent
ROOT = TOOLS.parent
sys.path.insert(0, str(TOOLS))
import build_prebuilt  # noqa: E402
import gpu_window as gw  # noqa: E402

WORK = Path(os.environ.get("HZ_GPU_CHECK_WORK", "/tmp/hz-gpu-check"))
SITE = WORK / "site"  # the carried wheels are installed here (on the path of env and bench only)
META = WORK / "meta"  # helmholtz's dist-info (entry points) for the tree run in place
STAMP = WORK / "native.sources.sha256"  # the sources the extension in the tree was built from
DATA_DIR = WORK / "cifar-subset"  # the carried subset, unpacked to cifar10.npz
KERNEL_CACHE = WORK / "cupy-cache"  # CUPY_CACHE_DIR of every section
PACKED = Path(os.environ.get("HZ_GPU_DATA", ROOT / "gpu-data" / "cifar10-subset.npz"))  # the carried subset
PREBUILT = ROOT / "gpu-data" / "prebuilt"
WHEELS = ROOT / ".whl"

# Where the GPU sections compute. Only tests/test_gpu_check.py changes these (to "cpu"), to run the
# sections' own logic on a machine without a GPU; the command line has no way to.
DEVICE = "cuda"
BACKEND = "cuda"
LARGE_CASES = (("cifar_720000", 720_000, 32, 32), ("512x512_2800", 2_800, 512, 512))  # past 2^31 bytes each

BUDGET_S = 300.0  # the whole check, so that timeout_s=360 leaves a margin
TIMEOUT_S = 360  # the device call's timeout_s the docs give
CAPS = {"env": 45, "build": 120, "compile": 60, "tests": 75, "graphs": 40, "large": 50, "bench": 80, "sanitize": 90}
SECTIONS = tuple(CAPS)
NEEDS = {"build": ("env",), "compile": ("build",), "tests": ("compile",), "graphs": ("compile",),
         "large": ("compile",), "bench": ("compile",), "sanitize": ("compile",)}
NO_GPU_LINE = "no CUDA GPU visible here: the check stopped after env (see gpu_check.json: sections.env.figures.gpu)"


def env_stop_line(entry: dict) -> str:
    """The one line the check ends with when env did not pass."""
    gpu = entry.get("figures", {}).get("gpu")
    if isinstance(gpu, dict) and gpu.get("available") is False:
        return NO_GPU_LINE
    return f"env did not pass ({entry['status']}: {entry.get('reason')}): the check stopped after env (see gpu_check.log)"

SANITIZERS = ("memcheck", "racecheck", "synccheck", "initcheck")
SANITIZE_SHAPES = [((13, 32, 32, 3), "4:2:0"), ((3, 7, 13, 3), "4:2:2"), ((2, 33, 65, 1), "4:2:0"),
                   ((2, 200, 300, 3), "4:2:0"), ((3, 40, 24, 3), "4:4:4")]
PEER_DISTRIBUTIONS = ("torch", "torchvision", "cupy-cuda13x", "cupy-cuda12x", "cupy", "kornia", "kornia_rs",
                      "nvidia-nvimgcodec-cu13", "nvidia-nvjpeg", "nvidia-dali-cuda130", "numpy", "pillow",
                      "pytest", "pytest-timeout", "pandas", "matplotlib")
BUILD_TOOLS = ("setuptools", "Cython", "wheel", "pip")
PEER_MODULES = {"kornia": "kornia", "nvimgcodec": "nvidia.nvimgcodec", "dali": "nvidia.dali", "torchvision": "torchvision"}


def run(cmd, timeout, **kw) -> subprocess.CompletedProcess:
    """A command of a section (it lives in the section's process group, so a kill takes it too)."""
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, **kw)


def first_line(cmd, timeout=20) -> str:
    try:
        r = run(cmd, timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"absent ({type(exc).__name__})"
    lines = (r.stdout or r.stderr).strip().splitlines()
    return (lines[0] if lines else "?") if r.returncode == 0 else f"exit {r.returncode}: {(lines or ['?'])[-1][:200]}"


def last_line(cmd, timeout=20) -> str:
    try:
        r = run(cmd, timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"absent ({type(exc).__name__})"
    lines = r.stdout.strip().splitlines()
    return (lines[-1] if lines else "?") if r.returncode == 0 else f"exit {r.returncode}"


def setuptools_floor() -> dict:
    """pyproject's setuptools floor against the setuptools this Python has."""
    text = (ROOT / "pyproject.toml").read_text()
    m = re.search(r'"setuptools>=([0-9.]+)"', text)
    floor = m.group(1) if m else None
    try:
        from importlib.metadata import version

        found = version("setuptools")
    except Exception:  # noqa: BLE001 - not installed
        found = None

    def key(v):
        return tuple(int(p) for p in re.findall(r"\d+", v)[:3])

    met = bool(found and floor and key(found) >= key(floor))
    return {"required": f">={floor}" if floor else None, "found": found, "met": met}


def to_numpy(a):
    """A NumPy copy of a torch tensor, CuPy array or array-like."""
    import numpy as np

    if type(a).__module__.startswith("torch"):
        return a.detach().cpu().numpy()
    if type(a).__module__.startswith("cupy"):
        return a.get()
    return np.asarray(a)


def load_cifar():
    """The unpacked carried subset (x: train + test, uint8 NHWC), or None when it was not carried."""
    import numpy as np

    path = DATA_DIR / "cifar10.npz"
    if not path.is_file():
        return None
    with np.load(path) as z:
        return np.concatenate([z["x_train"], z["x_test"]])


def cifar_or_synthetic(n: int, seed: int = 0):
    """n CIFAR images from the carried subset (repeated as needed), else structured synthetic ones."""
    import numpy as np

    x = load_cifar()
    if x is not None:
        return np.ascontiguousarray(np.resize(x, (n,) + x.shape[1:])), "carried CIFAR-10 subset"
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:32, :32]
    base = yy[None, :, :, None] * rng.integers(1, 8, (n, 1, 1, 3)) + xx[None, :, :, None] * rng.integers(1, 8, (n, 1, 1, 3))
    return ((base + rng.integers(0, 48, (n, 32, 32, 3))) % 256).astype(np.uint8), "synthetic (no subset carried)"


# ---- sections (each runs in its own process) ------------------------------------------------------

def install_carried_wheels() -> dict:
    wheels = sorted(WHEELS.glob("*.whl"))
    if not wheels:
        return {"skipped": "no .whl/ carried (make gpu-check-prep): the peers' rows skip"}
    SITE.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    r = run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile", "--no-cache-dir",
             "--upgrade", "--target", str(SITE)] + [str(w) for w in wheels], timeout=120)
    print(r.stdout[-4000:], r.stderr[-4000:])
    manifest = WHEELS / "MANIFEST.json"
    out = {"wheels": [w.name for w in wheels], "seconds": round(time.perf_counter() - t0, 1),
           "pip": "ok" if r.returncode == 0 else f"exit {r.returncode}: {r.stderr.strip()[-300:]}"}
    if manifest.is_file():
        out["manifest"] = json.loads(manifest.read_text())
    return out


def unpack_data() -> dict:
    """The carried subset (packed by tools/pack_gpu_data.py, or a plain cifar10.npz) as DATA_DIR/cifar10.npz."""
    if not PACKED.is_file():
        return {"skipped": f"{PACKED} not carried (make gpu-check-prep; carry gpu-data)"}
    import numpy as np

    import pack_gpu_data

    t0 = time.perf_counter()
    with np.load(PACKED) as z:
        packed = "train_webp" in z.files
        arrays = pack_gpu_data.load_subset(PACKED) if packed else {k: z[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    np.savez(DATA_DIR / "cifar10.npz", **arrays)
    return {"source": str(PACKED), "packed": packed, "unpacked": str(DATA_DIR / "cifar10.npz"),
            "train": int(len(arrays["y_train"])), "test": int(len(arrays["y_test"])), "seconds": round(time.perf_counter() - t0, 1)}


def versions(names) -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return {k: v for k, v in out.items() if v is not None or not k.startswith("cupy")}


def peer_imports() -> dict:
    """Whether each peer imports (in a fresh process, with the carried packages on the path)."""
    out = {}
    for label, module in PEER_MODULES.items():
        code = f"import {module} as m; print(getattr(m, '__version__', '?'))"
        try:
            r = run([sys.executable, "-c", code], timeout=60)
            out[label] = r.stdout.strip() if r.returncode == 0 else f"not importable: {(r.stderr.strip().splitlines() or ['?'])[-1][:200]}"
        except subprocess.TimeoutExpired:
            out[label] = "import timed out"
    return out


def gpu_info() -> dict:
    info: dict = {"nvidia_smi": first_line(["nvidia-smi", "--query-gpu=name,driver_version,memory.total,clocks.max.sm,"
                                            "clocks.max.mem", "--format=csv,noheader"])}
    try:
        import torch

        info["torch_cuda"] = torch.version.cuda
        if not torch.cuda.is_available():
            info.update(available=False, why="torch.cuda.is_available() is False")
            return info
        p = torch.cuda.get_device_properties(0)
        info.update(available=True, device=p.name, sms=p.multi_processor_count, memory_gib=round(p.total_memory / 2**30, 1),
                    capability=f"{p.major}.{p.minor}", l2_mb=round(getattr(p, "L2_cache_size", 0) / 2**20, 1))
    except Exception as exc:  # noqa: BLE001 - record whatever is wrong
        info.update(available=False, why=f"{type(exc).__name__}: {exc}")
        return info
    try:
        import cupy

        info.update(cupy_runtime=cupy.cuda.runtime.runtimeGetVersion(), cupy_driver=cupy.cuda.runtime.driverGetVersion(),
                    nvrtc=".".join(map(str, cupy.cuda.nvrtc.getVersion())))
    except Exception as exc:  # noqa: BLE001
        info["cupy"] = f"{type(exc).__name__}: {exc}"
    return info


def section_env(out: Path) -> int:
    if os.environ.get("HZ_ENV_PEERS", "1") == "1":
        gw.figures(peers_install=install_carried_wheels())
    gw.figures(data=unpack_data())
    gw.figures(python=sys.version.split()[0], executable=sys.executable, cpus=os.cpu_count(),
               build_tools={**versions(BUILD_TOOLS), "gcc": first_line(["gcc", "--version"]),
                            "nvcc": last_line(["nvcc", "--version"]),
                            "compute_sanitizer": last_line(["compute-sanitizer", "--version"])},
               setuptools_floor=setuptools_floor())
    gw.figures(packages=versions(PEER_DISTRIBUTIONS))
    if os.environ.get("HZ_ENV_PEERS", "1") == "1":
        gw.figures(peers=peer_imports())
    gpu = gpu_info()
    gw.figures(gpu=gpu)
    if gpu.get("available"):
        gw.result("ok")
    elif os.environ.get("HZ_REQUIRE_GPU", "1") == "0":
        gw.result("ok", f"no CUDA GPU ({gpu.get('why')}), and none is required (HZ_REQUIRE_GPU=0)")
    else:
        gw.result("failed", f"no CUDA GPU visible ({gpu.get('why')})")
    return 0


def native_imports() -> tuple[bool, str]:
    code = ("import numpy as np, helmholtz._codec.native as n; from helmholtz import jpeg; "
            "x = np.random.default_rng(0).integers(0, 256, (2, 19, 35, 3), dtype=np.uint8); "
            "assert np.array_equal(jpeg.roundtrip(x, 37, backend='cpu'), jpeg.roundtrip(x, 37, backend='numpy')); print(n.__file__)")
    r = run([sys.executable, "-c", code], timeout=60)
    return r.returncode == 0, (r.stdout.strip() if r.returncode == 0 else r.stderr.strip()[-600:])


def section_build(out: Path) -> int:
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    target = ROOT / "helmholtz" / "_codec" / f"native{suffix}"
    floor = setuptools_floor()
    sources = build_prebuilt.sources_sha256()
    gw.figures(ext_suffix=suffix, setuptools_floor=floor, dist_info=str(build_prebuilt.write_dist_info(META)))
    t0 = time.perf_counter()
    how = None
    if target.exists():
        stale = STAMP.is_file() and STAMP.read_text().strip() != sources  # this check built it, from other sources
        ok, why = (False, "built from other sources") if stale else native_imports()
        if ok:
            how = "already built here" + ("" if STAMP.is_file() else " (not by this check: it imports and equals the NumPy reference)")
        else:
            print(f"not using the extension in the tree: {why}")
    prebuilt = PREBUILT / f"native{suffix}"
    stamp = PREBUILT / "SOURCES.sha256"
    if how is None and prebuilt.is_file():
        if stamp.is_file() and stamp.read_text().strip() == sources:
            shutil.copy2(prebuilt, target)
            ok, why = native_imports()
            if ok:
                how = f"prebuilt ({prebuilt.relative_to(ROOT)})"
            else:
                print(f"the carried prebuilt extension does not import here: {why}")
                gw.figures(prebuilt_failed=why[-300:])
        else:
            gw.figures(prebuilt="stale: the sources changed since make gpu-check-prep built it")
    elif how is None:
        gw.figures(prebuilt=f"none for {suffix} in {PREBUILT.relative_to(ROOT)}")
    if how is None:
        jobs = str(min(16, os.cpu_count() or 1))
        if floor["met"]:
            r = run([sys.executable, "setup.py", "-q", "build_ext", "--inplace", "-j", jobs], timeout=None)
            how = "built here: setup.py build_ext --inplace"
        else:  # setuptools below pyproject's floor rejects its [project] table: build from a copy without it
            src = WORK / "build-src"
            shutil.rmtree(src, ignore_errors=True)
            shutil.copytree(ROOT / "csrc", src / "csrc")
            shutil.copytree(ROOT / "helmholtz" / "_codec", src / "helmholtz" / "_codec",
                            ignore=shutil.ignore_patterns("*.so", "native.c", "__pycache__"))
            (src / "helmholtz" / "__init__.py").write_text("")
            shutil.copy2(ROOT / "setup.py", src / "setup.py")
            r = subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--inplace", "-j", jobs], cwd=src,
                               capture_output=True, text=True)
            built = src / "helmholtz" / "_codec" / f"native{suffix}"
            if built.is_file():
                shutil.copy2(built, target)
            how = f"built here from a copy without pyproject.toml (setuptools {floor['found']} is below {floor['required']})"
        print(r.stdout[-20000:], r.stderr[-20000:])
    ok, why = native_imports()
    if ok and how and not how.startswith("already"):
        STAMP.write_text(sources + "\n")
    gw.figures(how=how, seconds=round(time.perf_counter() - t0, 1), imports=ok, module=why if ok else None)
    gw.result("ok" if ok else "failed", None if ok else f"helmholtz._codec.native does not import: {why[-300:]}")
    return 0


def section_compile(out: Path) -> int:
    import numpy as np
    import torch

    from helmholtz import jpeg

    cache = Path(os.environ.get("CUPY_CACHE_DIR", KERNEL_CACHE))
    cold = os.environ.get("HZ_KEEP_KERNEL_CACHE") != "1"
    if cold:
        shutil.rmtree(cache, ignore_errors=True)
    gw.figures(backends=jpeg.available_backends(), kernel_cache=str(cache), cold_cache=cold)
    if BACKEND not in jpeg.available_backends():
        gw.result("failed", f"the {BACKEND} backend is unavailable (jpeg.available_backends() has no {BACKEND!r})")
        return 0
    x_np, source = cifar_or_synthetic(4096)
    x = torch.from_numpy(x_np).to(DEVICE)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    y = jpeg.roundtrip(x, 50, backend=BACKEND)
    torch.cuda.synchronize()
    first = time.perf_counter() - t0
    t1 = time.perf_counter()
    jpeg.roundtrip(x, 50, backend=BACKEND)
    torch.cuda.synchronize()
    second = time.perf_counter() - t1
    on_gpu = y.device.type == DEVICE
    equal = bool(np.array_equal(y.cpu().numpy(), jpeg.roundtrip(x_np, 50, backend="cpu")))
    files = [p for p in cache.rglob("*") if p.is_file()] if cache.is_dir() else []
    gw.figures(images=len(x_np), data=source, first_call_s=round(first, 3), second_call_ms=round(second * 1e3, 3),
               output_on_gpu=on_gpu, equal_to_cpu=equal, kernel_cache_files=len(files),
               kernel_cache_bytes=sum(p.stat().st_size for p in files))
    gw.result("ok" if on_gpu and equal else "failed",
              None if on_gpu and equal else f"output on the GPU: {on_gpu}, equal to the C core: {equal}")
    return 0


CUDA_TEST_FILES = ("tests/test_cuda.py", "tests/test_error_contract.py", "tests/test_subsampling_default.py",
                   "tests/test_transforms.py", "tests/test_ops.py")


def section_tests(out: Path) -> int:
    args = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "-m", "cuda", *CUDA_TEST_FILES]
    try:
        import pytest_timeout  # noqa: F401 - on the device image

        args.append("--timeout=60")
    except ImportError:
        pass
    p = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in p.stdout:  # streamed, so a kill keeps the progress in the log
        print(line, end="")
        lines.append(line)
    rc = p.wait()
    summary = next((ln.strip("= \n") for ln in reversed(lines) if re.search(r"\d+ (passed|failed|error|skipped|deselected)", ln)),
                   "no pytest summary")
    skipped = [ln.strip() for ln in lines if ln.startswith("SKIPPED")]
    gw.figures(pytest=summary, skipped=skipped[:20], exit=rc)
    if rc != 0:
        gw.result("failed", summary)
    elif skipped or " passed" not in summary:
        gw.result("failed", f"{summary}: CUDA tests skipped or none ran, so nothing was shown on the GPU")
    else:
        gw.result("ok")
    return 0


def section_graphs(out: Path) -> int:
    import cupy
    import numpy as np
    import torch

    from helmholtz import jpeg

    n = 50_000
    x_np, source = cifar_or_synthetic(n)
    x = torch.from_numpy(x_np).cuda()
    q_dev = (torch.arange(n, device="cuda", dtype=torch.int32) % 100) + 1
    jpeg.roundtrip(x, 50, backend="cuda")
    jpeg.roundtrip_float(x, q_dev, dtype="bfloat16", backend="cuda")
    torch.cuda.synchronize()
    pool = cupy.get_default_memory_pool()
    cupy_before, torch_before = pool.used_bytes(), torch.cuda.memory_allocated()
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        out_u8 = jpeg.roundtrip(x, 50, backend="cuda")
        out_bf = jpeg.roundtrip_float(x, q_dev, dtype="bfloat16", backend="cuda")
    torch.cuda.synchronize()
    added = torch.cuda.memory_allocated() - torch_before
    expected = out_u8.numel() + 2 * out_bf.numel()
    gw.figures(images=n, data=source, torch_bytes_added=added, output_bytes=expected,
               cupy_pool_bytes_added=pool.used_bytes() - cupy_before)
    for _ in range(3):
        g.replay()
    torch.cuda.synchronize()
    reps = 20
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(reps):
        g.replay()
    end.record()
    end.synchronize()
    dt = start.elapsed_time(end) / 1e3 / reps
    pixels = n * 32 * 32
    gw.figures(replay_ms=round(dt * 1e3, 3), replays=reps, outputs_per_image=2,
               replay_gpixel_s=round(2 * pixels / dt / 1e9, 2), replay_images_s=round(n / dt),
               note="replay_gpixel_s counts both outputs (uint8 NHWC at quality 50 and bfloat16 NCHW at per-image qualities)")
    # new input in place, one replay: both outputs equal the C core's
    new = np.ascontiguousarray(x_np[::-1])
    x.copy_(torch.from_numpy(new))
    g.replay()
    torch.cuda.synchronize()
    want = jpeg.roundtrip(new, 50, backend="cpu")
    q_host = (np.arange(n) % 100) + 1
    want_q = jpeg.roundtrip(new, q_host, backend="cpu")
    want_bf = torch.from_numpy(want_q).permute(0, 3, 1, 2).float().div(255).bfloat16()
    eq_u8 = bool(np.array_equal(out_u8.cpu().numpy(), want))
    eq_bf = bool(torch.equal(out_bf.cpu(), want_bf))
    gw.figures(equal_uint8_after_replay=eq_u8, equal_bfloat16_after_replay=eq_bf)
    ok = eq_u8 and eq_bf and pool.used_bytes() == cupy_before and added >= expected
    gw.result("ok" if ok else "failed", None if ok else "see figures: replay not exact, or memory not accounted to torch")
    return 0


def structured_images(torch, n, h, w, seed, chunk_bytes=1 << 30):
    """Images made on the device: gradients, edges and noise (JPEG-like statistics, cheap to make).

    Made in chunks of about ``chunk_bytes`` so that the int32 temporaries stay small beside the batch.
    """
    g = torch.Generator(device=DEVICE).manual_seed(seed)
    out = torch.empty((n, h, w, 3), dtype=torch.uint8, device=DEVICE)
    yy = torch.arange(h, device=DEVICE, dtype=torch.int32).view(1, h, 1, 1)
    xx = torch.arange(w, device=DEVICE, dtype=torch.int32).view(1, 1, w, 1)
    step = max(1, chunk_bytes // (h * w * 3 * 4))
    for start in range(0, n, step):
        m = min(step, n - start)
        a = torch.randint(1, 9, (m, 1, 1, 3), device=DEVICE, generator=g, dtype=torch.int32)
        b = torch.randint(0, 9, (m, 1, 1, 3), device=DEVICE, generator=g, dtype=torch.int32)
        noise = torch.randint(0, 64, (m, h, w, 3), device=DEVICE, generator=g, dtype=torch.int32)
        out[start:start + m] = ((yy * a + xx * b + noise + (xx // 7 % 2) * 60) % 256).to(torch.uint8)
    return out


def section_large(out: Path) -> int:
    import numpy as np
    import torch

    from helmholtz import jpeg

    threads = os.cpu_count() or 8
    ok = True
    for name, n, h, w in LARGE_CASES:
        x = structured_images(torch, n, h, w, seed=n)
        q = (np.arange(n) % 100 + 1).astype(np.int32)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        out_gpu = jpeg.roundtrip(x, q, backend=BACKEND)
        torch.cuda.synchronize()
        gpu_s = time.perf_counter() - t0
        xh = x.cpu().numpy()
        t1 = time.perf_counter()  # the CPU reference runs alone: no other section is running
        want = jpeg.roundtrip(xh, q, backend="cpu", num_threads=threads)
        cpu_s = time.perf_counter() - t1
        got = out_gpu.cpu().numpy()
        equal = bool(np.array_equal(got, want))
        row = {"bytes_in": int(x.numel()), "equal_uint8": equal, "gpu_s": round(gpu_s, 3), "cpu_s": round(cpu_s, 2),
               "cpu_threads": threads}
        if not equal:
            row["first_bad_images"] = np.flatnonzero((got != want).reshape(n, -1).any(axis=1))[:10].tolist()
        del out_gpu, got
        gw.figures(**{name: row})
        if name.startswith("cifar"):  # float output: 8.8 GB, indices far past 2^31
            fl = jpeg.roundtrip_float(x, q, backend=BACKEND)
            ref = torch.from_numpy(want).to(DEVICE).permute(0, 3, 1, 2).float().div_(255)
            row["equal_float32"] = bool(torch.equal(fl, ref))
            del fl, ref
            coefs = jpeg.coefficients(x, q, backend=BACKEND)
            bits_gpu = to_numpy(jpeg.bits(coefs))
            bits_cpu = jpeg.bits(xh, q, backend="cpu", num_threads=threads)
            row["equal_bits"] = bool(np.array_equal(bits_gpu, bits_cpu))
            del coefs
            gw.figures(**{name: row})
        ok &= all(v for k, v in row.items() if k.startswith("equal"))
        print(name, row, flush=True)
        del x, xh, want
        if DEVICE == "cuda":
            torch.cuda.empty_cache()
    gw.result("ok" if ok else "failed", None if ok else "a GPU result differs from the C core (see figures)")
    return 0


def section_bench(out: Path) -> int:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import bench_cuda

    limit = float(os.environ.get("HZ_SECTION_SECONDS", CAPS["bench"]))
    data = DATA_DIR / "cifar10.npz"
    args = ["--json", str(out / "bench.json"), "--budget-s", str(max(10.0, limit - 8))]
    if data.is_file():
        args += ["--data", str(data)]
    rc = bench_cuda.main(args)
    gw.result("ok" if rc == 0 else "failed", None if rc == 0 else f"bench_cuda exit {rc}")
    return 0


def bench_digest(out: Path) -> dict:
    path = out / "bench.json"
    if not path.is_file():
        return {"bench_json": "not written"}
    doc = json.loads(path.read_text())
    return {"bench_rows": len(doc.get("rows", [])), "bench_complete": doc.get("complete", False),
            "data": doc.get("data"), "targets": doc.get("targets"), "skipped_parts": doc.get("skipped")}


def sanitize_case(kind: str) -> int:
    """The kernels over small odd shapes against the C core, for compute-sanitizer.

    ``direct``: CuPy arrays with CuPy's memory pool off, then torch tensors with torch's caching
    allocator off (PYTORCH_NO_CUDA_MEMORY_CACHING=1, set by the section), so that every buffer is
    its own cudaMalloc and an overrun leaves it. ``graph``: a CUDA graph captured on torch tensors
    (graphs need torch's pool), replayed on new input.
    """
    import cupy
    import numpy as np
    import torch

    from helmholtz import jpeg

    cupy.cuda.set_allocator(None)
    cupy.cuda.set_pinned_memory_allocator(None)
    rng = np.random.default_rng(0)
    bad = []

    def same(label, got, want):
        if not np.array_equal(to_numpy(got), to_numpy(want)):
            bad.append(label)

    if kind == "direct":
        for shape, ss in SANITIZE_SHAPES:
            x = rng.integers(0, 256, shape, dtype=np.uint8)
            q = rng.integers(1, 101, shape[0])
            want = jpeg.roundtrip(x, q, subsampling=ss, backend="cpu")
            for lib, xd in (("cupy", cupy.asarray(x)), ("torch", torch.from_numpy(x).cuda())):
                tag = f"{lib} {shape} {ss}"
                same(f"{tag} roundtrip", jpeg.roundtrip(xd, q, subsampling=ss, backend="cuda"), want)
                same(f"{tag} roundtrip_many", jpeg.roundtrip_many(xd, [10, 90], subsampling=ss, backend="cuda"),
                     jpeg.roundtrip_many(x, [10, 90], subsampling=ss, backend="cpu"))
                same(f"{tag} roundtrip_float", jpeg.roundtrip_float(xd, q, subsampling=ss, backend="cuda"),
                     want.transpose(0, 3, 1, 2).astype(np.float32) / np.float32(255))
                coefs = jpeg.coefficients(xd, q, subsampling=ss, backend="cuda")
                ref = jpeg.coefficients(x, q, subsampling=ss, backend="cpu")
                for a, b in zip(coefs.components, ref.components):
                    same(f"{tag} coefficients", a, b)
                same(f"{tag} reconstruct", jpeg.reconstruct(coefs, backend="cuda"), want)
                for optimize in (False, True):
                    same(f"{tag} bits optimize={optimize}", jpeg.bits(coefs, optimize=optimize),
                         jpeg.bits(ref, optimize=optimize, backend="cpu"))
        print("torch caching allocator off:", os.environ.get("PYTORCH_NO_CUDA_MEMORY_CACHING") == "1")
    else:
        x_np = rng.integers(0, 256, (37, 32, 32, 3), dtype=np.uint8)
        x = torch.from_numpy(x_np).cuda()
        q_dev = torch.arange(37, dtype=torch.int32, device="cuda") % 100 + 1
        jpeg.roundtrip(x, 30, backend="cuda")
        jpeg.roundtrip_float(x, q_dev, dtype="bfloat16", backend="cuda")
        torch.cuda.synchronize()
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            u8 = jpeg.roundtrip(x, 30, backend="cuda")
            bf = jpeg.roundtrip_float(x, q_dev, dtype="bfloat16", backend="cuda")
            many = jpeg.roundtrip_many(x, [10, 90], backend="cuda")
        new = rng.integers(0, 256, x_np.shape, dtype=np.uint8)
        x.copy_(torch.from_numpy(new))
        g.replay()
        g.replay()
        torch.cuda.synchronize()
        same("graph roundtrip", u8, jpeg.roundtrip(new, 30, backend="cpu"))
        same("graph roundtrip_many", many, jpeg.roundtrip_many(new, [10, 90], backend="cpu"))
        want_q = jpeg.roundtrip(new, np.arange(37) % 100 + 1, backend="cpu")
        same("graph roundtrip_float bfloat16", bf.float(),
             torch.from_numpy(want_q).permute(0, 3, 1, 2).float().div(255).bfloat16().float())
    torch.cuda.synchronize()
    print("mismatches:", bad or "none", flush=True)
    return 1 if bad else 0


def section_sanitize(out: Path) -> int:
    exe = shutil.which("compute-sanitizer")
    if exe is None:
        gw.result("skipped", "compute-sanitizer not on PATH")
        return 0
    limit = float(os.environ.get("HZ_SECTION_SECONDS", CAPS["sanitize"])) - 4
    deadline = time.monotonic() + limit
    procs = {}
    for tool in SANITIZERS:
        for case in ("direct", "graph"):
            env = dict(os.environ)
            if case == "direct":
                env["PYTORCH_NO_CUDA_MEMORY_CACHING"] = "1"
            log_path = WORK / f"sanitize-{tool}-{case}.log"
            log = open(log_path, "w")
            cmd = [exe, "--tool", tool, "--error-exitcode", "97", "--print-limit", "25", sys.executable,
                   str(Path(__file__).resolve()), "--case", case]
            procs[(tool, case)] = (subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env), log, log_path)
    results = {}
    for (tool, case), (p, log, log_path) in procs.items():
        try:
            rc = p.wait(timeout=max(0.5, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            rc = "timeout"
        log.close()
        text = log_path.read_text(errors="replace")
        print(f"---- compute-sanitizer --tool {tool} ({case}): exit {rc}\n{text[-12000:]}", flush=True)
        summary = [ln for ln in text.splitlines() if "ERROR SUMMARY" in ln or "RACECHECK SUMMARY" in ln]
        if "Device not supported" in text:
            verdict = "device not supported by compute-sanitizer here"
        elif rc == 0:
            verdict = "ok"
        elif rc == 97:
            verdict = "errors found"
        elif rc == "timeout":
            verdict = f"timeout (past {limit:.0f} s)"
        else:
            verdict = f"exit {rc}"
        results[f"{tool}/{case}"] = {"verdict": verdict, "summary": summary[-1] if summary else None}
        gw.figures(**{f"{tool}/{case}": results[f"{tool}/{case}"]})
    ok = all(r["verdict"] == "ok" for r in results.values())
    gw.result("ok" if ok else "failed", None if ok else "; ".join(f"{k}: {v['verdict']}" for k, v in results.items()
                                                             if v["verdict"] != "ok"))
    return 0


SECTION_FUNCS = {name: globals()[f"section_{name}"] for name in SECTIONS}


# ---- the dry run: each section replaced by a mock process (figures marked "mock") -------------------

def mock_behaviours() -> dict:
    text = os.environ.get("HELMHOLTZ_GPU_CHECK_MOCK", "")
    out = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        name, _, how = item.partition("=")
        out[name] = how
    return out


def mock_section(name: str, out: Path) -> int:
    how = mock_behaviours().get(name, "ok")
    gw.figures(mock=True, mock_behaviour=how, mock_step=1)
    print(f"mock {name}: {how}", flush=True)
    if name == "bench":
        gw.write_json(out / "bench.json", {"mock": True, "rows": [{"case": "mock row"}], "complete": how == "ok"})
    if how == "nogpu":
        gw.figures(gpu={"available": False, "why": "mock: HELMHOLTZ_GPU_CHECK_MOCK env=nogpu"})
        gw.result("failed", "no CUDA GPU visible (mock)")
        return 0
    if how == "hang":  # a child that would outlive a plain kill of this process
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
        gw.figures(mock_child_pid=child.pid)
        time.sleep(3600)
    if how == "crash":
        os.kill(os.getpid(), signal.SIGKILL)
    if how == "silent":
        return 0
    if how == "fail":
        gw.result("failed", "mock failure")
        return 1
    if how == "skip":
        gw.result("skipped", "mock skip")
        return 0
    time.sleep(float(how[len("sleep"):]) if how.startswith("sleep") else 0.1)
    gw.figures(mock_step=2)
    gw.result("ok")
    return 0


# ---- the orchestrator -----------------------------------------------------------------------------

def plan(args) -> tuple[list[str], dict]:
    caps = gw.caps_from_env(CAPS, "HZ_GPU_CHECK_CAPS")
    only = [s for s in args.only.split(",") if s]
    skip = [s for s in args.skip.split(",") if s]
    for s in only + skip:
        if s not in SECTIONS:
            raise SystemExit(f"gpu_check: unknown section {s!r} (sections: {', '.join(SECTIONS)})")
    return [s for s in SECTIONS if (not only or s in only) and s not in skip], caps


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.environ.get("OUT") or str(ROOT / "gpu-check-out"))
    ap.add_argument("--budget-s", type=float, default=float(os.environ.get("GPU_CHECK_BUDGET_S", BUDGET_S)),
                    help=f"overall budget in seconds (default {BUDGET_S:.0f}; the device call's timeout_s is {TIMEOUT_S})")
    ap.add_argument("--only", default="", help="comma-separated sections to run")
    ap.add_argument("--skip", default="", help="comma-separated sections to leave out")
    ap.add_argument("--plan", action="store_true", help="print the sections and their caps, then exit")
    ap.add_argument("--section", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--mock-section", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--case", default=None, choices=("direct", "graph"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    out = Path(args.out)
    if args.case:
        return sanitize_case(args.case)
    if args.section:
        return SECTION_FUNCS[args.section](out)
    if args.mock_section:
        return mock_section(args.mock_section, out)

    names, caps = plan(args)
    dry = os.environ.get("HELMHOLTZ_GPU_CHECK_DRY") == "1"
    if args.plan:
        print(f"budget {args.budget_s:.0f} s (device call: timeout_s={TIMEOUT_S}); " + ", ".join(f"{n} <= {caps[n]:.0f} s" for n in names))
        return 0
    out.mkdir(parents=True, exist_ok=True)
    WORK.mkdir(parents=True, exist_ok=True)
    SITE.mkdir(parents=True, exist_ok=True)
    env = gw.python_env(ROOT, [META], {"CUPY_CACHE_DIR": os.environ.get("CUPY_CACHE_DIR", str(KERNEL_CACHE))})
    build_prebuilt.write_dist_info(META)  # entry points for the tree run in place (the build section writes it again)
    with_peers = {"PYTHONPATH": gw.python_env(ROOT, [META, SITE])["PYTHONPATH"]}  # the carried peers: env and bench only
    mode = "--mock-section" if dry else "--section"
    sections = []
    for name in names:
        sections.append(gw.Section(
            name=name, cap_s=caps[name],
            argv=[sys.executable, str(Path(__file__).resolve()), mode, name, "--out", str(out)],
            needs=tuple(n for n in NEEDS.get(name, ()) if n in names),
            stop_unless_ok=env_stop_line if name == "env" else None,
            digest=(lambda: bench_digest(out)) if name == "bench" else None,
            min_s=5.0 if dry else 10.0,
            env=with_peers if name in ("env", "bench") else {},
        ))
    meta = {"timeout_s": TIMEOUT_S, "dry_run": dry, "work": str(WORK)}
    if dry:
        meta["note"] = "DRY RUN: every section is a mock process; no figure here was measured"
        print("gpu_check: DRY RUN (HELMHOLTZ_GPU_CHECK_DRY=1): sections are mock processes, figures are not measurements", flush=True)
    if "bench" in names:
        (out / "bench.json").unlink(missing_ok=True)  # this run's rows only
    window = gw.Window(out, "gpu_check", args.budget_s, env, meta=meta, cwd=ROOT)
    return window.run(sections)


if __name__ == "__main__":
    sys.exit(main())
