import csv
import io
import json
import math
from pathlib import Path

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
                    "accuracy_curve": [acc / 2, acc + 0.01, acc], "train_images": 100, "test_images": 1000, "pixels_per_image": 1024,
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
    assert "## Image trials (12;" in md and "## Audio trials (6;" in md and "Helmholtz numbers" in md and "Best bitrate per model" in md
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
    assert text.startswith("Trials (12;") and "Audio" not in text and "b_star" not in text and "accuracy_top10" not in text
    assert cli_main(["report", *[str(out), "--format", "json", "--no-plots"]]) == 0
    assert "best_bitrate" not in json.loads(capsys.readouterr().out)


# ------------------------------------------------------------------ uncertainty
from helmholtz.experiments.intervals import seed_interval, t_quantile, wilson_interval  # noqa: E402


@pytest.mark.parametrize(("correct", "n", "low", "high"), [
    # Newcombe (1998), Statistics in Medicine 17:857, table II, method 3 (Wilson score, no continuity correction)
    (81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605), (0, 20, 0.0, 0.1611), (1, 29, 0.0061, 0.1718),
    # make demo's q=20 figure, worked by hand: (p + z²/2n ± z sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n), z = 1.95996
    (96, 500, 0.1599, 0.2288),
])
def test_the_wilson_interval_matches_published_and_hand_worked_values(correct, n, low, high):
    lo, hi = wilson_interval(correct / n, n)
    assert (round(lo, 4), round(hi, 4)) == (low, high)


def test_the_wilson_interval_takes_columns_with_missing_values_and_refuses_bad_input():
    lo, hi = wilson_interval(pd.Series([0.5, float("nan"), 1.0]), pd.Series([100, 100, pd.NA], dtype="Int64"))
    assert lo[0] == pytest.approx(0.4038, abs=1e-4) and hi[0] == pytest.approx(0.5962, abs=1e-4)
    assert math.isnan(lo[1]) and math.isnan(hi[2])
    assert wilson_interval(1.0, 10)[1] == 1.0 and wilson_interval(0.0, 10)[0] == 0.0  # never outside [0, 1]
    with pytest.raises(ValueError, match=r"accuracy must be in \[0, 1\]"):
        wilson_interval(1.2, 10)
    for bad_n in (0, 2.5, -3):
        with pytest.raises(ValueError, match="whole number"):
            wilson_interval(0.5, bad_n)
    with pytest.raises(TypeError, match="bools"):
        wilson_interval(0.5, True)
    with pytest.raises(ValueError, match="level"):
        wilson_interval(0.5, 10, level=95)


def test_the_t_quantile_and_the_seed_interval_match_scipy():
    st = pytest.importorskip("scipy.stats")
    for df in (*range(1, 31), 45, 99, 250):
        for p in (0.975, 0.995, 0.9, 0.025):
            assert t_quantile(p, df) == pytest.approx(st.t.ppf(p, df), rel=1e-9)
    for seeds in ([0.62, 0.66], [0.31, 0.35, 0.30], [0.5, 0.52, 0.49, 0.55, 0.51]):
        mean, sd = float(np.mean(seeds)), float(np.std(seeds, ddof=1))
        want = st.t.interval(0.95, len(seeds) - 1, loc=mean, scale=sd / math.sqrt(len(seeds)))
        assert seed_interval(mean, sd, len(seeds)) == pytest.approx(want, rel=1e-9)
    assert all(math.isnan(v) for v in seed_interval(0.5, float("nan"), 1))  # one seed: no spread to measure
    assert seed_interval(0.1, 0.1, 2) == (0.0, pytest.approx(0.1 + 12.7062 * 0.1 / math.sqrt(2), rel=1e-5))  # cut to [0, 1]
    with pytest.raises(ValueError, match="df"):
        t_quantile(0.975, 0)


import numpy as np  # noqa: E402


def _store(path, accs, test_images=500, models=("A",), dataset="cifar10"):
    """Trials at quality -> one accuracy per seed; bpp grows with quality."""
    with ResultStore(path) as s:
        for model in models:
            for q, per_seed in accs.items():
                for seed, acc in enumerate(per_seed):
                    s.add({"key": f"{dataset}|{model}|{q}|{seed}", "dataset": dataset, "model": model, "quality": q, "seed": seed, "recipe": "fast",
                           "epochs": 3, "train_subset": 2000, "test_subset": test_images, "params": 701386, "bpp": q / 10,
                           "test_accuracy": acc, "best_test_accuracy": acc, "accuracy_curve": [acc], "train_images": 2000,
                           "test_images": test_images, "pixels_per_image": 1024})
    return path


