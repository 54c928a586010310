"""The Ray executor on a local CPU instance with a tiny sweep."""

import pytest

ray = pytest.importorskip("ray")
pytest.importorskip("torch")

from helmholtz.cli import main as cli_main
from helmholtz.experiments import recipes, runners, sweep
from helmholtz.experiments.store import ResultStore


def test_ray_executor_local_cpu(tmp_path, tiny_cifar_dir):
    out = tmp_path / "out"
    common = ["--data-dir", str(tiny_cifar_dir), "--models", "A", "--qualities", "10,90", "--train-subset", "32",
              "--test-subset", "16", "--epochs", "1", "--recipe", "fast", "--no-progress", "--out", str(out)]
    # one trial first, locally: the Ray run must skip it and add the other to the same database
    assert cli_main(["sweep", *[*common[:5], "10", *common[6:]]]) == 0
    assert not ray.is_initialized()
    assert cli_main(["sweep", *[*common, "--executor", "ray", "--ray-num-cpus", "2"]]) == 0
    assert not ray.is_initialized()  # the local instance it started was shut down
    recs = ResultStore(out).records()
    assert sorted(r["quality"] for r in recs) == [10, 90]
    assert len({r["key"] for r in recs}) == 2
    ray_rec = next(r for r in recs if r["quality"] == 90)
    assert ray_rec["params"] == 701_386 and len(ray_rec["accuracy_curve"]) == 1 and ray_rec["wall_time_s"] > 0
    # again: nothing left to do, nothing duplicated
    assert cli_main(["sweep", *[*common, "--executor", "ray", "--ray-num-cpus", "1"]]) == 0
    assert len(ResultStore(out).records()) == 2
