"""The one-command GPU check behind tools/gpu_check.sh (see tools/README-gpu-check.md).

    python3 tools/gpu_check.py [--out DIR] [--budget-s 470] [--only a,b] [--skip a,b]

Runs each section as its own process with a time limit, under one overall
deadline, so that a section that fails, crashes or hangs is recorded and the
others still run. Writes DIR/gpu_check.json (a summary: per section its status
-- ok, failed, skipped -- with the reason, seconds and figures), DIR/gpu_check.log
(every section's output) and DIR/bench.json (benchmarks/bench_cuda.py). Exits 0
when no section failed. Needs no network: peers (kornia) come from wheels in
.whl/ when carried, else their benchmark rows are skipped.

Sections, in order:
  env        the device, driver, Python packages, compute-sanitizer
  build      pip install --no-build-isolation --no-deps -e . (falls back to build_ext --inplace)
  peers      kornia (+ kornia-rs) from .whl/ into a private folder, when carried
  tests      tests/test_cuda.py on the GPU (its stream and graph tests run in their own sections)
  stream     input written on a side stream after torch.cuda._sleep: results still right
  graphs     CUDA-graph capture and replay; memory accounting (torch vs CuPy pools)
  large      batches past 2^31 bytes (720,000 CIFAR-sized, 2,800 of 512x512) against the CPU
  sanitize   compute-sanitizer memcheck, racecheck, synccheck, initcheck on small odd shapes
             (four processes, alongside `large`)
  bench      benchmarks/bench_cuda.py (peers side by side, targets)
  sweep      5-epoch fast-recipe sweep of model A on the carried CIFAR-10 subset: images/s, the
             codec's share of an epoch, and the gain from --trials-per-device
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = Path(os.environ.get("HZ_GPU_CHECK_WORK", "/tmp/hz-gpu-check"))
SITE = WORK / "site"  # carried wheels are installed here
RESULT_TAG = "GPU_CHECK_RESULT "
SANITIZERS = ("memcheck", "racecheck", "synccheck", "initcheck")
SANITIZE_SHAPES = [((13, 32, 32, 3), "4:2:0"), ((3, 7, 13, 3), "4:2:2"), ((2, 33, 65, 1), "4:2:0"),
                   ((2, 200, 300, 3), "4:2:0")]
SECTIONS = ("env", "build", "peers", "tests", "stream", "graphs", "large", "sanitize", "bench", "sweep")
# seconds each section may take at most (the overall deadline may give it less)
CAPS = {"env": 30, "build": 240, "peers": 60, "tests": 150, "stream": 60, "graphs": 90, "large": 180,
        "sanitize": 240, "bench": 150, "sweep": 200}
LOG_TAIL = 200_000  # characters of each section's output kept in the log


def emit(result: dict) -> None:
    """A section's last line: its figures, for the summary."""
    print(RESULT_TAG + json.dumps(result, default=str), flush=True)


