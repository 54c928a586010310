"""``helmholtz report``: tables, plots and Helmholtz numbers from a sweep's database.

Its parts:

trials
    One row per trial: ``dataset, model, params, quality, bitrate, seed,
    recipe, epochs, train_subset, test_subset, test_images, bpp,
    bits_per_second, test_accuracy`` with its 95% interval
    ``test_accuracy_ci_low/high``, ``best_test_accuracy`` with
    ``best_test_accuracy_ci_low/high``, ``best_epoch, convergence_epoch,
    wall_time_s, images_per_s``.
summary
    Means over seeds per model and level with their uncertainty:
    ``test_accuracy_mean``, its 95% Wilson interval on the test images
    ``test_accuracy_ci_low/high``, the standard deviation over seeds
    ``test_accuracy_std`` and the 95% t interval of the mean over seeds
    ``test_accuracy_seed_ci_low/high`` (2+ seeds); the same for
    ``best_test_accuracy``; ``convergence_epoch_mean/std``, ``bpp``,
    ``test_images`` and the number of seeds.
helmholtz
    Per model: the best quality ``q_star`` (highest mean test accuracy; ties
    go to the lower bit rate), its accuracy and ``bpp_q_star``, ``bpp_q100``,
    the noise estimate ``H_bits_per_pixel = bpp(q=100) - bpp(q*)`` and
    ``NH_bits = N * H`` over the training set's ``N`` pixels.
comparisons
    Per model (:func:`compare_levels`): whether the best level can be told
    apart from the others, as a sentence and as lists of levels.

Uncertainty: every accuracy is measured on a finite test set, so it carries
the 95% Wilson score interval for its number of test images (the trial
rows' ``test_images``); a mean over seeds also carries the Student t interval
of the mean over seeds, which measures the training runs' own spread (see
:mod:`helmholtz.experiments.intervals`). Two levels are called
distinguishable when their intervals do not overlap; with several seeds the
interval compared spans both the Wilson and the t interval.

Plots (PNG): accuracy against quality and against bpp per model (error bars:
the Wilson intervals; a band: the t interval over seeds), and the
convergence epoch against quality (mean +- sd over seeds); each titled with
the data set, recipe, epochs, subsets and seeds it shows.

Warnings (:func:`fingerprint_warnings`) head the report when the rows it
compares were trained on different data under one name, or by different
code (helmholtz, Pillow/libjpeg-turbo, NumPy, torch or Python versions).

Audio trials (``helmholtz sweep --dataset fsdd --bitrates ...``: a bitrate,
no quality) get tables of their own, with ``bitrate`` (``pcm`` for the
uncompressed baseline), ``bits_per_second`` (exact MP3 bits of train + test
over their duration) and ``accuracy_top10``, the authors' accuracy (mean of the
10 best epochs); a "best bitrate" table per model (``b_star``, the bitrate with
the best mean test accuracy, and ``H_bits_per_second`` = bits/s of the
reference level, PCM if it was run else the highest bitrate, minus bits/s at
``b_star``); and plots of accuracy against bitrate and against bits per
second, and of the convergence epoch against bitrate. A database holding both
kinds reports each kind in its own sections.
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Any

from .._extras import require
from .fingerprint import CODE_COLUMNS
from .intervals import LEVEL, intervals_overlap, seed_interval, wilson_interval
from .report_evaluations import (
    EVALUATION_COLUMNS, INTERVAL_NOTE, cross_quality_cells, level_sort_key, plot_accuracy_intervals, plot_target, robustness,
)
from .store import ResultStore

__all__ = [
    "TRIAL_COLUMNS", "AUDIO_TRIAL_COLUMNS", "AUDIO_EXTRA_COLUMNS", "load_trials", "summarize", "helmholtz_numbers",
    "audio_numbers", "compare_levels", "make_plots", "plot_title", "render", "fingerprint_warnings", "FORMATS", "UNCERTAINTY",
]

#: Columns of the per-trial table, in order (``*_ci_low/high``: the 95% Wilson interval on ``test_images``).
TRIAL_COLUMNS = [
    "dataset", "model", "params", "quality", "bitrate", "seed", "recipe", "epochs", "train_subset", "test_subset", "test_images",
    "bpp", "bits_per_second", "test_accuracy", "test_accuracy_ci_low", "test_accuracy_ci_high",
    "best_test_accuracy", "best_test_accuracy_ci_low", "best_test_accuracy_ci_high", "best_epoch", "convergence_epoch",
    "wall_time_s", "images_per_s",
]
#: Columns of the audio trials' table (``bitrate`` is shown as ``pcm`` for the uncompressed baseline).
AUDIO_TRIAL_COLUMNS = [
    "dataset", "model", "params", "bitrate", "seed", "recipe", "epochs", "train_subset", "test_subset", "test_images",
    "bits_per_second", "test_accuracy", "test_accuracy_ci_low", "test_accuracy_ci_high",
    "best_test_accuracy", "best_test_accuracy_ci_low", "best_test_accuracy_ci_high", "accuracy_top10", "best_epoch", "convergence_epoch",
    "wall_time_s",
]
#: How the report's intervals are made (``--format json`` prints it under ``"uncertainty"``).
UNCERTAINTY = {
    "level": LEVEL,
    "test_images": "Wilson score interval of the accuracy for its number of test images (*_ci_low, *_ci_high)",
    "seeds": "Student t interval of the mean over seeds, mean +- t(0.975, seeds-1) * sd / sqrt(seeds), for 2+ seeds "
             "(*_seed_ci_low, *_seed_ci_high); *_std is the standard deviation over seeds",
    "comparison": "two levels are distinguishable when their intervals do not overlap; with several seeds the interval compared "
                  "spans both the Wilson and the t interval",
}
#: Columns read from a trial's ``extra`` (written by the audio runner); added to the CSV/JSON trials when audio trials exist.
AUDIO_EXTRA_COLUMNS = ["accuracy_top10", "codec_sample_rate"]
_AUDIO_REQUIRED = ("model", "params", "bitrate", "seed", "bits_per_second", "test_accuracy")
_GROUP = ["dataset", "recipe", "epochs", "train_subset", "test_subset", "model", "quality", "bitrate"]
_SERIES = ["dataset", "recipe", "epochs", "train_subset", "test_subset", "model"]
FORMATS = ("table", "csv", "json", "markdown")


def load_trials(out: str | os.PathLike) -> Any:
    """The trials of ``out``'s database as a pandas DataFrame (columns :data:`TRIAL_COLUMNS` + curves)."""
    pd = require("pandas", purpose="helmholtz report")

    with ResultStore(out, readonly=True) as store:
        records = store.records()
    df = pd.DataFrame.from_records(records, columns=list(records[0]) if records else TRIAL_COLUMNS + ["accuracy_curve"])
    extras = df["extra"] if "extra" in df else pd.Series([None] * len(df), index=df.index, dtype=object)
    for col in AUDIO_EXTRA_COLUMNS:
        df[col] = [e.get(col) if isinstance(e, dict) else None for e in extras]
    for col in ("quality", "train_subset", "test_subset", "test_images", "params", "best_epoch", "convergence_epoch", "seed", "epochs", "codec_sample_rate"):
        df[col] = df[col].astype("Int64")
    for col in ("bpp", "bitrate", "bits_per_second", "test_accuracy", "best_test_accuracy", "wall_time_s", "images_per_s", "accuracy_top10"):
        df[col] = df[col].astype("float64")
    for col in ("test_accuracy", "best_test_accuracy"):  # NaN where the number of test images was not stored
        df[f"{col}_ci_low"], df[f"{col}_ci_high"] = wilson_interval(df[col], df["test_images"])
    sort = [c for c in ("dataset", "recipe", "model", "quality", "bitrate", "seed") if c in df]
    # quality and bitrate are never both set; NaN last puts the PCM baseline after the bitrates
    return df.sort_values(sort, na_position="last", kind="stable").reset_index(drop=True)


