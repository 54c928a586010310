"""The GPU window's two commands (tools/gpu_check.sh, tools/gpu_science.sh), proven on a machine without a GPU.

A GPU window comes rarely and lasts minutes, so everything but the GPU's own
figures is checked here: the sections, the budget, the incremental summary,
timeouts that kill a section's whole process group and keep its figures, the
stop after ``env`` without a GPU, the benchmark's and the sections' own logic
run on the host, the science run end to end on the CPU, and the tools that
prepare what travels (wheels, the prebuilt extension's metadata, NVRTC).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ROOT / "tools"
sys.path.insert(0, str(TOOLS))
sys.path.insert(0, str(ROOT / "benchmarks"))

import build_prebuilt  # noqa: E402
import gpu_window as gw  # noqa: E402

SECTIONS = ["env", "build", "compile", "tests", "graphs", "large", "bench", "sanitize"]


def check_env(tmp_path: Path, **extra) -> dict:
    env = dict(os.environ)
    env.update(HZ_GPU_CHECK_WORK=str(tmp_path / "work"), PYTHONUNBUFFERED="1", **extra)
    env.pop("OUT", None)
    return env


def dry(tmp_path: Path, mock: str = "", caps: str = "", args=(), timeout=180) -> tuple[subprocess.CompletedProcess, dict]:
    out = tmp_path / "out"
    env = check_env(tmp_path, HELMHOLTZ_GPU_CHECK_DRY="1", HELMHOLTZ_GPU_CHECK_MOCK=mock, HZ_GPU_CHECK_CAPS=caps)
    r = subprocess.run([sys.executable, str(TOOLS / "gpu_check.py"), "--out", str(out), *args], env=env, capture_output=True,
                       text=True, timeout=timeout)
    return r, json.loads((out / "gpu_check.json").read_text())


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its parent does not count)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


# ---- the check's machinery, dry (every section a mock process) ---------------------------------------

def test_dry_run_shows_every_section_the_budget_and_writes_json_log_and_lines(tmp_path):
    r, summary = dry(tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "DRY RUN" in r.stdout and "budget 300 s" in r.stdout
    for name in SECTIONS:
        assert f"] {name}" in r.stdout
    assert summary["dry_run"] is True and summary["budget_s"] == 300 and summary["timeout_s"] == 360
    assert [p["name"] for p in summary["plan"]] == SECTIONS
    assert {n: s["status"] for n, s in summary["sections"].items()} == dict.fromkeys(SECTIONS, "ok")
    assert all(s["figures"]["mock"] is True for s in summary["sections"].values())  # mocks say so in every figure
    out = tmp_path / "out"
    lines = [json.loads(ln) for ln in (out / "gpu_check.jsonl").read_text().splitlines()]
    assert [ln["section"] for ln in lines] == SECTIONS
    log = (out / "gpu_check.log").read_text()
    assert all(f"==================== {name} " in log for name in SECTIONS)
    assert sorted(p.name for p in out.iterdir()) == ["bench.json", "gpu_check.json", "gpu_check.jsonl", "gpu_check.log"]


def test_a_section_past_its_limit_is_killed_with_its_children_and_keeps_its_figures(tmp_path):
    r, summary = dry(tmp_path, mock="bench=hang", caps="bench=10")
    bench = summary["sections"]["bench"]
    assert r.returncode == 1
    assert bench["status"] == "timeout" and "10 s limit" in bench["reason"]
    assert bench["figures"]["mock_step"] == 1  # printed before the hang: kept
    assert bench["figures"]["bench_rows"] == 1 and bench["figures"]["bench_complete"] is False  # bench.json digested anyway
    assert not alive(bench["figures"]["mock_child_pid"])  # the section's child went with it
    assert summary["sections"]["sanitize"]["status"] == "ok"  # later sections still ran
    assert summary["failed"] == ["bench"] and summary["finished"] is True
    assert "mock bench: hang" in (tmp_path / "out" / "gpu_check.log").read_text()


def test_a_section_killed_mid_run_keeps_its_figures_and_the_summary_goes_on(tmp_path):
    out = tmp_path / "out"
    env = check_env(tmp_path, HELMHOLTZ_GPU_CHECK_DRY="1", HELMHOLTZ_GPU_CHECK_MOCK="tests=hang", HZ_GPU_CHECK_CAPS="tests=120")
    p = subprocess.Popen([sys.executable, str(TOOLS / "gpu_check.py"), "--out", str(out)], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 90
        running = None
        while time.monotonic() < deadline:  # wait until `tests` runs and has printed its first figures
            try:
                summary = json.loads((out / "gpu_check.json").read_text())
            except (OSError, ValueError):
                summary = {"sections": {}}
            sec = summary["sections"].get("tests", {})
            if sec.get("status") == "running" and "mock_child_pid" in (out / "gpu_check.log").read_text():
                running = sec
                break
            time.sleep(0.1)
        assert running is not None, "the tests section never ran"
        assert {n: summary["sections"][n]["status"] for n in ("env", "build", "compile")} == dict.fromkeys(("env", "build", "compile"), "ok")
        os.killpg(running["pid"], signal.SIGKILL)  # the section and its child die mid-run
        stdout, _ = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
    summary = json.loads((out / "gpu_check.json").read_text())
    tests = summary["sections"]["tests"]
    assert tests["status"] == "failed" and tests["reason"] == "killed by SIGKILL"
    assert tests["figures"]["mock_step"] == 1 and tests["figures"]["mock"] is True
    assert not alive(tests["figures"]["mock_child_pid"])
    assert [summary["sections"][n]["status"] for n in ("graphs", "large", "bench", "sanitize")] == ["ok"] * 4
    assert p.returncode == 1 and "failed: tests" in stdout


def test_the_window_stopped_mid_section_takes_the_section_with_it_and_says_so(tmp_path):
    out = tmp_path / "out"
    env = check_env(tmp_path, HELMHOLTZ_GPU_CHECK_DRY="1", HELMHOLTZ_GPU_CHECK_MOCK="graphs=hang", HZ_GPU_CHECK_CAPS="graphs=120")
    p = subprocess.Popen([sys.executable, str(TOOLS / "gpu_check.py"), "--out", str(out)], env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            log = out / "gpu_check.log"
            if log.exists() and "mock graphs: hang" in log.read_text() and "mock_child_pid" in log.read_text().split("graphs")[-1]:
                break
            time.sleep(0.1)
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    summary = json.loads((out / "gpu_check.json").read_text())
    graphs = summary["sections"]["graphs"]
    assert graphs["status"] == "failed" and "SIGTERM" in graphs["reason"]
    assert summary["stopped"] == "interrupted by SIGTERM"
    child = [json.loads(ln[len(gw.FIGURES_TAG):]) for ln in (out / "gpu_check.log").read_text().splitlines()
             if ln.startswith(gw.FIGURES_TAG) and "mock_child_pid" in ln][-1]["mock_child_pid"]
    time.sleep(0.5)
    assert not alive(child) and not alive(graphs["pid"])


@pytest.mark.parametrize("how,status,reason", [
    ("fail", "failed", "mock failure"),
    ("crash", "failed", "killed by SIGKILL"),
    ("silent", "failed", "ended without a result line: nothing was reported"),
    ("skip", "skipped", "mock skip"),
])
def test_a_section_is_ok_only_when_it_says_so_and_exits_0(tmp_path, how, status, reason):
    r, summary = dry(tmp_path, mock=f"large={how}", args=["--only", "build,large,bench"])
    assert summary["sections"]["large"]["status"] == status
    assert summary["sections"]["large"]["reason"] == reason
    assert summary["sections"]["bench"]["status"] == "ok"
    assert r.returncode == (0 if status == "skipped" else 1)


def test_a_failed_build_skips_what_needs_it(tmp_path):
    r, summary = dry(tmp_path, mock="build=fail")
    assert summary["sections"]["build"]["status"] == "failed"
    for name in ("compile", "tests", "bench", "sanitize"):
        assert summary["sections"][name]["status"] == "skipped"
    assert summary["sections"]["compile"]["reason"] == "needs build, which did not pass"
    assert summary["sections"]["tests"]["reason"] == "needs compile, which did not pass"


def test_sections_that_no_longer_fit_the_budget_are_skipped_as_such(tmp_path):
    r, summary = dry(tmp_path, mock=",".join(f"{n}=sleep3" for n in SECTIONS), args=["--budget-s", "20"])
    statuses = [summary["sections"][n]["status"] for n in SECTIONS]
    assert statuses[:2] == ["ok", "ok"] and statuses[-1] == "skipped"
    assert "out of time" in summary["sections"]["sanitize"]["reason"]
    assert summary["elapsed_s"] < 20 + gw.GRACE_S + 5


def test_mock_env_without_a_gpu_stops_the_dry_run_with_one_line(tmp_path):
    r, summary = dry(tmp_path, mock="env=nogpu")
    assert r.returncode == 3
    assert r.stdout.strip().splitlines()[-1].startswith("gpu_check: no CUDA GPU visible here: the check stopped after env")
    assert {n: s["status"] for n, s in summary["sections"].items() if n != "env"} == dict.fromkeys(SECTIONS[1:], "not run")


def test_without_a_gpu_the_real_check_stops_after_env_with_one_clear_line(tmp_path):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, str(TOOLS / "gpu_check.py"), "--out", str(out)], env=check_env(tmp_path),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 3
    assert [ln for ln in r.stdout.splitlines() if "no CUDA GPU visible here" in ln] == [
        "gpu_check: no CUDA GPU visible here: the check stopped after env (see gpu_check.json: sections.env.figures.gpu)"]
    summary = json.loads((out / "gpu_check.json").read_text())
    env = summary["sections"]["env"]
    assert env["status"] == "failed" and env["figures"]["gpu"]["available"] is False
    assert env["figures"]["setuptools_floor"]["required"] == ">=77"
    assert {"setuptools", "Cython", "gcc", "nvcc"} <= set(env["figures"]["build_tools"])
    assert "torch" in env["figures"]["packages"] and "kornia" in env["figures"]["peers"]
    assert [summary["sections"][n]["status"] for n in SECTIONS[1:]] == ["not run"] * 7


def test_caps_and_section_names_are_checked(tmp_path):
    out = tmp_path / "out"
    bad = subprocess.run([sys.executable, str(TOOLS / "gpu_check.py"), "--out", str(out), "--only", "bnech"],
                         env=check_env(tmp_path), capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "unknown section 'bnech'" in bad.stderr
    bad = subprocess.run([sys.executable, str(TOOLS / "gpu_check.py"), "--plan"], env=check_env(tmp_path, HZ_GPU_CHECK_CAPS="bench=x"),
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "'bench=x' is not name=seconds" in bad.stderr
    plan = subprocess.run([sys.executable, str(TOOLS / "gpu_check.py"), "--plan"], env=check_env(tmp_path),
                          capture_output=True, text=True, timeout=60)
    assert plan.returncode == 0 and "timeout_s=360" in plan.stdout and "sanitize <= 90 s" in plan.stdout


def test_the_default_budget_leaves_the_rerun_margin_the_docs_state():
    import gpu_check
    import gpu_science

    assert gpu_check.BUDGET_S == 300 and gpu_check.TIMEOUT_S == 360
    assert gpu_science.BUDGET_S <= 420 and gpu_science.TIMEOUT_S == 420
    assert gpu_science.PAPER_QUALITIES == (1, 5, 10, 15, 20, 25, 50, 75, 100)
    args = gpu_science.parser().parse_args([])
    assert args.qualities == gpu_science.PAPER_QUALITIES and args.budget_s == gpu_science.BUDGET_S
    readme = (TOOLS / "README-gpu-check.md").read_text()
    assert 'run(command="bash tools/gpu_check.sh", carry=["gpu-data", ".whl"], timeout_s=360)' in readme
    assert 'run(command="bash tools/gpu_science.sh", carry=["gpu-data"], timeout_s=420)' in readme
    guide = (ROOT / "docs" / "guide" / "gpu.md").read_text()
    assert "timeout_s=360" in guide and "timeout_s=420" in guide


# ---- the sections' and the benchmark's own logic, run on the host ------------------------------------

@pytest.fixture
def host_cuda(monkeypatch):
    """torch.cuda's calls that the sections make, answered on the host (for their plumbing only)."""
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda *a, **k: None)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a, **k: "host stand-in")
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    return torch