def python_env() -> dict:
    env = dict(os.environ)
    paths = [str(ROOT)] + ([str(SITE)] if SITE.is_dir() else [])
    env["PYTHONPATH"] = os.pathsep.join(paths + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def sh(cmd, timeout, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=python_env(), **kw)


def pytest_summary(text: str) -> str:
    for line in reversed(text.strip().splitlines()):
        if any(w in line for w in (" passed", " failed", " error", " skipped", "no tests ran")):
            return line.strip("= ")
    return "no pytest summary"


# ---- sections (each runs in its own process) ------------------------------------------------------

def section_env(out: Path) -> int:
    info = {"python": sys.version.split()[0]}
    for cmd, key in ((["nvidia-smi", "--query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem",
                       "--format=csv,noheader"], "nvidia_smi"), (["nvcc", "--version"], "nvcc"),
                     (["compute-sanitizer", "--version"], "compute_sanitizer")):
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
            info[key] = (r.stdout.strip().splitlines() or ["?"])[-1] if r.returncode == 0 else f"exit {r.returncode}"
        except (OSError, subprocess.TimeoutExpired) as exc:
            info[key] = f"absent ({type(exc).__name__})"
    for mod in ("torch", "cupy", "torchvision", "kornia", "numpy", "PIL"):
        try:
            m = __import__(mod)
            info[mod] = getattr(m, "__version__", "?")
        except Exception as exc:  # noqa: BLE001 - record whatever is wrong
            info[mod] = f"absent ({type(exc).__name__})"
    try:
        import torch

        p = torch.cuda.get_device_properties(0)
        info.update(device=p.name, sms=p.multi_processor_count, memory_gib=round(p.total_memory / 2**30, 1),
                    capability=f"{p.major}.{p.minor}")
    except Exception as exc:  # noqa: BLE001
        info["device"] = f"unavailable ({type(exc).__name__}: {exc})"
    print(json.dumps(info, indent=2))
    emit(info)
    return 0 if "unavailable" not in str(info.get("device")) else 1


def section_build(out: Path) -> int:
    t0 = time.perf_counter()
    r = sh([sys.executable, "-m", "pip", "install", "--no-build-isolation", "--no-deps", "-e", "."], timeout=220)
    print(r.stdout[-20000:], r.stderr[-20000:])
    how = "pip install -e"
    if r.returncode != 0:
        print("pip install -e failed; building in place instead")
        r = sh([sys.executable, "setup.py", "-q", "build_ext", "--inplace"], timeout=200)
        print(r.stdout[-20000:], r.stderr[-20000:])
        how = "setup.py build_ext --inplace (pip install -e failed)"
    check = sh([sys.executable, "-c", "import helmholtz._codec.native, helmholtz; print(helmholtz.__file__)"], timeout=60)
    print(check.stdout, check.stderr)
    emit({"how": how, "seconds": round(time.perf_counter() - t0, 1), "imports": check.returncode == 0})
    return 0 if check.returncode == 0 else 1


def section_peers(out: Path) -> int:
    wheels = sorted((ROOT / ".whl").glob("*.whl"))
    if not wheels:
        emit({"skipped": "no .whl/ carried: kornia absent, its benchmark rows skip"})
        return 0
    SITE.mkdir(parents=True, exist_ok=True)
    r = sh([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
            "--no-cache-dir", "--upgrade", "--target", str(SITE)] + [str(w) for w in wheels], timeout=50)
    print(r.stdout, r.stderr)
    ok = sh([sys.executable, "-c", "import kornia; print(kornia.__version__)"], timeout=60)
    print(ok.stdout, ok.stderr)
    emit({"wheels": [w.name for w in wheels], "kornia": ok.stdout.strip() or f"import failed: {ok.stderr[-300:]}"})
    return 0 if r.returncode == 0 and ok.returncode == 0 else 1


def run_pytest(args, timeout) -> tuple[int, str]:
    """pytest on the GPU tests; a run whose CUDA tests skipped (no backend) counts as failed."""
    r = sh([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider"] + args, timeout=timeout)
    print(r.stdout[-60000:], r.stderr[-20000:])
    summary = pytest_summary(r.stdout)
    if r.returncode == 0 and ("no CUDA backend" in r.stdout or "torch has no CUDA" in r.stdout or " passed" not in summary):
        return 1, summary + " (CUDA tests skipped: no usable CUDA backend)"
    return r.returncode, summary


def section_tests(out: Path) -> int:
    rc, summary = run_pytest(["tests/test_cuda.py", "-k", "not side_stream and not cuda_graph and not allocator"],
                             CAPS["tests"] - 10)
    emit({"pytest": summary})
    return rc


def section_stream(out: Path) -> int:
    rc, summary = run_pytest(["tests/test_cuda.py", "-k", "side_stream or torch_cuda_in_torch_out"], CAPS["stream"] - 5)
    emit({"pytest": summary})
    return rc


def section_graphs(out: Path) -> int:
    rc, summary = run_pytest(["tests/test_cuda.py", "-k", "cuda_graph or allocator"], 60)
    figures = {"pytest": summary}
    try:  # replay speed and memory accounting
        import cupy
        import numpy as np
        import torch

        from helmholtz import jpeg
        from helmholtz._codec import cuda as _cuda

        x = torch.randint(0, 256, (50000, 32, 32, 3), dtype=torch.uint8, device="cuda")
        jpeg.roundtrip(x, 50)
        torch.cuda.synchronize()
        pool = cupy.get_default_memory_pool()
        cupy_before, torch_before = pool.used_bytes(), torch.cuda.memory_allocated()
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            out_u8 = jpeg.roundtrip(x, 50)
            out_f = _cuda.roundtrip_float(x, 50, dtype="bfloat16")
        for _ in range(3):
            g.replay()
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(20):
            g.replay()
        torch.cuda.synchronize()
        dt = (time.perf_counter() - t0) / 20
        figures.update(
            replay_ms=round(dt * 1e3, 3), replay_gpixel_s=round(50000 * 1024 / dt / 1e9, 1),
            torch_bytes_added=torch.cuda.memory_allocated() - torch_before,
            expected_output_bytes=out_u8.numel() + 2 * out_f.numel(),
            cupy_pool_bytes_added=pool.used_bytes() - cupy_before,
            equal_after_replay=bool(np.array_equal(out_u8.cpu().numpy(), jpeg.roundtrip(x.cpu().numpy(), 50,
                                                                                         backend="cpu"))),
        )
        ok = figures["cupy_pool_bytes_added"] == 0 and figures["equal_after_replay"]
    except Exception as exc:  # noqa: BLE001
        figures["replay"] = f"failed: {type(exc).__name__}: {exc}"
        ok = False
    emit(figures)
    return rc if ok else 1


def structured_images(torch, n, h, w, seed):
    """Images made on the device: gradients, edges and noise (JPEG-like statistics, cheap to make)."""
    g = torch.Generator(device="cuda").manual_seed(seed)
    yy = torch.arange(h, device="cuda").view(1, h, 1, 1)
    xx = torch.arange(w, device="cuda").view(1, 1, w, 1)
    a = torch.randint(1, 9, (n, 1, 1, 3), device="cuda", generator=g)
    b = torch.randint(0, 9, (n, 1, 1, 3), device="cuda", generator=g)
    noise = torch.randint(0, 64, (n, h, w, 3), device="cuda", generator=g, dtype=torch.int32)
    return ((yy * a + xx * b + noise + (xx // 7 % 2) * 60) % 256).to(torch.uint8)


def section_large(out: Path) -> int:
    import numpy as np
    import torch

    from helmholtz import jpeg
    from helmholtz._codec import cuda as _cuda

    threads = os.cpu_count() or 8
    figures, ok = {}, True
    for name, n, h, w in (("cifar_720000", 720_000, 32, 32), ("512x512_2800", 2_800, 512, 512)):
        t0 = time.perf_counter()
        x = structured_images(torch, n, h, w, seed=n)
        q = (np.arange(n) % 100 + 1).astype(np.int32)
        out_gpu = jpeg.roundtrip(x, q)
        torch.cuda.synchronize()
        gpu_s = time.perf_counter() - t0
        xh = x.cpu().numpy()
        t1 = time.perf_counter()
        want = jpeg.roundtrip(xh, q, backend="cpu", num_threads=threads)
        cpu_s = time.perf_counter() - t1
        got = out_gpu.cpu().numpy()
        equal = bool(np.array_equal(got, want))
        row = {"bytes_in": int(x.numel()), "equal_uint8": equal, "gpu_incl_make_s": round(gpu_s, 2),
               "cpu_s": round(cpu_s, 2)}
        if not equal:
            bad = np.flatnonzero((got != want).reshape(n, -1).any(axis=1))
            row["first_bad_images"] = bad[:10].tolist()
        del out_gpu, got
        if name.startswith("cifar"):  # float output: 8.8 GB, indices far past 2^31
            fl = _cuda.roundtrip_float(x, q)
            ref = torch.from_numpy(want).cuda().permute(0, 3, 1, 2).float().div_(255)
            row["equal_float32"] = bool(torch.equal(fl, ref))
            del fl, ref
            coefs = jpeg.coefficients(x, q)
            bits_gpu = jpeg.bits(coefs).cpu().numpy()
            bits_cpu = jpeg.bits(xh, q, backend="cpu")
            row["equal_bits"] = bool(np.array_equal(bits_gpu, bits_cpu))
            del coefs
        ok &= all(v for k, v in row.items() if k.startswith("equal"))
        figures[name] = row
        print(name, row, flush=True)
        del x, xh, want
        torch.cuda.empty_cache()
    emit(figures)
    return 0 if ok else 1


def sanitize_case() -> int:
    """The kernels over small odd shapes, CuPy in and out, against the CPU (run under compute-sanitizer)."""
    import cupy
    import numpy as np

    from helmholtz import jpeg
    from helmholtz._codec import cuda as _cuda
    from helmholtz._codec import entropy as _entropy

    rng = np.random.default_rng(0)
    bad = []
    for shape, ss in SANITIZE_SHAPES:
        x = rng.integers(0, 256, shape, dtype=np.uint8)
        xd = cupy.asarray(x)
        n = shape[0]
        q = rng.integers(1, 101, n)

        def same(label, got, want):
            if not np.array_equal(cupy.asnumpy(got), want):
                bad.append(f"{shape} {ss} {label}")

        same("roundtrip", jpeg.roundtrip(xd, q, subsampling=ss), jpeg.roundtrip(x, q, subsampling=ss, backend="cpu"))
        same("roundtrip_many", jpeg.roundtrip_many(xd, [10, 90], subsampling=ss),
             jpeg.roundtrip_many(x, [10, 90], subsampling=ss, backend="cpu"))
        u8 = jpeg.roundtrip(x, q, subsampling=ss, backend="cpu").transpose(0, 3, 1, 2).astype(np.float32)
        same("roundtrip_float", _cuda.roundtrip_float(xd, q, ss), u8 / np.float32(255))
        coefs = jpeg.coefficients(xd, q, subsampling=ss)
        want = jpeg.coefficients(x, q, subsampling=ss, backend="cpu")
        for a, b in zip(coefs.components, want.components):
            same("coefficients", a, b)
        same("reconstruct", jpeg.reconstruct(coefs), jpeg.roundtrip(x, q, subsampling=ss, backend="cpu"))
        for optimize in (False, True):
            same(f"bits optimize={optimize}", _cuda.bits(coefs.components, ss, optimize=optimize),
                 _entropy.bits(want, optimize=optimize))
        f, e = _cuda.frequencies(coefs.components, ss)
        wf, we = _entropy.symbol_frequencies(want)
        same("frequencies", f, wf)
        same("extra", e, we)
    cupy.cuda.runtime.deviceSynchronize()
    print("mismatches:", bad or "none")
    return 1 if bad else 0


def section_sanitize(out: Path) -> int:
    exe = shutil.which("compute-sanitizer")
    if exe is None:
        emit({"skipped": "compute-sanitizer not on PATH"})
        return 0
    procs = {}
    for tool in SANITIZERS:
        cmd = [exe, "--tool", tool, "--error-exitcode", "97", "--print-limit", "25", sys.executable,
               str(Path(__file__).resolve()), "--case", "sanitize"]
        log = open(WORK / f"sanitize-{tool}.log", "w")
        procs[tool] = (subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=python_env()), log)
    deadline = time.monotonic() + float(os.environ.get("HZ_SECTION_SECONDS", CAPS["sanitize"])) - 5
    results = {}
    for tool, (p, log) in procs.items():
        try:
            rc = p.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            rc = "timeout"
        log.close()
        text = (WORK / f"sanitize-{tool}.log").read_text(errors="replace")
        print(f"---- compute-sanitizer --tool {tool}: exit {rc}\n{text[-30000:]}")
        summary = [line for line in text.splitlines() if "ERROR SUMMARY" in line or "RACECHECK SUMMARY" in line]
        if "Device not supported" in text:
            verdict = "device not supported by compute-sanitizer here"
        elif rc == 0:
            verdict = "ok"
        elif rc == 97:
            verdict = "errors found"
        else:
            verdict = f"exit {rc}"
        results[tool] = {"verdict": verdict, "summary": summary[-1] if summary else None}
    emit(results)
    return 0 if all(r["verdict"] == "ok" for r in results.values()) else 1


def section_bench(out: Path) -> int:
    r = sh([sys.executable, "benchmarks/bench_cuda.py", "--cifar", "50000", "--big", "64", "--repeat", "7",
            "--json", str(out / "bench.json")], timeout=CAPS["bench"] - 5)
    print(r.stdout[-60000:], r.stderr[-20000:])
    figures = {}
    try:
        data = json.loads((out / "bench.json").read_text())
        figures = {"targets": data.get("targets"), "device": data.get("device"), "peak_gb_s": data.get("peak_gb_s")}
    except (OSError, ValueError) as exc:
        figures["bench_json"] = f"missing ({exc})"
    emit(figures)
    return r.returncode


def sweep_rows(db: Path) -> list[dict]:
    import sqlite3

    con = sqlite3.connect(db)
    con.row_factory = sqlite3.Row
    rows = [dict(r) for r in con.execute("SELECT * FROM trials")]
    con.close()
    return rows


def section_sweep(out: Path) -> int:
    import numpy as np

    packed = ROOT / "gpu-data" / "cifar10-subset.npz"
    if not packed.is_file():
        emit({"skipped": "gpu-data/cifar10-subset.npz not carried (run tools/pack_gpu_data.py, carry gpu-data)"})
        return 0
    sys.path.insert(0, str(ROOT / "tools"))
    import pack_gpu_data

    data_dir = WORK / "cifar-subset"
    data_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    arrays = pack_gpu_data.load_subset(packed)
    np.savez(data_dir / "cifar10.npz", **arrays)
    figures = {"train_images": int(len(arrays["y_train"])), "test_images": int(len(arrays["y_test"])),
               "unpack_s": round(time.perf_counter() - t0, 1)}
    qualities = [10, 50, 90]
    # HZ_GPU_CHECK_DEVICE / _EPOCHS / _SUBSET: dry runs of this section without a GPU (tools/README-gpu-check.md)
    device = os.environ.get("HZ_GPU_CHECK_DEVICE", "cuda")
    epochs = os.environ.get("HZ_GPU_CHECK_EPOCHS", "5")
    subset = os.environ.get("HZ_GPU_CHECK_SUBSET", "")
    base = [sys.executable, "-m", "helmholtz", "sweep", "--dataset", "cifar10", "--data-dir", str(data_dir),
            "--models", "A", "--qualities", ",".join(map(str, qualities)), "--epochs", epochs, "--recipe", "fast",
            "--device", device, "--no-progress"]
    if subset:
        tr, te = subset.split(",")
        base += ["--train-subset", tr, "--test-subset", te]
        figures.update(train_images=int(tr), test_images=int(te))
    # the codec alone on this data: one forward transform, all qualities (as the sweep does)
    import torch

    from helmholtz.transforms import compress_many

    both = np.concatenate([arrays["x_train"], arrays["x_test"]])[: figures["train_images"] + figures["test_images"]]
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    compress_many(both[:1000], qualities, device=device)
    sync()
    t1 = time.perf_counter()
    compress_many(both, qualities, device=device)
    sync()
    codec_s = time.perf_counter() - t1
    figures["codec_s_all_qualities"] = round(codec_s, 4)

    runs = {}
    help_text = sh([sys.executable, "-m", "helmholtz", "sweep", "--help"], timeout=60).stdout
    variants = [("one_trial_per_device", [])]
    if "--trials-per-device" in help_text:
        variants.append(("three_trials_per_device", ["--trials-per-device", "3"]))
    else:
        figures["trials_per_device"] = "skipped: flag missing (helmholtz sweep --help has no --trials-per-device)"
    budget = float(os.environ.get("HZ_SECTION_SECONDS", CAPS["sweep"])) - 10
    for name, extra in variants:
        dest = WORK / f"sweep-{name}"
        shutil.rmtree(dest, ignore_errors=True)
        t2 = time.perf_counter()
        r = sh(base + extra + ["--out", str(dest)], timeout=max(10.0, budget - (time.perf_counter() - t0)))
        wall = time.perf_counter() - t2
        print(f"---- sweep {name}: exit {r.returncode} in {wall:.1f} s\n{r.stdout[-10000:]}\n{r.stderr[-10000:]}")
        row = {"exit": r.returncode, "wall_s": round(wall, 1)}
        if r.returncode == 0:
            trials = sweep_rows(dest / "results.sqlite")
            ips = [t["images_per_s"] for t in trials if t.get("images_per_s")]
            epoch_s = [t["train_time_s"] / t["epochs"] for t in trials if t.get("train_time_s")]
            row.update(trials=len(trials), images_per_s=round(float(np.mean(ips)), 1) if ips else None,
                       epoch_s=round(float(np.mean(epoch_s)), 3) if epoch_s else None,
                       test_accuracy={t["quality"]: round(t["test_accuracy"], 4) for t in trials})
        runs[name] = row
    figures["runs"] = runs
    one = runs.get("one_trial_per_device", {})
    if one.get("epoch_s"):
        per_quality = codec_s / len(qualities)
        figures["codec_share_of_epoch"] = round(per_quality / (per_quality + one["epoch_s"]), 5)
        figures["codec_share_of_sweep"] = round(codec_s / one["wall_s"], 5)
    three = runs.get("three_trials_per_device", {})
    if one.get("wall_s") and three.get("wall_s") and three.get("exit") == 0:
        figures["trials_per_device_gain"] = round(one["wall_s"] / three["wall_s"], 2)
    emit(figures)
    return 0 if all(r["exit"] == 0 for r in runs.values()) else 1


SECTION_FUNCS = {name: globals()[f"section_{name}"] for name in SECTIONS}


# ---- the orchestrator -----------------------------------------------------------------------------

def start(name: str, out: Path, seconds: float, log) -> tuple[subprocess.Popen, float]:
    env = python_env()
    env["HZ_SECTION_SECONDS"] = str(int(seconds))
    p = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--section", name, "--out", str(out)],
                         cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, text=True, env=env)
    return p, time.monotonic()


def finish(name: str, p: subprocess.Popen, t0: float, seconds: float, logpath: Path) -> dict:
    try:
        rc = p.wait(timeout=max(1.0, seconds - (time.monotonic() - t0)))
        status = "ok" if rc == 0 else "failed"
        reason = None if rc == 0 else f"exit {rc}"
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        status, reason = "failed", f"timed out after {seconds:.0f} s"
    text = logpath.read_text(errors="replace")
    figures = None
    for line in reversed(text.splitlines()):
        if line.startswith(RESULT_TAG):
            figures = json.loads(line[len(RESULT_TAG):])
            break
    if figures and "skipped" in figures and status == "ok":
        status, reason = "skipped", figures["skipped"]
    return {"status": status, "reason": reason, "seconds": round(time.monotonic() - t0, 1), "figures": figures,
            "output": text}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.environ.get("OUT") or str(ROOT / "gpu-check-out"))
    ap.add_argument("--budget-s", type=float, default=float(os.environ.get("GPU_CHECK_BUDGET_S", 470)),
                    help="overall deadline in seconds (default 470: under 8 minutes)")
    ap.add_argument("--only", default="", help="comma-separated sections to run")
    ap.add_argument("--skip", default="", help="comma-separated sections to leave out")
    ap.add_argument("--section", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--case", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    WORK.mkdir(parents=True, exist_ok=True)
    if args.case == "sanitize":
        return sanitize_case()
    if args.section:
        return SECTION_FUNCS[args.section](out)

    wanted = [s for s in SECTIONS if (not args.only or s in args.only.split(",")) and s not in args.skip.split(",")]
    t_start = time.monotonic()
    summary = {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "budget_s": args.budget_s, "sections": {}}
    logs = {}

    def left() -> float:
        return args.budget_s - (time.monotonic() - t_start)

    def record(name, res):
        logs[name] = res.pop("output")
        summary["sections"][name] = res
        print(f"[gpu_check] {name:<9} {res['status']:<8} {res['seconds']:>6.1f} s"
              + (f"  ({res['reason']})" if res["reason"] else ""), flush=True)

    def run_one(name, background=None):
        seconds = min(CAPS[name], left() - 5)
        if seconds < 15:
            record(name, {"status": "skipped", "reason": "out of time (overall budget)", "seconds": 0.0,
                          "figures": None, "output": ""})
            return None
        logpath = WORK / f"section-{name}.log"
        log = open(logpath, "w")
        p, t0 = start(name, out, seconds, log)
        if background:
            return name, p, t0, seconds, logpath, log
        res = finish(name, p, t0, seconds, logpath)
        log.close()
        record(name, res)
        return res

    built = True
    for name in wanted:
        if name == "sanitize" and "large" in wanted:
            continue  # runs alongside `large`
        if name in ("tests", "stream", "graphs", "large", "sanitize", "bench", "sweep") and not built:
            for skipped in [name] + (["sanitize"] if name == "large" and "sanitize" in wanted else []):
                record(skipped, {"status": "skipped", "reason": "the build failed", "seconds": 0.0, "figures": None,
                                 "output": ""})
            continue
        if name == "large" and "sanitize" in wanted:
            bg = run_one("sanitize", background=True)
            res = run_one("large")
            if bg:
                bname, p, t0, seconds, logpath, log = bg
                r2 = finish(bname, p, t0, seconds, logpath)
                log.close()
                record(bname, r2)
            continue
        res = run_one(name)
        if name == "build" and (res is None or res["status"] != "ok"):
            built = False

    summary["seconds"] = round(time.monotonic() - t_start, 1)
    failed = [n for n, r in summary["sections"].items() if r["status"] == "failed"]
    summary["failed"] = failed
    with open(out / "gpu_check.log", "w") as f:
        for name, text in logs.items():
            f.write(f"\n==================== {name} ====================\n")
            f.write(text[-LOG_TAIL:])
    (out / "gpu_check.json").write_text(json.dumps(summary, indent=2, default=str))
    print(f"[gpu_check] {len(summary['sections'])} sections in {summary['seconds']} s; failed: {failed or 'none'}; "
          f"results in {out / 'gpu_check.json'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