def _audio_mask(df: Any) -> Any:
    """Rows of audio trials: compressed at a bitrate (or PCM), without a JPEG quality."""
    return df["quality"].isna()


def _accuracy_columns(name: str) -> list[str]:
    """The summary's columns for one accuracy: mean, Wilson interval, sd, t interval over seeds."""
    return [f"{name}_mean", f"{name}_ci_low", f"{name}_ci_high", f"{name}_std", f"{name}_seed_ci_low", f"{name}_seed_ci_high"]


def summarize(trials: Any) -> Any:
    """Means over seeds with their uncertainty (one row per model and level).

    For ``test_accuracy`` and ``best_test_accuracy`` (and ``accuracy_top10``
    on audio trials): the mean over seeds, its 95% Wilson interval on the
    test images (``_ci_low``, ``_ci_high``; ``test_images`` is the smallest
    test set of the group), the standard deviation over seeds (``_std``) and
    the 95% t interval of the mean over seeds (``_seed_ci_low``,
    ``_seed_ci_high``; NaN with one seed).
    """
    import pandas as pd

    accuracies = ["test_accuracy", "best_test_accuracy"]
    if "accuracy_top10" in trials and trials["accuracy_top10"].notna().any():
        accuracies.append("accuracy_top10")
    cols = [*_GROUP, "seeds", "params", "bpp", "bits_per_second", "test_images", *[c for a in accuracies for c in _accuracy_columns(a)],
            "convergence_epoch_mean", "convergence_epoch_std", "wall_time_s_mean"]
    if trials.empty:
        return pd.DataFrame(columns=cols)
    if "test_images" not in trials:  # a frame built by hand: no intervals from the test images
        trials = trials.assign(test_images=pd.array([pd.NA] * len(trials), dtype="Int64"))
    g = trials.groupby(_GROUP, dropna=False, sort=True)
    out = g.agg(
        seeds=("seed", "count"),
        params=("params", "first"),
        bpp=("bpp", "mean"),
        bits_per_second=("bits_per_second", "mean"),
        test_images=("test_images", "min"),
        **{f"{a}_{stat}": (a, stat) for a in accuracies for stat in ("mean", "std")},
        convergence_epoch_mean=("convergence_epoch", "mean"),
        convergence_epoch_std=("convergence_epoch", "std"),
        wall_time_s_mean=("wall_time_s", "mean"),
    ).reset_index()
    for a in accuracies:
        out[f"{a}_ci_low"], out[f"{a}_ci_high"] = wilson_interval(out[f"{a}_mean"], out["test_images"])
        out[f"{a}_seed_ci_low"], out[f"{a}_seed_ci_high"] = seed_interval(out[f"{a}_mean"], out[f"{a}_std"], out["seeds"])
    return out[cols]