def test_a_best_level_inside_the_others_intervals_is_said_to_be_indistinguishable(tmp_path, capsys):
    out = _store(tmp_path, {5: [0.162], 20: [0.192], 100: [0.150]})  # make demo's figures, one seed, 500 test images
    comparisons = report.compare_levels(report.summarize(report.load_trials(out)))
    sentence = ("Model A: q=20 has the highest accuracy, 0.192 [0.160, 0.229], but its interval overlaps those of q=5 and q=100: "
                "at 500 test images these levels can't be told apart.")
    assert comparisons["text"].tolist() == [sentence]
    row = comparisons.iloc[0]
    assert row.best == "q=20" and row.overlapping == ["q=5", "q=100"] and row.distinguishable == []
    assert cli_main(["report", str(out), "--no-plots"]) == 0
    text = capsys.readouterr().out
    assert "What the data can tell apart" in text and f"- {sentence}" in text


def test_a_best_level_clear_of_the_others_is_said_to_be_distinguishable(tmp_path):
    out = _store(tmp_path, {5: [0.50], 20: [0.62], 100: [0.55]}, test_images=10_000)
    (text,) = report.compare_levels(report.summarize(report.load_trials(out)))["text"]
    assert text == ("Model A: q=20 has the highest accuracy, 0.620 [0.610, 0.629], and its interval overlaps no other level's: "
                    "at 10,000 test images it is distinguishable from q=5 and q=100.")


def test_mixed_overlaps_name_both_kinds_of_level(tmp_path):
    out = _store(tmp_path, {5: [0.50], 20: [0.62], 100: [0.615]}, test_images=10_000)
    row = report.compare_levels(report.summarize(report.load_trials(out))).iloc[0]
    assert row.overlapping == ["q=100"] and row.distinguishable == ["q=5"]
    assert row.text == ("Model A: q=20 has the highest accuracy, 0.620 [0.610, 0.629]; at 10,000 test images its interval overlaps that of q=100, "
                        "which it can't be told apart from; it is distinguishable from q=5, whose interval lies below.")


def test_with_several_seeds_the_spread_over_seeds_widens_the_comparison(tmp_path):
    # On 10,000 test images the Wilson intervals of 0.62 and 0.55 are far apart, but the seeds disagree a lot:
    # the t interval over 3 seeds (mean 0.62, sd 0.06) reaches down to 0.471, so q=20 and q=100 can't be told apart.
    out = _store(tmp_path, {20: [0.56, 0.62, 0.68], 100: [0.55, 0.55, 0.55]}, test_images=10_000, models=("A", "C"))
    summary = report.summarize(report.load_trials(out))
    a20 = summary[(summary.model == "A") & (summary.quality == 20)].iloc[0]
    assert (a20.test_accuracy_ci_low, a20.test_accuracy_ci_high) == pytest.approx(wilson_interval(0.62, 10_000))
    assert (a20.test_accuracy_seed_ci_low, a20.test_accuracy_seed_ci_high) == pytest.approx(seed_interval(0.62, 0.06, 3))
    rows = report.compare_levels(summary)
    assert rows["model"].tolist() == ["A", "C"]  # one sentence per model, each naming it
    assert rows["text"].str.startswith("Model A: ").tolist() == [True, False] and rows.iloc[1]["text"].startswith("Model C: ")
    a = rows.iloc[0]
    assert a.overlapping == ["q=100"] and (a.ci_low, a.ci_high) == pytest.approx(seed_interval(0.62, 0.06, 3))
    assert "at 10,000 test images and 3 seeds the two can't be told apart" in a.text
    # zero spread over seeds does not make an interval narrower than the test images allow
    a100 = summary[(summary.model == "A") & (summary.quality == 100)].iloc[0]
    assert a100.test_accuracy_seed_ci_low == a100.test_accuracy_seed_ci_high == pytest.approx(0.55)


def test_models_of_different_series_are_named_with_their_setting(tmp_path):
    out = _store(tmp_path / "a.sqlite", {5: [0.3], 20: [0.4]})
    _store(out, {5: [0.3], 20: [0.4]}, dataset="mnist")
    texts = report.compare_levels(report.summarize(report.load_trials(out)))["text"].tolist()
    assert texts[0].startswith("Model A (cifar10, recipe fast, 3 epochs, train 2000 / test 500): q=20 has")
    assert texts[1].startswith("Model A (mnist, recipe fast, 3 epochs, train 2000 / test 500): q=20 has")