@pytest.fixture
def tiny_cifar(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:32, :32]

    def images(n):
        base = yy[None, :, :, None] * rng.integers(1, 8, (n, 1, 1, 3)) + xx[None, :, :, None] * rng.integers(1, 8, (n, 1, 1, 3))
        return ((base + rng.integers(0, 48, (n, 32, 32, 3))) % 256).astype(np.uint8)

    path = tmp_path / "cifar10.npz"
    np.savez(path, x_train=images(120), y_train=np.arange(120) % 10, x_test=images(40), y_test=np.arange(40) % 10)
    return path


def test_bench_plumbing_on_the_host_writes_every_kind_of_row(host_cuda, monkeypatch, tmp_path, tiny_cifar):
    import bench_cuda

    monkeypatch.setattr(bench_cuda, "DEVICE", "cpu")
    monkeypatch.setattr(bench_cuda, "BACKEND", "cpu")
    out = tmp_path / "bench.json"
    rc = bench_cuda.main(["--data", str(tiny_cifar), "--cifar", "64", "--peer-images", "8", "--big", "1", "--repeat", "1",
                          "--peer-repeat", "1", "--min-sample-ms", "1", "--max-batch-pixels", str(1 << 13),
                          "--peers", "kornia,dali", "--json", str(out)])
    assert rc == 0
    doc = json.loads(out.read_text())
    assert doc["data"] == {"source": str(tiny_cifar), "kind": "cifar10.npz", "images": 160, "synthetic": False}
    rows = {(r["case"], r["set"], r["subsampling"]): r for r in doc["rows"]}
    for ss in ("4:2:0", "4:4:4"):
        assert rows[("helmholtz uint8->uint8, one quality", "CIFAR", ss)]["equal_to_pillow"] == 1.0
        for size in (32, 64, 224, 512):
            assert ("sizes: helmholtz uint8->uint8, one quality", f"{size}x{size}", ss) in rows
    many = rows[("helmholtz roundtrip_many, the paper's nine qualities", "CIFAR", "4:2:0")]
    assert many["outputs_per_image"] == 9 and many["equal_to_pillow"] == 1.0
    assert many["gpixel_s"] == pytest.approx(9 * 64 * 1024 / many["seconds_per_call"] / 1e9)  # every output counted
    assert rows[("sweep codec: transforms.compress_many from host NumPy (incl. H2D)", "subset", "4:2:0")]["includes_h2d"] is True
    assert rows[("sweep codec: carried set, nine qualities (device-resident)", "subset", "4:2:0")]["includes_h2d"] is False
    assert all(r["calls_per_sample"] >= 1 and r["seconds_per_call"] > 0 for r in doc["rows"])
    assert "DALI jpeg_compression_distortion (CIFAR)" in doc["skipped"]
    assert doc["targets"]["cifar_420_uint8_roundtrip_gpixel_s"]["target"] == 100.0
    assert doc["targets"]["images_s_vs_nvjpeg_per_image"]["met"] is None  # no nvJPEG here: no verdict
    assert doc["complete"] is True