def _best_first(grp: Any) -> Any:
    """``grp``'s levels, best first: highest mean test accuracy; ties go to fewer bits (bpp or bits/s), then the lower level."""
    bits = grp["bpp"] if grp["quality"].notna().any() else grp["bits_per_second"]
    level = grp["quality"] if grp["quality"].notna().any() else grp["bitrate"]
    grp = grp.assign(_bits=bits.astype(float).fillna(math.inf), _level=level.astype(float).fillna(math.inf))
    return grp.sort_values(["test_accuracy_mean", "_bits", "_level"], ascending=[False, True, True], kind="stable").drop(columns=["_bits", "_level"])


def _interval_of(row: Any, col: str = "test_accuracy") -> tuple[float, float]:
    """``row``'s 95% Wilson interval of ``col``'s mean (NaN when the test images are unknown)."""
    return float(row[f"{col}_ci_low"]), float(row[f"{col}_ci_high"])


def audio_numbers(summary: Any) -> Any:
    """Per audio model: the best bitrate ``b_star`` and how many bits per second lie above it.

    ``b_star`` is the bitrate with the highest mean final test accuracy over
    seeds (ties go to fewer bits per second; NaN means the PCM baseline won).
    The reference level is PCM when it was run, else the highest bitrate;
    ``H_bits_per_second = bits_per_second(reference) - bits_per_second(b_star)``.
    It can be negative: short clips at a high bitrate cost more bits than their
    PCM (FSDD at 8 kHz: 128 kbps MP3 is about 154,000 bits/s, PCM 128,000).
    The accuracies carry their 95% Wilson intervals on the test images
    (``accuracy_b_star_ci_low/high``, ``accuracy_reference_ci_low/high``).
    """
    import pandas as pd

    cols = [*_SERIES, "b_star", "accuracy_b_star", "accuracy_b_star_ci_low", "accuracy_b_star_ci_high", "accuracy_top10_b_star",
            "bits_per_second_b_star", "reference", "accuracy_reference", "accuracy_reference_ci_low", "accuracy_reference_ci_high",
            "bits_per_second_reference", "H_bits_per_second"]
    rows = []
    aud = summary[_audio_mask(summary)] if not summary.empty else summary
    for key, grp in aud.groupby(_SERIES, dropna=False, sort=True):
        best = _best_first(grp).iloc[0]
        pcm = grp[grp["bitrate"].isna()]
        ref = pcm.iloc[0] if len(pcm) else grp.sort_values("bitrate").iloc[-1]
        top = float(best["accuracy_top10_mean"]) if "accuracy_top10_mean" in grp and pd.notna(best["accuracy_top10_mean"]) else math.nan
        bps_star = float(best["bits_per_second"]) if pd.notna(best["bits_per_second"]) else math.nan
        bps_ref = float(ref["bits_per_second"]) if pd.notna(ref["bits_per_second"]) else math.nan
        (b_lo, b_hi), (r_lo, r_hi) = _interval_of(best), _interval_of(ref)
        rows.append({
            **dict(zip(_SERIES, key)),
            "b_star": float(best["bitrate"]) if pd.notna(best["bitrate"]) else math.nan,
            "accuracy_b_star": float(best["test_accuracy_mean"]),
            "accuracy_b_star_ci_low": b_lo,
            "accuracy_b_star_ci_high": b_hi,
            "accuracy_top10_b_star": top,
            "bits_per_second_b_star": bps_star,
            "reference": "pcm" if pd.isna(ref["bitrate"]) else f"{float(ref['bitrate']):g} kbps",
            "accuracy_reference": float(ref["test_accuracy_mean"]),
            "accuracy_reference_ci_low": r_lo,
            "accuracy_reference_ci_high": r_hi,
            "bits_per_second_reference": bps_ref,
            "H_bits_per_second": bps_ref - bps_star,
        })
    return pd.DataFrame(rows, columns=cols)


def helmholtz_numbers(summary: Any, trials: Any) -> Any:
    """Per model: best quality q*, its bpp, H = bpp(q=100) - bpp(q*) and N*H over the training pixels.

    Accuracy here is the mean final test accuracy over seeds, with its 95%
    Wilson interval on the test images (``accuracy_q_star_ci_low/high``,
    ``accuracy_q100_ci_low/high``); whether q* can be told apart from the other
    qualities is :func:`compare_levels`'s answer. ``H`` and ``NH_bits`` are
    NaN where bpp was not measured or q=100 was not run.
    """
    import pandas as pd

    rows = []
    keys = ["dataset", "recipe", "epochs", "train_subset", "test_subset", "model"]
    cols = [*keys, "q_star", "accuracy_q_star", "accuracy_q_star_ci_low", "accuracy_q_star_ci_high", "accuracy_q100", "accuracy_q100_ci_low",
            "accuracy_q100_ci_high", "bpp_q_star", "bpp_q100", "H_bits_per_pixel", "train_pixels", "NH_bits"]
    img = summary[summary["quality"].notna()] if not summary.empty else summary
    for key, grp in img.groupby(keys, dropna=False, sort=True):
        best = _best_first(grp).iloc[0]
        q100 = grp[grp["quality"] == 100]
        bpp100 = float(q100["bpp"].iloc[0]) if len(q100) else math.nan
        bpp_star = float(best["bpp"]) if pd.notna(best["bpp"]) else math.nan
        h = bpp100 - bpp_star
        match = trials
        for k, v in zip(keys, key):
            match = match[match[k].isna()] if pd.isna(v) else match[match[k] == v]
        pixels = pd.to_numeric(match.get("train_images"), errors="coerce") * pd.to_numeric(match.get("pixels_per_image"), errors="coerce") if len(match) and "train_images" in match else None
        n_pixels = float(pixels.iloc[0]) if pixels is not None and pd.notna(pixels.iloc[0]) else math.nan
        acc100 = float(q100["test_accuracy_mean"].iloc[0]) if len(q100) else math.nan
        lo100, hi100 = _interval_of(q100.iloc[0]) if len(q100) else (math.nan, math.nan)
        lo, hi = _interval_of(best)
        rows.append({
            **dict(zip(keys, key)),
            "q_star": int(best["quality"]),
            "accuracy_q_star": float(best["test_accuracy_mean"]),
            "accuracy_q_star_ci_low": lo,
            "accuracy_q_star_ci_high": hi,
            "accuracy_q100": acc100,
            "accuracy_q100_ci_low": lo100,
            "accuracy_q100_ci_high": hi100,
            "bpp_q_star": bpp_star,
            "bpp_q100": bpp100,
            "H_bits_per_pixel": h,
            "train_pixels": n_pixels,
            "NH_bits": h * n_pixels,
        })
    return pd.DataFrame(rows, columns=cols)


