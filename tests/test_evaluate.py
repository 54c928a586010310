"""Evaluations of finished trials: cross-quality, FGSM/PGD, JPEG as a defence (BPDA), stored once each."""

import csv
import io
import json
import re

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("tqdm")

from helmholtz import jpeg  # noqa: E402
from helmholtz._ml.attacks import fgsm, pgd  # noqa: E402
from helmholtz.cli import main as cli_main  # noqa: E402
from helmholtz.experiments.evaluate import EVAL_PRESETS, EvalPlan, parse_eps, parse_eval_qualities, requests_for  # noqa: E402
from helmholtz.experiments.store import ResultStore  # noqa: E402
from helmholtz.transforms import jpeg_tensor  # noqa: E402

BASE = ["--models", "A", "--seeds", "0", "--train-subset", "48", "--test-subset", "24", "--epochs", "2", "--recipe", "fast", "--no-progress"]
ATTACKS = ["--attacks", "fgsm,pgd", "--eps", "0,8", "--attack-subset", "24"]


def sweep(data, out, qualities="20,100", *more):
    return cli_main(["sweep", "--data-dir", str(data), "--qualities", qualities, *BASE, "--out", str(out), *more])


def evaluations(out):
    with ResultStore(out, readonly=True) as s:
        return s.evaluations(), {r["key"]: r for r in s.records()}


def by(rows, trials, **want):
    out = []
    for e in rows:
        t = trials[e["trial_key"]]
        row = {**e, "quality": t["quality"], "model": t["model"]}
        if all(row[k] == v for k, v in want.items()):
            out.append(row)
    return out


# ------------------------------------------------------------------ the plan
def test_presets_eps_and_requests_follow_the_protocol():
    assert EVAL_PRESETS["cifar10-c"] == (80, 65, 58, 50, 40)
    assert parse_eval_qualities("cifar10-c,none,10,80") == (80, 65, 58, 50, 40, None, 10)
    assert parse_eps("2, 8") == (2.0, 8.0)
    for bad in ("256", "-1", "x"):
        with pytest.raises(ValueError, match="eps"):
            parse_eps(bad)
    plan = EvalPlan(eval_qualities=(10, None), attacks=("fgsm",), eps=(2.0,), attack_subset=8, defense_qualities=(50,))
    reqs, notes = requests_for(plan, "quality", 20)
    assert [(r.eval, r.eval_quality, r.eps, r.defense_quality, r.images) for r in reqs] == [
        ("clean", 10, 0.0, None, None), ("clean", None, 0.0, None, None),
        ("fgsm", 20, 2.0, None, 8),  # threat (a): the model alone, on test images at its training quality
        ("fgsm", None, 2.0, 50, 8),  # threat (b): JPEG_50 -> model, on uncompressed test images
    ] and notes == []
    audio, notes = requests_for(EvalPlan(eval_bitrates=(8.0, None), attacks=("pgd",), eps=(2.0,)), "bitrate", 32.0)
    assert [(r.eval, r.eval_bitrate) for r in audio] == [("clean", 8.0), ("clean", None)]
    assert any("attacks on spectrogram models are not run" in n for n in notes)
    with pytest.raises(ValueError, match="--eps"):
        EvalPlan(attacks=("fgsm",))


# ------------------------------------------------------------------ the attacks against a well-kept library
def _small_model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(2), torch.nn.Flatten(),
                               torch.nn.Linear(32, 10)).eval()


def test_fgsm_and_pgd_match_the_adversarial_robustness_toolbox_on_the_same_model():
    art = pytest.importorskip("art")
    from art.attacks.evasion import FastGradientMethod, ProjectedGradientDescent
    from art.estimators.classification import PyTorchClassifier

    model = _small_model()
    x = torch.rand(16, 3, 8, 8)
    y = torch.randint(0, 10, (16,))
    clf = PyTorchClassifier(model=model, loss=torch.nn.CrossEntropyLoss(), input_shape=(3, 8, 8), nb_classes=10, clip_values=(0.0, 1.0))
    eps = 8 / 255
    theirs = FastGradientMethod(clf, norm=np.inf, eps=eps, batch_size=16).generate(x.numpy(), y=np.eye(10)[y.numpy()])
    np.testing.assert_allclose(fgsm(model, x, y, eps).numpy(), theirs, atol=1e-6)
    theirs = ProjectedGradientDescent(clf, norm=np.inf, eps=eps, eps_step=eps / 4, max_iter=10, num_random_init=0, batch_size=16,
                                      verbose=False).generate(x.numpy(), y=np.eye(10)[y.numpy()])
    np.testing.assert_allclose(pgd(model, x, y, eps, random_start=False).numpy(), theirs, atol=1e-6)
    assert art.__version__