@pytest.mark.parametrize("subsampling", ["4:2:0", "4:2:2", "4:4:4"])
def test_the_bench_reads_the_subsampling_a_peer_wrote(subsampling):
    import io

    import bench_cuda
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.zeros((16, 24, 3), np.uint8)).save(buf, "JPEG", quality=75, subsampling=subsampling)
    assert bench_cuda.jpeg_subsampling(buf.getvalue()) == subsampling
    buf = io.BytesIO()
    Image.fromarray(np.zeros((16, 24), np.uint8)).save(buf, "JPEG", quality=75)
    assert bench_cuda.jpeg_subsampling(buf.getvalue()) == "gray"


def test_bench_skips_what_its_budget_leaves_no_time_for(host_cuda, monkeypatch, tmp_path, tiny_cifar):
    import bench_cuda

    monkeypatch.setattr(bench_cuda, "DEVICE", "cpu")
    monkeypatch.setattr(bench_cuda, "BACKEND", "cpu")
    out = tmp_path / "bench.json"
    assert bench_cuda.main(["--data", str(tiny_cifar), "--cifar", "64", "--repeat", "1", "--min-sample-ms", "1", "--peers", "",
                            "--budget-s", "0.001", "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["complete"] is False and "helmholtz CIFAR" in doc["skipped"] and doc["rows"] == []


def test_bench_refuses_without_a_gpu_rather_than_time_the_host(tmp_path):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_cuda.py"), "--json", str(tmp_path / "b.json")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "no CUDA GPU visible" in r.stdout and "nothing was measured" in r.stdout
    assert not (tmp_path / "b.json").exists()


def run_section(fn, capsys) -> tuple[dict, dict]:
    fn(Path("."))
    return gw.parse(capsys.readouterr().out)


def test_compile_and_large_sections_on_the_host(host_cuda, monkeypatch, tmp_path, capsys):
    import gpu_check

    monkeypatch.setattr(gpu_check, "DEVICE", "cpu")
    monkeypatch.setattr(gpu_check, "BACKEND", "cpu")
    monkeypatch.setattr(gpu_check, "DATA_DIR", tmp_path / "no-data")
    monkeypatch.setenv("CUPY_CACHE_DIR", str(tmp_path / "cache"))
    figs, verdict = run_section(gpu_check.section_compile, capsys)
    assert verdict == {"status": "ok", "reason": None}
    assert figs["equal_to_cpu"] is True and figs["output_on_gpu"] is True and figs["data"].startswith("synthetic")
    monkeypatch.setattr(gpu_check, "LARGE_CASES", (("cifar_small", 50, 32, 32), ("odd_small", 3, 40, 24)))
    figs, verdict = run_section(gpu_check.section_large, capsys)
    assert verdict == {"status": "ok", "reason": None}
    assert figs["cifar_small"]["equal_uint8"] and figs["cifar_small"]["equal_float32"] and figs["cifar_small"]["equal_bits"]
    assert figs["odd_small"]["equal_uint8"] and figs["odd_small"]["bytes_in"] == 3 * 40 * 24 * 3
    chunked = gpu_check.structured_images(host_cuda, 10, 8, 8, seed=1, chunk_bytes=3 * 8 * 8 * 3 * 4)  # four chunks
    assert chunked.shape == (10, 8, 8, 3) and chunked.dtype == host_cuda.uint8 and len(chunked.unique()) > 50


def test_the_tests_section_fails_when_the_cuda_tests_skip(capsys):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    import gpu_check

    figs, verdict = run_section(gpu_check.section_tests, capsys)
    assert verdict["status"] == "failed" and "CUDA tests skipped" in verdict["reason"]
    assert figs["skipped"] and " passed" not in figs["pytest"]


# ---- the science run, on the CPU --------------------------------------------------------------------

def test_choose_epochs_fits_the_time_left_and_records_why():
    import gpu_science

    probe = {"epoch_s": 2.0, "fixed_s": 20.0, "rounds": 1}
    chosen = gpu_science.choose_epochs(probe, left_s=110.0, max_epochs=30)
    assert chosen["fit"] == 40  # (110 / 1.1 - 20) / 2
    assert chosen["epochs"] == 30 and chosen["predicted_sweep_s"] == 80.0  # capped at max_epochs
    assert gpu_science.choose_epochs({**probe, "rounds": 3}, 110.0, 30)["epochs"] == 13  # 80 / (3 * 2)
    assert gpu_science.choose_epochs(probe, 15.0, 30)["epochs"] == 0


@pytest.mark.slow
def test_science_runs_end_to_end_on_the_cpu(tmp_path, tiny_cifar):
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, str(TOOLS / "gpu_science.py"), "--out", str(out), "--device", "cpu", "--budget-s", "240",
                        "--qualities", "5,100", "--train-subset", "60", "--test-subset", "40", "--trials-per-device", "2",
                        "--max-epochs", "2", "--data", str(tiny_cifar)],
                       env=check_env(tmp_path), capture_output=True, text=True, timeout=400)
    summary = json.loads((out / "science.json").read_text())
    assert r.returncode == 0, r.stdout[-3000:]
    assert [n for n in summary["sections"]] == ["env", "build", "probe", "sweep", "report"]
    assert all(s["status"] == "ok" for s in summary["sections"].values())
    chosen = summary["chosen"]
    assert 1 <= chosen["epochs"] <= 2 and chosen["max_epochs"] == 2 and "rule" in chosen and "sweep_took_s" in chosen
    probe = summary["sections"]["probe"]["figures"]
    assert probe["trials"] == 2 and probe["epoch_s"] > 0 and probe["rounds"] == 1 and probe["aggregate_images_per_s"] > 0
    report = summary["sections"]["report"]["figures"]
    assert [row["quality"] for row in report["table"]] == [5, 100]
    assert all(row["bpp"] > 0 and len(row["accuracy_curve"]) == chosen["epochs"] for row in report["table"])
    assert report["helmholtz"][0]["model"] == "A" and report["helmholtz"][0]["H_bits_per_pixel"] > 0
    files = sorted(p.name for p in out.iterdir())
    assert files == ["accuracy_vs_bpp.png", "accuracy_vs_quality.png", "convergence_vs_quality.png", "science.json",
                     "science.jsonl", "science.log", "science_report.json"]
    assert "model A, recipe fast" in r.stdout + (out / "science.log").read_text()