def _level_name(row: Any) -> str:
    """``q=20``, ``32 kbps`` or ``pcm``: a summary row's level as the report names it."""
    import pandas as pd

    if pd.notna(row["quality"]):
        return f"q={int(row['quality'])}"
    return f"{float(row['bitrate']):g} kbps" if pd.notna(row["bitrate"]) else "pcm"


def _comparison_interval(row: Any) -> tuple[float, float]:
    """The interval a level is compared by: the Wilson interval, spanning the t interval over seeds too where there is one."""
    lo, hi = _interval_of(row)
    s_lo, s_hi = float(row["test_accuracy_seed_ci_low"]), float(row["test_accuracy_seed_ci_high"])
    if s_lo == s_lo and s_hi == s_hi:
        lo, hi = (min(lo, s_lo), max(hi, s_hi)) if lo == lo and hi == hi else (s_lo, s_hi)
    return lo, hi


def _names(levels: list[str]) -> str:
    return levels[0] if len(levels) == 1 else ", ".join(levels[:-1]) + " and " + levels[-1]


def _scale(rows: Any) -> str:
    """``500 test images`` (and ``2 seeds``): what the intervals of ``rows`` stand on."""
    import pandas as pd

    images = sorted({int(v) for v in rows["test_images"] if pd.notna(v)})
    seeds = sorted({int(v) for v in rows["seeds"] if pd.notna(v)})
    text = (f"{images[0]:,}" if len(images) == 1 else f"{images[0]:,}-{images[-1]:,}") + " test images" if images else "an unknown number of test images"
    if seeds and seeds[-1] > 1:
        text += " and " + (f"{seeds[0]}" if len(seeds) == 1 else f"{seeds[0]}-{seeds[-1]}") + " seeds"
    return text


def _acc(acc: float, interval: tuple[float, float]) -> str:
    return f"{acc:.3f} [{interval[0]:.3f}, {interval[1]:.3f}]" if interval[0] == interval[0] else f"{acc:.3f} (no interval: test images unknown)"


