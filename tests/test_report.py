import csv
import io
import json
import math

import pytest

pd = pytest.importorskip("pandas")
pytest.importorskip("matplotlib")

from helmholtz.cli import main as cli_main
from helmholtz.experiments import report
from helmholtz.experiments.store import ResultStore

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
    assert cli_main(["report", *[str(out), "--format", "csv", "--no-plots"]]) == 0
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
    assert cli_main(["report", *[str(out)]]) == 0
    text = capsys.readouterr().out
    assert "Helmholtz numbers" in text and "q_star" in text
    for name in ("accuracy_vs_quality.png", "accuracy_vs_bpp.png", "convergence_vs_quality.png"):
        p = out / "plots" / name
        assert p.is_file() and p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and str(p) in text
    assert cli_main(["report", *[str(out), "--format", "markdown", "--no-plots"]]) == 0
    md = capsys.readouterr().out
    header = next(line for line in md.splitlines() if line.startswith("| dataset"))
    assert all(f" {c} " in header for c in REQUIRED)
    assert cli_main(["report", *[str(out), "--format", "json", "--no-plots"]]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert len(doc["trials"]) == 12 and set(REQUIRED) <= set(doc["trials"][0])
    assert {h["model"]: h["q_star"] for h in doc["helmholtz"]} == {"A": 20, "C": 100}


def test_a_missing_bpp_gives_nan_numbers_not_an_error(tmp_path, capsys):
    with ResultStore(tmp_path) as s:
        for q in (10, 100):
            s.add({"key": str(q), "dataset": "cifar10", "model": "A", "quality": q, "seed": 0, "recipe": "fast", "epochs": 1,
                   "test_accuracy": q / 200, "accuracy_curve": [q / 200]})
    assert cli_main(["report", *[str(tmp_path), "--no-plots"]]) == 0
    numbers = report.helmholtz_numbers(report.summarize(report.load_trials(tmp_path)), report.load_trials(tmp_path))
    assert numbers.loc[0, "q_star"] == 100 and math.isnan(numbers.loc[0, "H_bits_per_pixel"])


def test_a_missing_or_foreign_database_is_a_clear_error(tmp_path, capsys):
    assert cli_main(["report", *[str(tmp_path / "none")]]) == 2
    assert "no results database" in capsys.readouterr().err
    assert not (tmp_path / "none").exists()
    (tmp_path / "results.sqlite").write_bytes(b"junk" * 200)
    assert cli_main(["report", *[str(tmp_path)]]) == 2
    assert "not a helmholtz results database" in capsys.readouterr().err
    assert (tmp_path / "results.sqlite").read_bytes() == b"junk" * 200


def test_plots_carry_a_title_and_a_flat_curve_gets_a_visible_axis(tmp_path):
    import matplotlib.image

    with ResultStore(tmp_path) as s:
        for q in (10, 50):
            s.add({"key": str(q), "dataset": "cifar10", "model": "A", "quality": q, "seed": 0, "recipe": "fast", "epochs": 3, "train_subset": 500,
                   "test_accuracy": 0.25, "convergence_epoch": 2, "accuracy_curve": [0.25], "bpp": q / 10})
    summary = report.summarize(report.load_trials(tmp_path))
    assert report.plot_title(summary) == "cifar10, recipe fast, 3 epochs, train 500 / test all images, 1 seed"
    seen = {}
    import matplotlib.axes

    real = matplotlib.axes.Axes.set_title
    def spy(self, label, *a, **k):
        seen.setdefault("titles", []).append(label)
        seen.setdefault("ylims", []).append(self.get_ylim())
        return real(self, label, *a, **k)

    matplotlib.axes.Axes.set_title = spy
    try:
        plots = report.make_plots(summary, tmp_path / "plots")
    finally:
        matplotlib.axes.Axes.set_title = real
    assert len(plots) == 3 and all(matplotlib.image.imread(p).shape[0] > 100 for p in plots)
    assert seen["titles"] == [report.plot_title(summary)] * 3
    lo, hi = seen["ylims"][0]  # accuracy 0.25 at both qualities: a band around it, not a 1e-x span
    assert lo < 0.25 < hi and hi - lo >= 0.05


def test_the_report_warns_when_rows_differ_in_data_or_code(tmp_path, capsys):
    with ResultStore(tmp_path) as s:
        for q, sha, rev in ((10, "a" * 64, "1" * 40), (50, "b" * 64, "2" * 40)):
            s.add({"key": str(q), "dataset": "cifar10", "model": "A", "quality": q, "seed": 0, "recipe": "fast", "epochs": 1,
                   "test_accuracy": 0.3, "accuracy_curve": [0.3], "source_sha256": sha, "git_revision": rev, "torch_version": "2.13.0"})
    warnings = report.fingerprint_warnings(report.load_trials(tmp_path))
    assert len(warnings) == 2
    assert "trained on 2 different data sets" in warnings[0] and "rows differ in git_revision" in warnings[1]
    assert cli_main(["report", str(tmp_path), "--no-plots"]) == 0
    assert "Warnings: these rows are not strictly comparable" in capsys.readouterr().out
    assert cli_main(["report", str(tmp_path), "--format", "json", "--no-plots"]) == 0
    assert len(json.loads(capsys.readouterr().out)["warnings"]) == 2
    assert cli_main(["report", str(tmp_path), "--format", "csv", "--no-plots"]) == 0
    assert capsys.readouterr().err.count("warning: ") == 2


def _add_audio(s, bps=None):
    """FSDD-like audio trials: conv3 at 8 / 32 kbps and PCM, two seeds each."""
    bps = bps or {8.0: 11_000.0, 32.0: 45_000.0, None: 128_000.0}
    acc = {8.0: [0.40, 0.44], 32.0: [0.70, 0.74], None: [0.66, 0.70]}
    for br, accs in acc.items():
        for seed, a in enumerate(accs):
            level = "pcm" if br is None else f"kbps={br:g}"
            s.add({
                "key": f"fsdd|conv3|{level}|{seed}", "dataset": "fsdd", "model": "conv3", "bitrate": br, "seed": seed, "recipe": "paper",
                "epochs": 2, "train_subset": 200, "params": 70050, "bits_per_second": bps[br], "test_accuracy": a,
                "best_test_accuracy": a + 0.02, "convergence_epoch": 2 - seed, "accuracy_curve": [a + 0.02, a],
                "train_images": 200, "test_images": 100, "wall_time_s": 2.0, "extra": {"accuracy_top10": a + 0.01, "codec_sample_rate": 8000},
            })


def test_audio_and_image_in_one_database(out, capsys):
    with ResultStore(out) as s:
        _add_audio(s)
    trials = report.load_trials(out)
    summary = report.summarize(trials)
    # image rows and the image Helmholtz numbers are as before
    numbers = report.helmholtz_numbers(summary, trials).set_index("model")
    assert list(numbers.index) == ["A", "C"] and numbers.loc["A", "q_star"] == 20
    aud = summary[summary.dataset == "fsdd"]
    assert aud["bitrate"].tolist()[:2] == [8.0, 32.0] and math.isnan(aud["bitrate"].tolist()[2])  # PCM last
    b32 = aud[aud.bitrate == 32].iloc[0]
    assert b32.seeds == 2 and b32.test_accuracy_mean == pytest.approx(0.72) and b32.accuracy_top10_mean == pytest.approx(0.73)
    assert b32.test_accuracy_std == pytest.approx(pd.Series([0.70, 0.74]).std()) and b32.bits_per_second == 45_000
    best = report.audio_numbers(summary).iloc[0]
    assert best.model == "conv3" and best.b_star == 32 and best.reference == "pcm"
    assert best.H_bits_per_second == pytest.approx(128_000 - 45_000) and best.accuracy_reference == pytest.approx(0.68)

    assert cli_main(["report", *[str(out), "--format", "csv"]]) == 0
    captured = capsys.readouterr()
    rows = list(csv.DictReader(io.StringIO(captured.out)))
    assert len(rows) == 18 and all(c in rows[0] for c in REQUIRED + ["bitrate", "bits_per_second", "accuracy_top10"])
    audio_rows = [r for r in rows if r["dataset"] == "fsdd"]
    assert [r["bitrate"] for r in audio_rows] == ["8.0", "8.0", "32.0", "32.0", "", ""]
    assert {r["accuracy_top10"] for r in rows if r["dataset"] == "cifar10"} == {""}
    for name in ("accuracy_vs_quality.png", "accuracy_vs_bpp.png", "convergence_vs_quality.png",
                 "accuracy_vs_bitrate.png", "accuracy_vs_bits_per_second.png", "convergence_vs_bitrate.png"):
        assert (out / "plots" / name).is_file() and name in captured.err

    assert cli_main(["report", *[str(out), "--format", "markdown", "--no-plots"]]) == 0
    md = capsys.readouterr().out
    assert "## Image trials (12)" in md and "## Audio trials (6;" in md and "Helmholtz numbers" in md and "Best bitrate per model" in md
    audio_header = next(line for line in md.splitlines() if line.startswith("| dataset | model | params | bitrate"))
    assert " quality " not in audio_header and " bpp " not in audio_header and " accuracy_top10 " in audio_header
    assert "| fsdd | conv3 | 70050 | pcm | 0 |" in md
    assert cli_main(["report", *[str(out), "--format", "json", "--no-plots"]]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert len(doc["trials"]) == 18 and doc["best_bitrate"][0]["b_star"] == 32 and len(doc["helmholtz"]) == 2


def test_audio_only_report(tmp_path, capsys):
    with ResultStore(tmp_path) as s:
        _add_audio(s)
    assert cli_main(["report", *[str(tmp_path)]]) == 0
    text = capsys.readouterr().out
    assert text.startswith("Trials (6;") and "Helmholtz numbers" not in text and "bpp is empty" not in text
    assert "b_star" in text and "128000" in text
    assert cli_main(["report", *[str(tmp_path), "--format", "json", "--no-plots"]]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["helmholtz"] == [] and doc["best_bitrate"][0]["bits_per_second_b_star"] == 45_000


def test_image_report_has_no_audio_sections(out, capsys):
    assert cli_main(["report", *[str(out), "--format", "csv", "--no-plots"]]) == 0
    header = capsys.readouterr().out.splitlines()[0].split(",")
    assert header == report.TRIAL_COLUMNS
    assert cli_main(["report", *[str(out), "--no-plots"]]) == 0
    text = capsys.readouterr().out
    assert text.startswith("Trials (12)") and "Audio" not in text and "b_star" not in text and "accuracy_top10" not in text
    assert cli_main(["report", *[str(out), "--format", "json", "--no-plots"]]) == 0
    assert "best_bitrate" not in json.loads(capsys.readouterr().out)