# ---- what travels -----------------------------------------------------------------------------------

def test_slim_wheel_keeps_what_is_asked_and_its_record_matches(tmp_path):
    import fetch_gpu_wheels

    src = tmp_path / "demo-1.0-py3-none-any.whl"
    with zipfile.ZipFile(src, "w") as z:
        z.writestr("demo/__init__.py", "X = 1\n")
        z.writestr("demo/big.bin", b"\0" * 1000)
        z.writestr("demo-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n")
        z.writestr("demo-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        z.writestr("demo-1.0.dist-info/RECORD", "stale\n")
    dest = tmp_path / "slim" / src.name
    dest.parent.mkdir()
    info = fetch_gpu_wheels.slim_wheel(src, dest, lambda name: not name.endswith("big.bin"))
    assert info["removed"] == ["demo/big.bin"]
    with zipfile.ZipFile(dest) as z:
        names = set(z.namelist())
        record = z.read("demo-1.0.dist-info/RECORD").decode().splitlines()
    assert "demo/big.bin" not in names
    assert {ln.split(",")[0] for ln in record} == names
    target = tmp_path / "site"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--target", str(target), str(dest)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert (target / "demo" / "__init__.py").exists() and not (target / "demo" / "big.bin").exists()


def test_the_slimmed_nvimgcodec_keeps_the_312_binding_the_core_and_nvjpeg_only():
    import fetch_gpu_wheels as f

    keep = f.keep_nvimgcodec
    assert keep("nvidia/nvimgcodec/nvimgcodec_impl.cpython-312-x86_64-linux-gnu.so")
    assert not keep("nvidia/nvimgcodec/nvimgcodec_impl.cpython-311-x86_64-linux-gnu.so")
    assert not keep("nvidia/nvimgcodec/nvimgcodec_impl.cpython-313t-x86_64-linux-gnu.so")
    assert keep("nvidia/nvimgcodec/libnvimgcodec.so.0") and keep("nvidia/nvimgcodec/__init__.py")
    assert keep("nvidia/nvimgcodec/extensions/libnvjpeg_ext.so.0.9.0")
    assert not keep("nvidia/nvimgcodec/extensions/libopencv_ext.so.0.9.0")
    assert not keep("nvidia/nvimgcodec/include/nvimgcodec.h")
    assert "nvidia-dali-cuda130" in f.LEFT_OUT and "nvidia-dali-cuda130" not in f.WANTED


def test_dist_info_gives_a_tree_run_in_place_its_entry_points(tmp_path):
    import configparser

    info = build_prebuilt.write_dist_info(tmp_path)
    assert info.name == "helmholtz_ml-0.1.0.dist-info"
    entry = configparser.ConfigParser(delimiters=("=",))
    entry.read_string((info / "entry_points.txt").read_text())
    assert entry["helmholtz.codec_backends"]["cpu"] == "helmholtz._codec.native:CpuBackend"
    assert entry["helmholtz.trial_runners"]["image"] == "helmholtz.experiments.image_runner:RUNNER"
    assert "Name: helmholtz-ml" in (info / "METADATA").read_text()


def test_the_prebuilt_extension_is_stale_once_a_source_changes(tmp_path):
    for rel in ("csrc/hz_codec.c", "csrc/hz_block.h", "helmholtz/_codec/native.pyx", "setup.py"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(rel)
    before = build_prebuilt.sources_sha256(tmp_path)
    (tmp_path / "csrc" / "hz_block.h").write_text("changed")
    assert build_prebuilt.sources_sha256(tmp_path) != before
    (tmp_path / "csrc" / "notes.md").write_text("not a source")
    assert build_prebuilt.sources_sha256(tmp_path) == build_prebuilt.sources_sha256(tmp_path)


def test_nvrtc_builtins_are_taken_from_the_folder_of_the_library(tmp_path):
    import nvrtc_check

    lib = tmp_path / "nvidia" / "cu13" / "lib"
    lib.mkdir(parents=True)
    for name in ("libnvrtc.so.13", "libnvrtc.alt.so.13", "libnvrtc-builtins.so.13.0", "libnvrtc-builtins.alt.so.13.0"):
        (lib / name).write_bytes(b"")
    assert nvrtc_check.builtins_beside(str(lib / "libnvrtc.so.13")) == str(lib / "libnvrtc-builtins.so.13.0")
    sys.path.insert(0, str(tmp_path))
    try:
        assert nvrtc_check.nvrtc_candidates()[0] == str(lib / "libnvrtc.so.13")
    finally:
        sys.path.remove(str(tmp_path))
    assert nvrtc_check.builtins_beside(str(tmp_path / "libnvrtc.so.13")) is None


# ---- no silent host fallback in the library ---------------------------------------------------------

def test_compress_many_says_why_it_falls_back_to_the_host_and_refuses_when_asked(monkeypatch):
    torch = pytest.importorskip("torch")
    from helmholtz._ml import device_data
    from helmholtz.errors import BackendUnavailable

    monkeypatch.setattr(device_data, "torch_device", lambda device, name="device": type("Dev", (), {"type": "cuda"})())
    monkeypatch.setattr(torch.Tensor, "to", lambda self, *a, **k: self)  # where this CPU-only torch cannot move tensors

    def no_cuda(images, qualities, *, subsampling="4:2:0", backend="auto"):
        if backend == "cuda":
            raise BackendUnavailable("the 'cuda' backend needs CuPy (test)")
        return torch.stack([torch.as_tensor(images)] * len(qualities))

    monkeypatch.setattr(device_data.jpeg, "roundtrip_many", no_cuda)
    x = np.zeros((2, 8, 8, 3), np.uint8)
    with pytest.warns(RuntimeWarning, match=r"compressing on the host, not on the GPU: .*needs CuPy \(test\).*fallback=False"):
        out = device_data.compress_many(x, [50], device="cuda")
    assert out.shape == (1, 2, 8, 8, 3)
    with pytest.raises(BackendUnavailable, match=r"fallback=False\): the 'cuda' backend needs CuPy"):
        device_data.compress_many(x, [50], device="cuda", fallback=False)
    with pytest.raises(TypeError, match="fallback must be True or False"):
        device_data.compress_many(x, [50], device="cuda", fallback="no")