def compare_levels(summary: Any) -> Any:
    """Per model: can the data tell the best level (quality or bitrate) apart from the others?

    The best level is the one with the highest mean test accuracy (as
    ``q_star`` and ``b_star``). Its 95% interval (the Wilson interval on the
    test images; with several seeds, spanning the t interval over seeds too)
    is compared with every other level's: a level whose interval overlaps it
    can't be told apart from the best at this scale; one whose interval lies
    wholly below it is distinguishable.

    Returns
    -------
    DataFrame
        One row per model and series (``dataset, recipe, epochs, train_subset,
        test_subset, model``) with ``best`` (the level's name, ``q=20``,
        ``32 kbps`` or ``pcm``), ``accuracy, ci_low, ci_high`` (the interval
        compared), ``test_images``, ``seeds``, ``overlapping`` and
        ``distinguishable`` (lists of level names), ``unknown`` (levels without
        an interval) and ``text``, the sentence the report prints.
    """
    import pandas as pd

    cols = [*_SERIES, "best", "accuracy", "ci_low", "ci_high", "test_images", "seeds", "overlapping", "distinguishable", "unknown", "text"]
    rows: list[dict[str, Any]] = []
    if summary.empty:
        return pd.DataFrame(columns=cols)
    ok = summary[summary["test_accuracy_mean"].notna()]
    series = list(ok.groupby(_SERIES, dropna=False, sort=True))
    many = len({k[:5] for k, _ in series}) > 1
    for key, grp in series:
        dataset, recipe, epochs, train, test, model = (("all" if pd.isna(v) else v) for v in key)
        who = f"Model {model}" + (f" ({dataset}, recipe {recipe}, {epochs} epochs, train {train} / test {test})" if many else "") + ": "
        order = _best_first(grp)
        best, others = order.iloc[0], order.iloc[1:]
        level = others["quality"].astype(float).fillna(others["bitrate"].astype(float)).fillna(math.inf)
        others = others.assign(_level=level.to_numpy()).sort_values("_level", kind="stable")  # named in level order
        name, interval = _level_name(best), _comparison_interval(best)
        overlapping: list[str] = []
        distinguishable: list[str] = []
        unknown: list[str] = []
        for _, other in others.iterrows():
            theirs = _comparison_interval(other)
            if interval[0] != interval[0] or theirs[0] != theirs[0]:
                unknown.append(_level_name(other))
            elif intervals_overlap(interval, theirs):
                overlapping.append(_level_name(other))
            else:
                distinguishable.append(_level_name(other))
        scale = _scale(grp)
        head = f"{name} has the highest accuracy, {_acc(float(best['test_accuracy_mean']), interval)}"
        if others.empty:
            text = f"{name} is the only level run, at {_acc(float(best['test_accuracy_mean']), interval)}: there is nothing to compare it with."
        elif interval[0] != interval[0]:
            text = f"{name} has the highest accuracy, {best['test_accuracy_mean']:.3f}, but the number of test images was not stored, so whether it differs from {_names(unknown)} can't be said."
        elif not distinguishable and not unknown:
            these = "these levels" if len(overlapping) > 1 else "the two"
            text = f"{head}, but its interval overlaps {'those' if len(overlapping) > 1 else 'that'} of {_names(overlapping)}: at {scale} {these} can't be told apart."
        elif not overlapping and not unknown:
            text = f"{head}, and its interval overlaps no other level's: at {scale} it is distinguishable from {_names(distinguishable)}."
        else:
            parts = []
            if overlapping:
                parts.append(f"its interval overlaps {'those' if len(overlapping) > 1 else 'that'} of {_names(overlapping)}, which it can't be told apart from")
            if distinguishable:
                parts.append(f"it is distinguishable from {_names(distinguishable)}, whose interval{'s lie' if len(distinguishable) > 1 else ' lies'} below")
            if unknown:
                parts.append(f"{_names(unknown)} {'have' if len(unknown) > 1 else 'has'} no interval (test images unknown)")
            text = f"{head}; at {scale} " + "; ".join(parts) + "."
        rows.append({
            **dict(zip(_SERIES, key)), "best": name, "accuracy": float(best["test_accuracy_mean"]), "ci_low": interval[0], "ci_high": interval[1],
            "test_images": best["test_images"], "seeds": int(best["seeds"]), "overlapping": overlapping, "distinguishable": distinguishable,
            "unknown": unknown, "text": who + text,
        })
    return pd.DataFrame(rows, columns=cols)


def plot_title(rows: Any) -> str:
    """What a plot shows: data set, recipe, epochs, subsets and seeds of its rows (each once)."""
    import pandas as pd

    def values(col: str) -> str:
        vals = [v for v in dict.fromkeys(rows[col].tolist()) if not pd.isna(v)] if col in rows else []
        return "/".join(str(int(v)) if isinstance(v, float) and v.is_integer() else str(v) for v in vals) or "all"

    seeds = rows["seeds"].max() if "seeds" in rows and len(rows) else None
    parts = [values("dataset"), f"recipe {values('recipe')}", f"{values('epochs')} epochs",
             f"train {values('train_subset')} / test {values('test_subset')} images"]
    if seeds is not None and not pd.isna(seeds):
        parts.append(f"{int(seeds)} seed{'s' if seeds != 1 else ''}")
    return ", ".join(parts)


def _sensible_limits(ax: Any, ys: list[float]) -> None:
    """A flat curve (one value, or all equal) gets a visible band around it instead of matplotlib's 1e-x span."""
    finite = [y for y in ys if y == y and abs(y) != float("inf")]
    if finite and max(finite) - min(finite) < 1e-9:
        v = finite[0]
        pad = max(abs(v) * 0.05, 0.05)
        ax.set_ylim(v - pad, v + pad)


