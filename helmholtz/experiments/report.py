"""``helmholtz report``: tables, plots and Helmholtz numbers from a sweep's database.

Three tables:

trials
    One row per trial: ``dataset, model, params, quality, bitrate, seed,
    recipe, epochs, train_subset, test_subset, bpp, bits_per_second,
    test_accuracy, best_test_accuracy, best_epoch, convergence_epoch,
    wall_time_s, images_per_s``.
summary
    Means and standard deviations over seeds per model and level:
    ``test_accuracy_mean/std``, ``best_test_accuracy_mean/std``,
    ``convergence_epoch_mean/std``, ``bpp`` and the number of seeds.
helmholtz
    Per model: the best quality ``q_star`` (highest mean test accuracy; ties
    go to the lower bit rate), its accuracy and ``bpp_q_star``, ``bpp_q100``,
    the noise estimate ``H_bits_per_pixel = bpp(q=100) - bpp(q*)`` and
    ``NH_bits = N * H`` over the training set's ``N`` pixels.

Plots (PNG): accuracy against quality and against bpp per model, and the
convergence epoch against quality; each titled with the data set, recipe,
epochs, subsets and seeds it shows.

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
from .report_evaluations import EVALUATION_COLUMNS, cross_quality, robustness
from .store import ResultStore

__all__ = [
    "TRIAL_COLUMNS", "AUDIO_TRIAL_COLUMNS", "AUDIO_EXTRA_COLUMNS", "load_trials", "summarize", "helmholtz_numbers",
    "audio_numbers", "make_plots", "plot_title", "render", "fingerprint_warnings", "FORMATS",
]

#: Columns of the per-trial table, in order.
TRIAL_COLUMNS = [
    "dataset", "model", "params", "quality", "bitrate", "seed", "recipe", "epochs", "train_subset", "test_subset",
    "bpp", "bits_per_second", "test_accuracy", "best_test_accuracy", "best_epoch", "convergence_epoch",
    "wall_time_s", "images_per_s",
]
#: Columns of the audio trials' table (``bitrate`` is shown as ``pcm`` for the uncompressed baseline).
AUDIO_TRIAL_COLUMNS = [
    "dataset", "model", "params", "bitrate", "seed", "recipe", "epochs", "train_subset", "test_subset",
    "bits_per_second", "test_accuracy", "best_test_accuracy", "accuracy_top10", "best_epoch", "convergence_epoch",
    "wall_time_s",
]
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
    for col in ("quality", "train_subset", "test_subset", "params", "best_epoch", "convergence_epoch", "seed", "epochs", "codec_sample_rate"):
        df[col] = df[col].astype("Int64")
    for col in ("bpp", "bitrate", "bits_per_second", "test_accuracy", "best_test_accuracy", "wall_time_s", "images_per_s", "accuracy_top10"):
        df[col] = df[col].astype("float64")
    sort = [c for c in ("dataset", "recipe", "model", "quality", "bitrate", "seed") if c in df]
    # quality and bitrate are never both set; NaN last puts the PCM baseline after the bitrates
    return df.sort_values(sort, na_position="last", kind="stable").reset_index(drop=True)


def _audio_mask(df: Any) -> Any:
    """Rows of audio trials: compressed at a bitrate (or PCM), without a JPEG quality."""
    return df["quality"].isna()


def summarize(trials: Any) -> Any:
    """Means and standard deviations over seeds (one row per model and level)."""
    import pandas as pd

    if trials.empty:
        return pd.DataFrame(columns=[*_GROUP, "seeds", "params", "bpp", "test_accuracy_mean", "test_accuracy_std"])
    g = trials.groupby(_GROUP, dropna=False, sort=True)
    out = g.agg(
        seeds=("seed", "count"),
        params=("params", "first"),
        bpp=("bpp", "mean"),
        bits_per_second=("bits_per_second", "mean"),
        test_accuracy_mean=("test_accuracy", "mean"),
        test_accuracy_std=("test_accuracy", "std"),
        best_test_accuracy_mean=("best_test_accuracy", "mean"),
        best_test_accuracy_std=("best_test_accuracy", "std"),
        convergence_epoch_mean=("convergence_epoch", "mean"),
        convergence_epoch_std=("convergence_epoch", "std"),
        wall_time_s_mean=("wall_time_s", "mean"),
    ).reset_index()
    if "accuracy_top10" in trials and trials["accuracy_top10"].notna().any():
        top = g.agg(accuracy_top10_mean=("accuracy_top10", "mean"), accuracy_top10_std=("accuracy_top10", "std")).reset_index(drop=True)
        at = out.columns.get_loc("best_test_accuracy_std") + 1
        for i, col in enumerate(top.columns):
            out.insert(at + i, col, top[col].to_numpy())
    return out


def audio_numbers(summary: Any) -> Any:
    """Per audio model: the best bitrate ``b_star`` and how many bits per second lie above it.

    ``b_star`` is the bitrate with the highest mean final test accuracy over
    seeds (ties go to fewer bits per second; NaN means the PCM baseline won).
    The reference level is PCM when it was run, else the highest bitrate;
    ``H_bits_per_second = bits_per_second(reference) - bits_per_second(b_star)``.
    It can be negative: short clips at a high bitrate cost more bits than their
    PCM (FSDD at 8 kHz: 128 kbps MP3 is about 154,000 bits/s, PCM 128,000).
    """
    import pandas as pd

    cols = [*_SERIES, "b_star", "accuracy_b_star", "accuracy_top10_b_star", "bits_per_second_b_star",
            "reference", "accuracy_reference", "bits_per_second_reference", "H_bits_per_second"]
    rows = []
    aud = summary[_audio_mask(summary)] if not summary.empty else summary
    for key, grp in aud.groupby(_SERIES, dropna=False, sort=True):
        grp = grp.assign(_bps=grp["bits_per_second"].fillna(math.inf))
        best = grp.sort_values(["test_accuracy_mean", "_bps"], ascending=[False, True]).iloc[0]
        pcm = grp[grp["bitrate"].isna()]
        ref = pcm.iloc[0] if len(pcm) else grp.sort_values("bitrate").iloc[-1]
        top = float(best["accuracy_top10_mean"]) if "accuracy_top10_mean" in grp and pd.notna(best["accuracy_top10_mean"]) else math.nan
        bps_star = float(best["bits_per_second"]) if pd.notna(best["bits_per_second"]) else math.nan
        bps_ref = float(ref["bits_per_second"]) if pd.notna(ref["bits_per_second"]) else math.nan
        rows.append({
            **dict(zip(_SERIES, key)),
            "b_star": float(best["bitrate"]) if pd.notna(best["bitrate"]) else math.nan,
            "accuracy_b_star": float(best["test_accuracy_mean"]),
            "accuracy_top10_b_star": top,
            "bits_per_second_b_star": bps_star,
            "reference": "pcm" if pd.isna(ref["bitrate"]) else f"{float(ref['bitrate']):g} kbps",
            "accuracy_reference": float(ref["test_accuracy_mean"]),
            "bits_per_second_reference": bps_ref,
            "H_bits_per_second": bps_ref - bps_star,
        })
    return pd.DataFrame(rows, columns=cols)


def helmholtz_numbers(summary: Any, trials: Any) -> Any:
    """Per model: best quality q*, its bpp, H = bpp(q=100) - bpp(q*) and N*H over the training pixels.

    Accuracy here is the mean final test accuracy over seeds. ``H`` and
    ``NH_bits`` are NaN where bpp was not measured or q=100 was not run.
    """
    import pandas as pd

    rows = []
    keys = ["dataset", "recipe", "epochs", "train_subset", "test_subset", "model"]
    img = summary[summary["quality"].notna()] if not summary.empty else summary
    for key, grp in img.groupby(keys, dropna=False, sort=True):
        grp = grp.assign(_bpp=grp["bpp"].fillna(math.inf), _q=grp["quality"].astype(float))
        best = grp.sort_values(["test_accuracy_mean", "_bpp", "_q"], ascending=[False, True, True]).iloc[0]
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
        rows.append({
            **dict(zip(keys, key)),
            "q_star": int(best["quality"]),
            "accuracy_q_star": float(best["test_accuracy_mean"]),
            "accuracy_q100": acc100,
            "bpp_q_star": bpp_star,
            "bpp_q100": bpp100,
            "H_bits_per_pixel": h,
            "train_pixels": n_pixels,
            "NH_bits": h * n_pixels,
        })
    return pd.DataFrame(rows, columns=[*keys, "q_star", "accuracy_q_star", "accuracy_q100", "bpp_q_star", "bpp_q100", "H_bits_per_pixel", "train_pixels", "NH_bits"])


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
    """Write the PNG plots for ``summary`` into ``folder``; returns their paths."""
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
            err = grp[err_col].astype(float).fillna(0)[ok] if err_col else None
            line = ax.errorbar(x[ok], y[ok], yerr=err, marker="o", capsize=3, label=label(key))
            ys += [float(v) for v in y[ok]]
            drawn = True
            pcm = grp[grp["bitrate"].isna() & grp[y_col].notna()] if baseline else grp.iloc[:0]
            if len(pcm):  # the uncompressed baseline has no bitrate: a dashed line at its value
                ax.axhline(float(pcm[y_col].iloc[0]), color=line[0].get_color(), linestyle="--", linewidth=1, label=f"{label(key)}, PCM")
        if not drawn:
            plt.close(fig)
            return
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
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
        path = folder / name
        fig.savefig(path)
        plt.close(fig)
        written.append(path)

    def labeller(series):
        many = len({k[:5] for k, _ in series}) > 1
        return lambda key: f"{key[5]} ({key[0]}, {key[1]}, {key[2]} ep)" if many else f"model {key[5]}"

    if not img.empty:
        series = list(img.groupby(_SERIES, dropna=False, sort=True))
        label = labeller(series)
        plot(series, label, "quality", "quality", "test_accuracy_mean", "test_accuracy_std", "JPEG quality", "test accuracy (mean ± sd over seeds)", "accuracy_vs_quality.png")
        plot(series, label, "quality", "bpp", "test_accuracy_mean", "test_accuracy_std", "bits per pixel (entropy-coded scan)", "test accuracy", "accuracy_vs_bpp.png")
        plot(series, label, "quality", "quality", "convergence_epoch_mean", "convergence_epoch_std", "JPEG quality", "convergence epoch", "convergence_vs_quality.png")
    if not aud.empty:
        series = list(aud.groupby(_SERIES, dropna=False, sort=True))
        label = labeller(series)
        plot(series, label, "bitrate", "bitrate", "test_accuracy_mean", "test_accuracy_std", "MP3 bitrate (kbps)", "test accuracy (mean ± sd over seeds)", "accuracy_vs_bitrate.png", logx=True, baseline=True)
        plot(series, label, "bits_per_second", "bits_per_second", "test_accuracy_mean", "test_accuracy_std", "bits per second (exact MP3 bits, train + test)", "test accuracy (mean ± sd over seeds)", "accuracy_vs_bits_per_second.png", logx=True)
        plot(series, label, "bitrate", "bitrate", "convergence_epoch_mean", "convergence_epoch_std", "MP3 bitrate (kbps)", "convergence epoch", "convergence_vs_bitrate.png", logx=True, baseline=True)
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

        doc = {"trials": records(t), "summary": records(summary), "helmholtz": records(numbers), "plots": [str(p) for p in plots],
               "warnings": fingerprint_warnings(trials),
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
        show = _drop_empty(ti, required)
        show_s = _drop_empty(si, ("model", "quality", "bpp", "test_accuracy_mean", "test_accuracy_std"))
        show_h = numbers
        parts += [
            head(f"{kind} ({len(ti)})"), fmt_table(show), "",
            head("Mean and standard deviation over seeds" + (" (image trials)" if has_audio else "")), fmt_table(show_s), "",
            head("Helmholtz numbers (q* = quality with the best mean test accuracy; H = bpp(q=100) - bpp(q*))"), fmt_table(show_h),
        ]
    if has_audio:
        ta = trials[is_audio][[c for c in AUDIO_TRIAL_COLUMNS if c in trials.columns]]
        sa = summary[_audio_mask(summary)]
        s_cols = [c for c in sa.columns if c not in ("quality", "bpp")]
        kind = "Audio trials" if has_image else "Trials"
        parts += ["" if parts else None, head(f"{kind} ({len(ta)}; bitrate in kbps, pcm = uncompressed; accuracy_top10 = mean of the 10 best epochs)"),
                  fmt_table(_audio_view(_drop_empty(ta, _AUDIO_REQUIRED))), "",
                  head("Mean and standard deviation over seeds" + (" (audio trials)" if has_image else "")),
                  fmt_table(_audio_view(_drop_empty(sa[s_cols], ("model", "bitrate", "bits_per_second", "test_accuracy_mean", "test_accuracy_std")))), "",
                  head("Best bitrate per model (b_star = best mean test accuracy; H = bits/s(reference) - bits/s(b_star))"),
                  fmt_table(_audio_view(audio.rename(columns={"b_star": "bitrate"})).rename(columns={"bitrate": "b_star"}))]
        parts = [p for p in parts if p is not None]
    if has_evals:
        matrix, rob = cross_quality(evaluations), robustness(evaluations)
        if not matrix.empty:
            parts += ["", head("Cross-quality accuracy (clean test accuracy, mean over seeds; rows: training level, columns: test-time level)"),
                      fmt_table(matrix)]
        if not rob.empty:
            parts += ["", head("Robust accuracy (L-inf; defense = JPEG quality in front of the model, attacked through its straight-through gradient)"),
                      fmt_table(rob)]
    warnings = fingerprint_warnings(trials)
    if warnings:
        parts = [head("Warnings: these rows are not strictly comparable"), *[f"- {w}" for w in warnings], ""] + parts
    if plots:
        parts += ["", head("Plots")] + [f"- {p}" if fmt == "markdown" else str(p) for p in plots]
    return "\n".join(parts)
