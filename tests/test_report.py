import csv
import io
import json
import math

import pytest

pd = pytest.importorskip("pandas")
pytest.importorskip("matplotlib")

from helmholtz import report
from helmholtz.store import ResultStore

REQUIRED = ["model", "params", "quality", "seed", "bpp", "test_accuracy"]
BPP = {5: 0.5, 20: 1.0, 100: 4.0}
ACC = {("A", 5): [0.50, 0.54], ("A", 20): [0.62, 0.66], ("A", 100): [0.60, 0.58], ("C", 5): [0.55, 0.55], ("C", 20): [0.56, 0.58], ("C", 100): [0.70, 0.72]}


@pytest.fixture
def out(tmp_path):
    with ResultStore(tmp_path / "out") as s:
        for (model, q), accs in ACC.items():
            for seed, acc in enumerate(accs):
                s.add({
                    "key": f"{model}|{q}|{seed}", "dataset": "cifar10", "model": model, "quality": q, "seed": seed, "recipe": "paper",
                    "epochs": 3, "train_subset": 100, "params": 701386 if model == "A" else 1144138, "bpp": BPP[q],
                    "test_accuracy": acc, "best_test_accuracy": acc + 0.01, "convergence_epoch": 1 + seed + (q == 100),
                    "accuracy_curve": [acc / 2, acc + 0.01, acc], "train_images": 100, "pixels_per_image": 1024,
                    "wall_time_s": 1.0, "images_per_s": 300.0,
                })
    return tmp_path / "out"


def test_csv_columns_and_rows(out, capsys):
    assert report.cli([str(out), "--format", "csv", "--no-plots"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 12
    assert all(c in rows[0] for c in REQUIRED)
    a20 = sorted(float(r["test_accuracy"]) for r in rows if r["model"] == "A" and r["quality"] == "20")
    assert a20 == [0.62, 0.66]
    assert {r["params"] for r in rows if r["model"] == "C"} == {"1144138"}


def test_summary_and_helmholtz_numbers(out):
    trials = report.load_trials(out)
    summary = report.summarize(trials)
    a20 = summary[(summary.model == "A") & (summary.quality == 20)].iloc[0]
    assert a20.seeds == 2 and a20.test_accuracy_mean == pytest.approx(0.64)
    assert a20.test_accuracy_std == pytest.approx(pd.Series([0.62, 0.66]).std())
    numbers = report.helmholtz_numbers(summary, trials).set_index("model")
    assert numbers.loc["A", "q_star"] == 20 and numbers.loc["C", "q_star"] == 100
    assert numbers.loc["A", "bpp_q_star"] == 1.0
    assert numbers.loc["A", "H_bits_per_pixel"] == pytest.approx(4.0 - 1.0)
    assert numbers.loc["A", "NH_bits"] == pytest.approx(3.0 * 100 * 1024)
    assert numbers.loc["C", "H_bits_per_pixel"] == 0


def test_table_markdown_json_and_plots(out, capsys):
    assert report.cli([str(out)]) == 0
    text = capsys.readouterr().out
    assert "Helmholtz numbers" in text and "q_star" in text
    for name in ("accuracy_vs_quality.png", "accuracy_vs_bpp.png", "convergence_vs_quality.png"):
        p = out / "plots" / name
        assert p.is_file() and p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and str(p) in text
    assert report.cli([str(out), "--format", "markdown", "--no-plots"]) == 0
    md = capsys.readouterr().out
    header = next(line for line in md.splitlines() if line.startswith("| dataset"))
    assert all(f" {c} " in header for c in REQUIRED)
    assert report.cli([str(out), "--format", "json", "--no-plots"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert len(doc["trials"]) == 12 and set(REQUIRED) <= set(doc["trials"][0])
    assert {h["model"]: h["q_star"] for h in doc["helmholtz"]} == {"A": 20, "C": 100}


def test_missing_bpp_is_nan_not_an_error(tmp_path, capsys):
    with ResultStore(tmp_path) as s:
        for q in (10, 100):
            s.add({"key": str(q), "dataset": "cifar10", "model": "A", "quality": q, "seed": 0, "recipe": "fast", "epochs": 1,
                   "test_accuracy": q / 200, "accuracy_curve": [q / 200]})
    assert report.cli([str(tmp_path), "--no-plots"]) == 0
    assert "bpp is empty" in capsys.readouterr().out
    numbers = report.helmholtz_numbers(report.summarize(report.load_trials(tmp_path)), report.load_trials(tmp_path))
    assert numbers.loc[0, "q_star"] == 100 and math.isnan(numbers.loc[0, "H_bits_per_pixel"])


def test_errors(tmp_path, capsys):
    assert report.cli([str(tmp_path / "none")]) == 2
    assert "no results database" in capsys.readouterr().err
    (tmp_path / "results.sqlite").write_bytes(b"junk" * 200)
    assert report.cli([str(tmp_path)]) == 2
    assert "not a helmholtz results database" in capsys.readouterr().err