def make_plots(summary: Any, folder: str | os.PathLike) -> list[Path]:
    """Write the PNG plots for ``summary`` into ``folder``; returns their paths.

    Accuracies are drawn with their 95% Wilson intervals (test images) as
    error bars and, with several seeds, the 95% t interval over seeds as a
    band; convergence epochs with their standard deviation over seeds.
    """
    matplotlib = require("matplotlib", purpose="helmholtz report")

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    pd = require("pandas", purpose="helmholtz report")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    if summary.empty:
        return written
    audio = _audio_mask(summary)
    img = summary[~audio]
    aud = summary[audio]

    def plot(series, label, sort_col, x_col, y_col, err_col, xlabel, ylabel, name, logx=False, baseline=False):
        fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=120)
        drawn = False
        ys: list[float] = []
        for key, grp in series:
            grp = grp.sort_values(sort_col)
            x = grp[x_col].astype(float)
            y = grp[y_col].astype(float)
            ok = x.notna() & y.notna()
            if not ok.any():
                continue
            if err_col:  # not an accuracy: mean +- sd over seeds
                line = ax.errorbar(x[ok], y[ok], yerr=grp[err_col].astype(float).fillna(0)[ok], marker="o", capsize=3, label=label(key))
            else:  # an accuracy: its Wilson interval as bars, the t interval over seeds as a band
                acc = y_col.removesuffix("_mean")
                line = plot_accuracy_intervals(ax, x[ok], y[ok], grp[f"{acc}_ci_low"][ok], grp[f"{acc}_ci_high"][ok],
                                               grp[f"{acc}_seed_ci_low"][ok], grp[f"{acc}_seed_ci_high"][ok], label(key))
                ys += [float(v) for v in grp[f"{acc}_ci_low"][ok].dropna()] + [float(v) for v in grp[f"{acc}_ci_high"][ok].dropna()]
            ys += [float(v) for v in y[ok]]
            drawn = True
            pcm = grp[grp["bitrate"].isna() & grp[y_col].notna()] if baseline else grp.iloc[:0]
            if len(pcm):  # the uncompressed baseline has no bitrate: a dashed line at its value
                ax.axhline(float(pcm[y_col].iloc[0]), color=line[0].get_color(), linestyle="--", linewidth=1, label=f"{label(key)}, PCM")
        if not drawn:
            plt.close(fig)
            return
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel, fontsize=8)
        if logx:  # base 2 with plain numbers: bitrates double from one level to the next
            from matplotlib.ticker import FuncFormatter, NullFormatter

            ax.set_xscale("log", base=2)
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:,.0f}" if v >= 1 else f"{v:g}"))
            ax.xaxis.set_minor_formatter(NullFormatter())
            if x_col == "bitrate":
                ax.set_xticks(sorted({float(v) for _, g in series for v in g[x_col].dropna()}))
        _sensible_limits(ax, ys)
        if "epoch" in y_col:  # epochs are whole numbers
            from matplotlib.ticker import MaxNLocator

            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(plot_title(pd.concat([g for _, g in series])), fontsize=8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = plot_target(folder, name)
        fig.savefig(path)
        plt.close(fig)
        written.append(path)

    def labeller(series):
        many = len({k[:5] for k, _ in series}) > 1
        return lambda key: f"{key[5]} ({key[0]}, {key[1]}, {key[2]} ep)" if many else f"model {key[5]}"

    accuracy = f"test accuracy (mean over seeds)\n{INTERVAL_NOTE}"
    epochs = "convergence epoch (mean ± sd over seeds)"
    if not img.empty:
        series = list(img.groupby(_SERIES, dropna=False, sort=True))
        label = labeller(series)
        plot(series, label, "quality", "quality", "test_accuracy_mean", None, "JPEG quality", accuracy, "accuracy_vs_quality.png")
        plot(series, label, "quality", "bpp", "test_accuracy_mean", None, "bits per pixel (entropy-coded scan)", accuracy, "accuracy_vs_bpp.png")
        plot(series, label, "quality", "quality", "convergence_epoch_mean", "convergence_epoch_std", "JPEG quality", epochs, "convergence_vs_quality.png")
    if not aud.empty:
        series = list(aud.groupby(_SERIES, dropna=False, sort=True))
        label = labeller(series)
        plot(series, label, "bitrate", "bitrate", "test_accuracy_mean", None, "MP3 bitrate (kbps)", accuracy, "accuracy_vs_bitrate.png", logx=True, baseline=True)
        plot(series, label, "bits_per_second", "bits_per_second", "test_accuracy_mean", None, "bits per second (exact MP3 bits, train + test)", accuracy, "accuracy_vs_bits_per_second.png", logx=True)
        plot(series, label, "bitrate", "bitrate", "convergence_epoch_mean", "convergence_epoch_std", "MP3 bitrate (kbps)", epochs, "convergence_vs_bitrate.png", logx=True, baseline=True)
    return written


def _fmt(v: Any) -> str:
    import pandas as pd

    if v is None or (not isinstance(v, str) and pd.isna(v)):
        return ""
    if isinstance(v, float):
        if v.is_integer() and abs(v) < 1e15:
            return str(int(v))
        return f"{v:.4g}" if abs(v) >= 1e5 else f"{v:.4f}"
    return str(v)


def _markdown(df: Any) -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "| " + " | ".join("---" for _ in cols) + " |"]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(_fmt(v) for v in row) + " |")
    return "\n".join(lines)


def _table(df: Any) -> str:
    if df.empty:
        return "(none)"
    cells = [[str(c) for c in df.columns]] + [[_fmt(v) for v in row] for row in df.itertuples(index=False)]
    widths = [max(len(r[i]) for r in cells) for i in range(len(cells[0]))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in cells)


def _drop_empty(df: Any, keep: tuple = ()) -> Any:
    """Drop columns that are NULL everywhere (e.g. bitrate on an image sweep), keeping ``keep``."""
    return df[[c for c in df.columns if c in keep or df[c].notna().any()]]


def _audio_view(df: Any) -> Any:
    """A display copy of audio rows: ``pcm`` for the missing bitrate, whole bits per second."""
    df = df.copy()
    df["bitrate"] = [("pcm" if b != b else float(b)) for b in df["bitrate"].astype(float)]
    for col in [c for c in df.columns if c.startswith("bits_per_second") or c == "H_bits_per_second"]:
        df[col] = df[col].astype(float).round(0)
    return df


def _ci_text(v: Any, lo: Any, hi: Any) -> str:
    """``0.1920 [0.1599, 0.2288]``; the value alone where the interval is unknown."""
    if lo is None or hi is None or lo != lo or hi != hi:
        return _fmt(v)
    return f"{_fmt(v)} [{float(lo):.4f}, {float(hi):.4f}]"