def test_pgd_stays_in_the_eps_ball_and_is_reproducible_for_a_seed():
    model = _small_model()
    x, y = torch.rand(8, 3, 8, 8), torch.randint(0, 10, (8,))
    a = pgd(model, x, y, 4 / 255, generator=torch.Generator().manual_seed(3))
    b = pgd(model, x, y, 4 / 255, generator=torch.Generator().manual_seed(3))
    c = pgd(model, x, y, 4 / 255, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert (a - x).abs().max() <= 4 / 255 + 1e-7 and a.min() >= 0 and a.max() <= 1
    assert torch.equal(fgsm(model, x, y, 0.0), x) and torch.equal(pgd(model, x, y, 0.0), x)


def test_the_straight_through_path_reaches_the_input():
    model = _small_model()
    x = torch.rand(4, 3, 16, 16, requires_grad=True)
    model(jpeg_tensor(x, 20, grad="ste")).sum().backward()
    compressed = torch.from_numpy(jpeg.roundtrip(np.ascontiguousarray((x.detach() * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()), 20))
    z = (compressed.permute(0, 3, 1, 2).float() / 255).requires_grad_(True)
    model(z).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    torch.testing.assert_close(x.grad, z.grad)  # d model(JPEG(x)) / dx taken as model'(JPEG(x)): BPDA


# ------------------------------------------------------------------ evaluations of a sweep
def test_eps_zero_equals_clean_accuracy_and_attacks_never_beat_it(tmp_path, tiny_cifar_dir):
    out = tmp_path / "out"
    assert sweep(tiny_cifar_dir, out, "20,100", "--eval-qualities", "20,100,none", *ATTACKS, "--defense-qualities", "50") == 0
    rows, trials = evaluations(out)
    assert len(rows) == 2 * (3 + 2 * 2 * 2)  # per trial: 3 clean + 2 attacks x 2 eps x (alone + 1 defence)
    for q in (20, 100):
        clean = by(rows, trials, quality=q, eval="clean", eval_quality=q)[0]["accuracy"]
        for name in ("fgsm", "pgd"):
            assert by(rows, trials, quality=q, eval=name, eps=0.0, defense_quality=None)[0]["accuracy"] == clean
            robust = by(rows, trials, quality=q, eval=name, eps=8.0, defense_quality=None)[0]["accuracy"]
            assert robust <= clean + 1 / 24  # allowing one image of noise
        f = by(rows, trials, quality=q, eval="fgsm", eps=8.0, defense_quality=None)[0]["accuracy"]
        p = by(rows, trials, quality=q, eval="pgd", eps=8.0, defense_quality=None)[0]["accuracy"]
        assert p <= f + 1 / 24  # PGD is no weaker than FGSM
        assert all(r["images"] == 24 for r in by(rows, trials, quality=q) if r["eval"] != "clean")


def test_evaluations_are_deterministic_for_a_seed(tmp_path, tiny_cifar_dir):
    results = []
    for name in ("a", "b"):
        assert sweep(tiny_cifar_dir, tmp_path / name, "30", *ATTACKS, "--defense-qualities", "40") == 0
        rows, _ = evaluations(tmp_path / name)
        results.append(sorted((r["key"], r["accuracy"]) for r in rows))
    assert results[0] == results[1]


def test_adding_evaluations_trains_nothing_again_and_a_rerun_adds_nothing(tmp_path, tiny_cifar_dir, capsys):
    out = tmp_path / "out"
    assert sweep(tiny_cifar_dir, out, "20") == 0
    capsys.readouterr()
    trained = (out / "results.sqlite").stat().st_mtime, evaluations(out)[1]
    assert sweep(tiny_cifar_dir, out, "20", "--eval-qualities", "cifar10-c") == 0
    text = capsys.readouterr().out
    assert "0 trial(s) run, 1 already done, of 1, 5 evaluation(s) computed" in text
    rows, trials = evaluations(out)
    assert trials == trained[1] and sorted(r["eval_quality"] for r in rows) == [40, 50, 58, 65, 80]
    assert sweep(tiny_cifar_dir, out, "20", "--eval-qualities", "cifar10-c,10") == 0
    assert "1 evaluation(s) computed" in capsys.readouterr().out  # only the missing one
    before = evaluations(out)
    assert sweep(tiny_cifar_dir, out, "20", "--eval-qualities", "cifar10-c,10") == 0
    assert "0 evaluation(s) computed" in capsys.readouterr().out
    assert evaluations(out) == before


def test_bad_evaluation_arguments_are_refused_before_any_work(tmp_path, tiny_cifar_dir, capsys):
    out = tmp_path / "out"
    for more, msg in [
        (["--attacks", "fgsm", "--eps", "300"], "argument --eps: must be in 0..255"),
        (["--attacks", "cw", "--eps", "2"], "argument --attacks: must be among fgsm, pgd"),
        (["--attacks", "fgsm", "--eps", "2", "--attack-subset", "25"], "--attack-subset 25 is larger than the test set of cifar10 (24 images)"),
        (["--attacks", "fgsm"], "--attacks needs --eps"),
        (["--eval-qualities", "0"], "quality must be in 1..100"),
        (["--attacks", "pgd", "--eps", "2", "--defense-qualities", "101"], "--defense-qualities"),
    ]:
        assert exit_code(lambda: sweep(tiny_cifar_dir, out, "20", *more)) == 2
        assert msg in capsys.readouterr().err, msg
        assert not out.exists()


def exit_code(run):
    """The status of a CLI call, whether argparse exits (bad argument types) or main returns."""
    try:
        return run()
    except SystemExit as exc:
        return exc.code


def test_the_report_lists_evaluations_in_every_format_with_its_plots(tmp_path, tiny_cifar_dir, capsys):
    pytest.importorskip("pandas")
    pytest.importorskip("matplotlib")
    out = tmp_path / "out"
    assert sweep(tiny_cifar_dir, out, "20,100", "--eval-qualities", "20,100,none", *ATTACKS, "--defense-qualities", "50") == 0
    capsys.readouterr()
    assert cli_main(["report", str(out), "--format", "json", "--no-plots"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert len(doc["evaluations"]) == 22
    e = doc["evaluations"][0]
    assert {"model", "quality", "seed", "eval", "eval_quality", "eps", "defense_quality", "accuracy", "accuracy_ci_low", "accuracy_ci_high", "images"} <= set(e)
    from helmholtz.experiments.intervals import wilson_interval

    for x in doc["evaluations"]:  # every accuracy carries its 95% Wilson interval on the images it was measured on
        assert (x["accuracy_ci_low"], x["accuracy_ci_high"]) == pytest.approx(wilson_interval(x["accuracy"], x["images"]))
        assert x["accuracy_ci_low"] <= x["accuracy"] <= x["accuracy_ci_high"]
    assert {x["eval"] for x in doc["evaluations"]} == {"clean", "fgsm", "pgd"}
    assert any(x["eval_quality"] is None and x["eval"] == "clean" for x in doc["evaluations"])
    assert cli_main(["report", str(out), "--format", "csv", "--table", "evaluations", "--no-plots"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 22 and rows[0]["model"] == "A"
    assert cli_main(["report", str(out), "--format", "markdown", "--no-plots"]) == 0
    md = capsys.readouterr().out
    assert "Cross-quality accuracy" in md and "Robust accuracy" in md and "| test q=20 | test q=100 | test none |" in md
    assert "| accuracy [95% CI] |" in md and "What the data can tell apart" in md
    cell = next(line for line in md.splitlines() if line.startswith("| A | q=20 |")).split(" | ")[2]
    assert re.fullmatch(r"\d\.\d{4} \[\d\.\d{4}, \d\.\d{4}\]", cell)  # mean [Wilson interval] in each cross-quality cell
    assert cli_main(["report", str(out)]) == 0
    text = capsys.readouterr().out
    for name in ("cross_quality_A.png", "robust_accuracy_vs_eps.png", "robust_accuracy_vs_defense_quality.png"):
        assert (out / "plots" / name).read_bytes()[:4] == b"\x89PNG" and name in text


def test_audio_trials_are_evaluated_across_bitrates_and_say_attacks_are_skipped(tmp_path, fsdd_path, capsys, monkeypatch):
    pytest.importorskip("lameenc")
    from helmholtz.experiments import audio_runner

    monkeypatch.setattr(audio_runner, "FSDD_FEATURES", {**audio_runner.FSDD_FEATURES, "hop_length": 256})
    out = tmp_path / "out"
    argv = ["sweep", "--dataset", "fsdd", "--data-dir", str(fsdd_path.parent), "--models", "conv3", "--bitrates", "16", "--epochs", "1",
            "--train-subset", "100", "--test-subset", "40", "--recipe", "fast", "--no-progress", "--out", str(out),
            "--eval-bitrates", "8,pcm", "--attacks", "fgsm", "--eps", "2"]
    assert cli_main(argv) == 0
    captured = capsys.readouterr()
    assert "attacks on spectrogram models are not run" in captured.err
    rows, _ = evaluations(out)
    assert sorted((r["eval"], r["eval_bitrate"] or 0.0) for r in rows) == [("clean", 0.0), ("clean", 8.0)]  # 0.0: pcm
    assert all(r["images"] == 40 and 0 <= r["accuracy"] <= 1 for r in rows)
    assert re.search(r"2 evaluation\(s\) computed", captured.out)
