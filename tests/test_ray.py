"""The Ray executor: a local instance, an unreachable cluster, and a two-node cluster that loses a node mid-trial."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")
pytest.importorskip("torch")

from helmholtz.cli import main as cli_main  # noqa: E402
from helmholtz.experiments.store import ResultStore  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
RAY = shutil.which("ray", path=str(Path(sys.executable).parent)) or shutil.which("ray")


def tiny(data, out, qualities="10,90", epochs="1"):
    return ["--data-dir", str(data), "--models", "A", "--qualities", qualities, "--train-subset", "32", "--test-subset", "16",
            "--epochs", epochs, "--recipe", "fast", "--no-progress", "--out", str(out)]


def test_a_local_ray_instance_adds_to_the_same_database_without_duplicates(tmp_path, tiny_cifar_dir):
    out = tmp_path / "out"
    assert cli_main(["sweep", *tiny(tiny_cifar_dir, out, "10")]) == 0  # one trial first, locally
    assert not ray.is_initialized()
    assert cli_main(["sweep", *tiny(tiny_cifar_dir, out), "--executor", "ray", "--ray-num-cpus", "2"]) == 0
    assert not ray.is_initialized()  # the local instance it started was shut down
    recs = ResultStore(out, readonly=True).records()
    assert sorted(r["quality"] for r in recs) == [10, 90] and len({r["key"] for r in recs}) == 2
    ray_rec = next(r for r in recs if r["quality"] == 90)
    assert ray_rec["params"] == 701_386 and len(ray_rec["accuracy_curve"]) == 1 and ray_rec["extra"]["ray_node_id"]
    assert (out / ray_rec["weights"]).is_file()
    assert cli_main(["sweep", *tiny(tiny_cifar_dir, out), "--executor", "ray", "--ray-num-cpus", "1"]) == 0
    assert len(ResultStore(out, readonly=True).records()) == 2


def test_an_unreachable_ray_address_fails_within_30_seconds(tmp_path, tiny_cifar_dir, capsys):
    t0 = time.monotonic()
    # 10.255.255.1 is not routed: the connection attempt hangs until helmholtz's own timeout
    assert cli_main(["sweep", *tiny(tiny_cifar_dir, tmp_path / "out"), "--executor", "ray", "--ray-address", "10.255.255.1:6379"]) == 2
    assert time.monotonic() - t0 < 30
    err = capsys.readouterr().err
    assert "no Ray cluster answers at 10.255.255.1:6379" in err and "Traceback" not in err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ray_python(address: str, code: str) -> str:
    """Run ``code`` in a fresh Python connected to the cluster (this test process never joins it)."""
    prog = f"import json, ray; ray.init(address={address!r}, log_to_driver=False, configure_logging=False)\n{code}"
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    done = subprocess.run([sys.executable, "-c", prog], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


@pytest.mark.slow
@pytest.mark.skipif(RAY is None, reason="the ray command line is not installed")
def test_a_trial_on_a_killed_node_runs_again_on_the_other_and_is_stored_once(tmp_path, tiny_cifar_dir):
    port = _free_port()
    address = f"127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]), "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled",
           "OMP_NUM_THREADS": "1"}
    worker = None
    try:
        subprocess.run([RAY, "start", "--head", f"--port={port}", "--num-cpus=1", "--include-dashboard=false", "--disable-usage-stats"],
                       env=env, check=True, capture_output=True, timeout=180)
        head_id = _ray_python(address, "print(ray.get_runtime_context().get_node_id())")
        worker = subprocess.Popen([RAY, "start", f"--address={address}", "--num-cpus=1", "--block", "--disable-usage-stats"],
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and int(_ray_python(address, "print(sum(n['Alive'] for n in ray.nodes()))")) < 2:
            time.sleep(1)
        nodes = json.loads(_ray_python(address, "print(json.dumps([n['NodeID'] for n in ray.nodes() if n['Alive']]))"))
        assert len(nodes) == 2 and head_id in nodes
        worker_id = next(n for n in nodes if n != head_id)

        out = tmp_path / "out"
        argv = [sys.executable, "-c", "import sys; from helmholtz.cli import main; sys.exit(main(['sweep', *sys.argv[1:]]))",
                *tiny(tiny_cifar_dir, out, "20,80", epochs="40"), "--executor", "ray", "--ray-address", address]
        sweep = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # wait until both CPUs of the cluster are busy: one trial runs on each node; then kill the worker node at once
        busy = "print(ray.available_resources().get('CPU', 0.0))"
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and sweep.poll() is None and float(_ray_python(address, busy)) > 0:
            time.sleep(1)
        assert sweep.poll() is None, "the sweep ended before the worker node could be killed"
        time.sleep(2)
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=30)
        stdout, stderr = sweep.communicate(timeout=900)
        assert sweep.returncode == 0, stderr[-3000:]
        recs = ResultStore(out, readonly=True).records()
        assert sorted(r["quality"] for r in recs) == [20, 80] and len({r["key"] for r in recs}) == 2  # each stored exactly once
        assert {r["extra"]["ray_node_id"] for r in recs} == {head_id}  # the killed node's trial ran again on the head
    finally:
        if worker is not None and worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
        subprocess.run([RAY, "stop", "--force"], env=env, capture_output=True, timeout=120)