def _interval_view(df: Any) -> Any:
    """A display copy of ``df`` where each accuracy and its interval columns share one cell.

    ``X`` (or ``X_mean``) with ``X_ci_low/high`` becomes ``X [95% CI]`` holding
    ``value [low, high]``; ``X_seed_ci_low/high`` becomes ``X [95% t, seeds]``
    holding ``[low, high]`` (dropped where no row has 2+ seeds).
    """
    import pandas as pd

    out = {}
    for c in df.columns:
        if c.endswith(("_ci_low", "_ci_high")):
            stem = c.removesuffix("_seed_ci_low") if c.endswith("_seed_ci_low") else None
            if stem is not None and df[c].notna().any():
                out[f"{stem} [95% t, seeds]"] = [
                    "" if lo != lo else f"[{lo:.4f}, {hi:.4f}]" for lo, hi in zip(df[c].astype(float), df[f"{stem}_seed_ci_high"].astype(float))
                ]
            continue
        stem = c.removesuffix("_mean")
        if f"{stem}_ci_low" in df and df[f"{stem}_ci_low"].notna().any():
            out[f"{c} [95% CI]"] = [_ci_text(v, lo, hi) for v, lo, hi in zip(df[c], df[f"{stem}_ci_low"], df[f"{stem}_ci_high"])]
        else:
            out[c] = df[c].tolist()
    return pd.DataFrame(out, columns=list(out))


def fingerprint_warnings(trials: Any) -> list[str]:
    """Warnings when the rows a report compares were made from different data or by different code.

    Rows of one data set and subset size should share their ``source_sha256``;
    all rows should share the :data:`helmholtz.experiments.fingerprint.CODE_COLUMNS`
    and, per recipe name, the full ``recipe_json``.
    """
    import pandas as pd

    out: list[str] = []
    if trials.empty:
        return out

    def counted(series: Any) -> str:
        vc = series.fillna("unknown").astype(str).value_counts()
        return ", ".join(f"{k[:20]} ({v} row{'s' if v != 1 else ''})" for k, v in vc.items())

    if "source_sha256" in trials:
        for (dataset, tr, te), grp in trials.groupby(["dataset", "train_subset", "test_subset"], dropna=False, sort=True):
            shas = grp["source_sha256"].dropna().unique()
            if len(shas) > 1:
                out.append(f"rows of {dataset} (train {'all' if pd.isna(tr) else tr} / test {'all' if pd.isna(te) else te}) were trained on "
                           f"{len(shas)} different data sets of that name: {counted(grp['source_sha256'])}")
    for col in CODE_COLUMNS:
        if col in trials and trials[col].dropna().nunique() > 1:
            out.append(f"rows differ in {col}: {counted(trials[col])}")
    if "recipe_json" in trials:
        for name, grp in trials.groupby("recipe", sort=True):
            texts = {json.dumps(r, sort_keys=True) for r in grp["recipe_json"] if isinstance(r, dict)}
            if len(texts) > 1:
                out.append(f"rows of recipe {name!r} were trained with {len(texts)} different settings (see recipe_json)")
    return out


_SUMMARY_HEAD = "Mean over seeds ([95% CI] = Wilson interval on the test images; [95% t, seeds] = t interval of the mean over seeds; std = sd over seeds)"


def _matrix_view(cells: Any, low: str, high: str, with_value: bool = False) -> Any:
    """The cross-quality matrix for display: ``value [low, high]`` (or ``[low, high]``) per cell."""
    text = [(_ci_text(v, lo, hi) if with_value else ("" if lo != lo else f"[{lo:.4f}, {hi:.4f}]"))
            for v, lo, hi in zip(cells["accuracy"], cells[low].astype(float), cells[high].astype(float))]
    shown = cells.assign(cell=text).pivot_table(index=["model", "train level"], columns="test level", values="cell", aggfunc="first", sort=False)
    shown = shown[[c for c in sorted(shown.columns, key=level_sort_key)]]
    shown.columns = [f"test {c}" for c in shown.columns]
    shown.columns.name = None
    return shown.reset_index().fillna("")