def test_without_the_number_of_test_images_the_report_says_it_cannot_judge(tmp_path):
    with ResultStore(tmp_path) as s:
        for q, acc in ((10, 0.3), (50, 0.4)):
            s.add({"key": str(q), "dataset": "cifar10", "model": "A", "quality": q, "seed": 0, "recipe": "fast", "epochs": 1,
                   "test_accuracy": acc, "accuracy_curve": [acc]})
    trials = report.load_trials(tmp_path)
    assert trials["test_accuracy_ci_low"].isna().all()
    (text,) = report.compare_levels(report.summarize(trials))["text"]
    assert text == "Model A: q=50 has the highest accuracy, 0.400, but the number of test images was not stored, so whether it differs from q=10 can't be said."


def test_a_frame_without_test_images_is_summarized_without_wilson_intervals(out):
    trials = report.load_trials(out).drop(columns=["test_images"])
    summary = report.summarize(trials)
    assert summary["test_accuracy_ci_low"].isna().all() and summary["test_accuracy_seed_ci_low"].notna().all()


def test_every_accuracy_carries_its_interval_in_csv_and_json(out, capsys):
    assert cli_main(["report", str(out), "--format", "csv", "--no-plots"]) == 0
    captured = capsys.readouterr()
    rows = list(csv.DictReader(io.StringIO(captured.out)))
    for r in rows:
        for col in ("test_accuracy", "best_test_accuracy"):
            want = wilson_interval(float(r[col]), 1000)
            assert (float(r[f"{col}_ci_low"]), float(r[f"{col}_ci_high"])) == pytest.approx(want)
        assert r["test_images"] == "1000"
    assert captured.err.count("note: Model ") == 2  # the comparisons go to stderr beside the CSV
    assert cli_main(["report", str(out), "--format", "json", "--no-plots"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert {"test_images", "test_accuracy_ci_low", "test_accuracy_ci_high", "best_test_accuracy_ci_low", "best_test_accuracy_ci_high"} <= set(doc["trials"][0])
    s = doc["summary"][0]
    assert {"test_images", "test_accuracy_mean", "test_accuracy_ci_low", "test_accuracy_ci_high", "test_accuracy_std", "test_accuracy_seed_ci_low",
            "test_accuracy_seed_ci_high", "best_test_accuracy_ci_low", "best_test_accuracy_seed_ci_high"} <= set(s)
    assert (s["test_accuracy_seed_ci_low"], s["test_accuracy_seed_ci_high"]) == pytest.approx(seed_interval(s["test_accuracy_mean"], s["test_accuracy_std"], 2))
    h = {r["model"]: r for r in doc["helmholtz"]}
    assert (h["A"]["accuracy_q_star_ci_low"], h["A"]["accuracy_q_star_ci_high"]) == pytest.approx(wilson_interval(0.64, 1000))
    assert {c["model"]: c["best"] for c in doc["comparisons"]} == {"A": "q=20", "C": "q=100"}
    assert set(doc["comparisons"][0]) >= {"best", "accuracy", "ci_low", "ci_high", "test_images", "seeds", "overlapping", "distinguishable", "text"}
    assert doc["uncertainty"]["level"] == 0.95 and "Wilson" in doc["uncertainty"]["test_images"] and "t interval" in doc["uncertainty"]["seeds"]


def test_audio_levels_are_compared_by_their_bitrate_names(tmp_path):
    with ResultStore(tmp_path) as s:
        _add_audio(s)
    summary = report.summarize(report.load_trials(tmp_path))
    row = report.compare_levels(summary).iloc[0]
    # 2 seeds: t(0.975, 1) = 12.7 makes the interval over seeds span 8 kbps (0.42 +- 0.02) as well
    assert row.best == "32 kbps" and row.overlapping == ["8 kbps", "pcm"] and row.distinguishable == [] and row.unknown == []
    assert row.text.startswith("Model conv3: 32 kbps has the highest accuracy, 0.720 [") and "those of 8 kbps and pcm" in row.text
    best = report.audio_numbers(summary).iloc[0]
    assert (best.accuracy_b_star_ci_low, best.accuracy_b_star_ci_high) == pytest.approx(wilson_interval(0.72, 100))


def test_accuracy_plots_draw_the_wilson_interval_as_bars_and_the_seeds_as_a_band(out, monkeypatch):
    import matplotlib.axes

    drawn = {"bars": [], "bands": []}
    real_errorbar, real_fill = matplotlib.axes.Axes.errorbar, matplotlib.axes.Axes.fill_between

    def errorbar(self, x, y, *a, yerr=None, **k):
        drawn["bars"].append((self.get_ylabel(), list(np.asarray(x, float)), list(np.asarray(y, float)), np.asarray(yerr, float)))
        return real_errorbar(self, x, y, *a, yerr=yerr, **k)

    def fill_between(self, x, y1, y2, *a, **k):
        drawn["bands"].append((list(np.asarray(y1, float)), list(np.asarray(y2, float))))
        return real_fill(self, x, y1, y2, *a, **k)

    monkeypatch.setattr(matplotlib.axes.Axes, "errorbar", errorbar)
    monkeypatch.setattr(matplotlib.axes.Axes, "fill_between", fill_between)
    summary = report.summarize(report.load_trials(out))
    report.make_plots(summary, out / "plots")
    a = summary[summary.model == "A"].sort_values("quality")
    x, y, yerr = drawn["bars"][0][1:]  # the first: accuracy against quality, model A
    assert x == [5, 20, 100] and y == pytest.approx(a.test_accuracy_mean.tolist())
    assert yerr[0] == pytest.approx((a.test_accuracy_mean - a.test_accuracy_ci_low).to_numpy())
    assert yerr[1] == pytest.approx((a.test_accuracy_ci_high - a.test_accuracy_mean).to_numpy())
    assert drawn["bands"][0] == (pytest.approx(a.test_accuracy_seed_ci_low.tolist()), pytest.approx(a.test_accuracy_seed_ci_high.tolist()))


# ------------------------------------------------------------------ output options
def _nothing_new(before, root):
    return sorted(p for p in root.rglob("*")) == before


def test_plots_dir_naming_an_existing_file_is_a_clear_error_and_creates_nothing(out, capsys):
    (out / "taken.png").write_bytes(b"mine")
    before = sorted(out.rglob("*"))
    assert cli_main(["report", str(out), "--plots-dir", str(out / "taken.png")]) == 2
    err = capsys.readouterr().err
    assert "--plots-dir" in err and "is a file, not a folder" in err and "Traceback" not in err
    assert (out / "taken.png").read_bytes() == b"mine" and _nothing_new(before, out)


@pytest.mark.parametrize("case", ["below a file", "empty", "default is a file", "a folder in a plot's place", "not UTF-8"])
def test_every_plots_folder_that_cannot_be_used_is_refused_before_anything_is_written(out, capsys, case):
    (out / "file").write_bytes(b"mine")
    args = {
        "below a file": ["--plots-dir", str(out / "file" / "plots")],
        "empty": ["--plots-dir", ""],
        "default is a file": [],
        "a folder in a plot's place": ["--plots-dir", str(out / "p")],
        "not UTF-8": ["--plots-dir", str(out / "caf\udce9")],
    }[case]
    if case == "default is a file":
        (out / "plots").write_bytes(b"mine too")
    if case == "a folder in a plot's place":
        (out / "p" / "accuracy_vs_quality.png").mkdir(parents=True)
    before = sorted(out.rglob("*"))
    assert cli_main(["report", str(out), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("helmholtz report: error: ") and ("--plots-dir" in err or "plot" in err)
    assert _nothing_new(before, out) and (out / "file").read_bytes() == b"mine"


def test_the_root_is_refused_as_a_plots_folder():
    from helmholtz.cli.report import check_plots_dir  # checked directly: a regression here must not write into /

    with pytest.raises(ValueError, match="--plots-dir '/' is the file system's root"):
        check_plots_dir("/", "--plots-dir")
    assert check_plots_dir("plots", "--plots-dir") == Path("plots")


def test_plots_dir_and_no_plots_together_are_refused(out, capsys):
    with pytest.raises(SystemExit) as exc:
        cli_main(["report", str(out), "--plots-dir", str(out / "p"), "--no-plots"])
    assert exc.value.code == 2 and "not allowed with argument" in capsys.readouterr().err
    assert not (out / "p").exists()


@pytest.fixture
def read_only_folder(tmp_path):
    """A folder nobody may write into: chmod for a normal user; for root (who ignores modes) a read-only tmpfs."""
    import os
    import subprocess

    folder = tmp_path / "ro"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(folder)], capture_output=True).returncode != 0:
        pytest.skip("running as root and cannot mount a read-only tmpfs here")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=False)


@pytest.mark.parametrize("inside", [False, True])
def test_an_unwritable_plots_folder_is_a_clear_error(out, capsys, read_only_folder, inside):
    target = read_only_folder / "plots" if inside else read_only_folder
    assert cli_main(["report", str(out), "--plots-dir", str(target)]) == 2
    err = capsys.readouterr().err
    assert "--plots-dir" in err and "cannot be written" in err
    assert not (read_only_folder / "plots").exists() and not (out / "plots").exists()