def render(trials: Any, summary: Any, numbers: Any, fmt: str, plots: list[Path], audio: Any = None, evaluations: Any = None, table: str = "trials") -> str:
    """The report as text in format ``fmt`` (see :data:`FORMATS`).

    Image trials (a JPEG quality) and audio trials (a bitrate) get their own
    sections in the table and Markdown formats; the CSV and JSON trials hold
    :data:`TRIAL_COLUMNS`, plus :data:`AUDIO_EXTRA_COLUMNS` when there are
    audio trials. ``audio`` is :func:`audio_numbers` of ``summary``
    (computed when None). ``evaluations`` (from
    :func:`helmholtz.experiments.report_evaluations.load_evaluations`) adds the
    cross-quality matrix and the robust accuracies; ``table="evaluations"``
    makes the CSV format print the evaluations instead of the trials.

    Every accuracy carries its 95% intervals (see :data:`UNCERTAINTY`): in
    the table and Markdown formats as ``value [low, high]`` cells, in CSV and
    JSON as ``*_ci_low`` / ``*_ci_high`` columns. The table and Markdown
    formats end the trials' part with :func:`compare_levels`'s sentences;
    JSON lists its rows under ``"comparisons"``.
    """
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}; got {fmt!r}")
    if table not in ("trials", "evaluations"):
        raise ValueError(f"table must be 'trials' or 'evaluations'; got {table!r}")
    has_evals = evaluations is not None and not evaluations.empty
    pd = require("pandas", purpose="helmholtz report")
    is_audio = _audio_mask(trials)
    has_audio = bool(is_audio.any())
    has_image = bool((~is_audio).any()) or not has_audio
    cols = TRIAL_COLUMNS + (AUDIO_EXTRA_COLUMNS if has_audio else [])
    t = trials[[c for c in cols if c in trials.columns]]
    if has_audio and audio is None:
        audio = audio_numbers(summary)
    if fmt == "csv":
        if table == "evaluations":
            return (evaluations[EVALUATION_COLUMNS] if has_evals else pd.DataFrame(columns=EVALUATION_COLUMNS)).to_csv(index=False).rstrip("\n")
        return t.to_csv(index=False).rstrip("\n")
    if fmt == "json":
        def records(df):
            return json.loads(df.to_json(orient="records"))

        doc = {"trials": records(t), "summary": records(summary), "helmholtz": records(numbers), "comparisons": records(compare_levels(summary)),
               "uncertainty": UNCERTAINTY, "plots": [str(p) for p in plots], "warnings": fingerprint_warnings(trials),
               "evaluations": records(evaluations[EVALUATION_COLUMNS]) if has_evals else []}
        if has_audio:
            doc["best_bitrate"] = records(audio)
        return json.dumps(doc, indent=2)
    fmt_table = _markdown if fmt == "markdown" else _table
    head = (lambda s: f"## {s}") if fmt == "markdown" else (lambda s: f"{s}\n{'=' * len(s)}")
    parts: list[str] = []
    if has_image:
        kind = "Image trials" if has_audio else "Trials"
        ti = t[~is_audio][[c for c in TRIAL_COLUMNS if c in t.columns]]
        si = summary[~_audio_mask(summary)] if has_audio else summary
        required = ("model", "params", "quality", "seed", "bpp", "test_accuracy")
        show = _interval_view(_drop_empty(ti, required))
        show_s = _interval_view(_drop_empty(si, ("model", "quality", "bpp", "test_accuracy_mean", "test_accuracy_std")))
        show_h = _interval_view(numbers)
        parts += [
            head(f"{kind} ({len(ti)}; [95% CI] = Wilson interval on the test images)"), fmt_table(show), "",
            head(_SUMMARY_HEAD + (" (image trials)" if has_audio else "")), fmt_table(show_s), "",
            head("Helmholtz numbers (q* = quality with the best mean test accuracy; H = bpp(q=100) - bpp(q*))"), fmt_table(show_h),
        ]
    if has_audio:
        ta = trials[is_audio][[c for c in AUDIO_TRIAL_COLUMNS if c in trials.columns]]
        sa = summary[_audio_mask(summary)]
        s_cols = [c for c in sa.columns if c not in ("quality", "bpp")]
        kind = "Audio trials" if has_image else "Trials"
        parts += ["" if parts else None, head(f"{kind} ({len(ta)}; bitrate in kbps, pcm = uncompressed; accuracy_top10 = mean of the 10 best epochs)"),
                  fmt_table(_interval_view(_audio_view(_drop_empty(ta, _AUDIO_REQUIRED)))), "",
                  head(_SUMMARY_HEAD + (" (audio trials)" if has_image else "")),
                  fmt_table(_interval_view(_audio_view(_drop_empty(sa[s_cols], ("model", "bitrate", "bits_per_second", "test_accuracy_mean", "test_accuracy_std"))))), "",
                  head("Best bitrate per model (b_star = best mean test accuracy; H = bits/s(reference) - bits/s(b_star))"),
                  fmt_table(_interval_view(_audio_view(audio.rename(columns={"b_star": "bitrate"})).rename(columns={"bitrate": "b_star"})))]
        parts = [p for p in parts if p is not None]
    comparisons = compare_levels(summary)
    if len(comparisons):
        parts += ["", head("What the data can tell apart (95% intervals: Wilson on the test images; with 2+ seeds, spanning the t interval over seeds)"),
                  *[f"- {text}" for text in comparisons["text"]]]
    if has_evals:
        cells, rob = cross_quality_cells(evaluations), robustness(evaluations)
        if not cells.empty:
            parts += ["", head("Cross-quality accuracy (clean test accuracy, mean over seeds [95% Wilson interval on the test images]; "
                               "rows: training level, columns: test-time level)"), fmt_table(_matrix_view(cells, "ci_low", "ci_high", with_value=True))]
            if cells["seed_ci_low"].notna().any():
                parts += ["", head("Cross-quality accuracy: 95% t interval of the mean over seeds"), fmt_table(_matrix_view(cells, "seed_ci_low", "seed_ci_high"))]
        if not rob.empty:
            parts += ["", head("Robust accuracy (L-inf; defense = JPEG quality in front of the model, attacked through its straight-through gradient; "
                               "[95% CI] = Wilson interval on the attacked images)"),
                      fmt_table(_interval_view(rob.rename(columns={c: f"accuracy_{c}" for c in ("ci_low", "ci_high", "seed_ci_low", "seed_ci_high")})))]
    warnings = fingerprint_warnings(trials)
    if warnings:
        parts = [head("Warnings: these rows are not strictly comparable"), *[f"- {w}" for w in warnings], ""] + parts
    if plots:
        parts += ["", head("Plots")] + [f"- {p}" if fmt == "markdown" else str(p) for p in plots]
    return "\n".join(parts)
