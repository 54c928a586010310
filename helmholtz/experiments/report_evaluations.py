"""The evaluations part of ``helmholtz report``: cross-quality matrices, robust accuracies, their plots.

:func:`load_evaluations` joins each stored evaluation with its trial; the
rows of :data:`EVALUATION_COLUMNS` are what ``--format json`` lists under
``"evaluations"`` and ``--format csv --table evaluations`` prints.

Every accuracy carries its 95% Wilson interval from the number of images it
was measured on (``accuracy_ci_low``, ``accuracy_ci_high``); means over
several seeds carry the Student t interval over seeds too
(``seed_ci_low``, ``seed_ci_high``). See :mod:`helmholtz.experiments.intervals`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .._extras import require
from .intervals import seed_interval, wilson_interval
from .store import ResultStore

__all__ = [
    "EVALUATION_COLUMNS", "INTERVAL_NOTE", "load_evaluations", "cross_quality", "cross_quality_cells", "robustness", "make_evaluation_plots",
    "plot_accuracy_intervals", "plot_target", "level_sort_key",
]

#: Columns of an evaluation row, in order (``quality`` / ``bitrate`` are the training level;
#: ``accuracy_ci_low/high`` the 95% Wilson interval of ``accuracy`` on its ``images``).
EVALUATION_COLUMNS = [
    "dataset", "model", "quality", "bitrate", "seed", "eval", "eval_quality", "eval_bitrate", "eps", "defense_quality", "accuracy",
    "accuracy_ci_low", "accuracy_ci_high", "images",
]


def load_evaluations(out: str | os.PathLike) -> Any:
    """Every evaluation of ``out``'s database, with its trial's data set, model, level and seed (a DataFrame)."""
    pd = require("pandas", purpose="helmholtz report")
    with ResultStore(out, readonly=True) as store:
        rows = store.evaluations()
        trials = {r["key"]: r for r in store.records()} if rows else {}
    out_rows = []
    for e in rows:
        t = trials.get(e["trial_key"], {})
        out_rows.append({
            "dataset": t.get("dataset"), "model": t.get("model"), "quality": t.get("quality"), "bitrate": t.get("bitrate"), "seed": t.get("seed"),
            "recipe": t.get("recipe"), "epochs": t.get("epochs"),
            **{k: e[k] for k in ("eval", "eval_quality", "eval_bitrate", "eps", "defense_quality", "accuracy", "images")},
        })
    df = pd.DataFrame.from_records(out_rows, columns=[*EVALUATION_COLUMNS, "recipe", "epochs"])
    for col in ("quality", "seed", "eval_quality", "defense_quality", "images", "epochs"):
        df[col] = df[col].astype("Int64")
    for col in ("bitrate", "eval_bitrate", "eps", "accuracy"):
        df[col] = df[col].astype("float64")
    df["accuracy_ci_low"], df["accuracy_ci_high"] = wilson_interval(df["accuracy"], df["images"])
    return df.sort_values(["dataset", "model", "quality", "bitrate", "seed", "eval", "defense_quality", "eval_quality", "eps"],
                          na_position="first", kind="stable").reset_index(drop=True)


def _with_intervals(g: Any, keys: list[str]) -> Any:
    """Per group of ``g``: mean accuracy, its Wilson interval on the group's images, and the t interval over seeds."""
    out = g.agg(accuracy=("accuracy", "mean"), sd=("accuracy", "std"), seeds=("seed", "nunique"), images=("images", "min")).reset_index()
    out["ci_low"], out["ci_high"] = wilson_interval(out["accuracy"], out["images"])
    out["seed_ci_low"], out["seed_ci_high"] = seed_interval(out["accuracy"], out["sd"], out["seeds"])
    return out[[*keys, "accuracy", "ci_low", "ci_high", "seed_ci_low", "seed_ci_high", "seeds", "images"]]


def cross_quality_cells(evals: Any) -> Any:
    """Clean accuracy per model, training level and test-time level, mean over seeds, with its intervals (long form).

    Columns: ``model, train level, test level, accuracy, ci_low, ci_high``
    (the 95% Wilson interval of the mean on the test images),
    ``seed_ci_low, seed_ci_high`` (the 95% t interval over seeds; NaN with one
    seed), ``seeds, images``.
    """
    pd = require("pandas", purpose="helmholtz report")
    clean = evals[evals["eval"] == "clean"]
    if clean.empty:
        return pd.DataFrame(columns=["model", "train level", "test level", "accuracy", "ci_low", "ci_high", "seed_ci_low", "seed_ci_high", "seeds", "images"])
    clean = clean.assign(
        train=[_level(q, b) for q, b in zip(clean["quality"], clean["bitrate"])],
        test=[_level(q, b, test=True) for q, b in zip(clean["eval_quality"], clean["eval_bitrate"])],
    )
    cells = _with_intervals(clean.groupby(["model", "train", "test"], sort=False), ["model", "train", "test"])
    order = sorted(range(len(cells)), key=lambda i: (cells["model"].iloc[i], level_sort_key(cells["train"].iloc[i]), level_sort_key(cells["test"].iloc[i])))
    return cells.iloc[order].reset_index(drop=True).rename(columns={"train": "train level", "test": "test level"})


def cross_quality(evals: Any, value: str = "accuracy") -> Any:
    """Clean accuracy, mean over seeds: one row per model and training level, one column per test-time level.

    ``value`` picks what the cells hold: ``"accuracy"`` (the mean), or one of
    the interval bounds of :func:`cross_quality_cells` (``"ci_low"``, ...).
    """
    pd = require("pandas", purpose="helmholtz report")
    cells = cross_quality_cells(evals)
    if cells.empty:
        return pd.DataFrame()
    if value not in ("accuracy", "ci_low", "ci_high", "seed_ci_low", "seed_ci_high"):
        raise ValueError(f"value must be accuracy, ci_low, ci_high, seed_ci_low or seed_ci_high; got {value!r}")
    table = cells.pivot_table(index=["model", "train level"], columns="test level", values=value, aggfunc="first", sort=False, dropna=False)
    table = table[sorted(table.columns, key=level_sort_key)]
    table = table.reindex(sorted(table.index, key=lambda ix: (ix[0], level_sort_key(ix[1]))))
    table.columns = [f"test {c}" for c in table.columns]
    table.columns.name = None
    return table.reset_index()


def robustness(evals: Any) -> Any:
    """Attack accuracies, mean over seeds, per model, training quality, attack, eps and defence.

    Columns: ``model, quality, eval, defense, eps, accuracy``, its 95% Wilson
    interval on the attacked images ``ci_low, ci_high``, the 95% t interval
    over seeds ``seed_ci_low, seed_ci_high`` (NaN with one seed), ``seeds, images``.
    """
    pd = require("pandas", purpose="helmholtz report")
    att = evals[evals["eval"] != "clean"]
    if att.empty:
        return pd.DataFrame()
    att = att.assign(defense=att["defense_quality"].astype("object").where(att["defense_quality"].notna(), "none"))
    keys = ["model", "quality", "eval", "defense", "eps"]
    return _with_intervals(att.groupby(keys, dropna=False, sort=True), keys)


def _level(q: Any, b: Any, test: bool = False) -> str:
    import pandas as pd

    if not pd.isna(q):
        return f"q={int(q)}"
    if not pd.isna(b):
        return f"{float(b):g} kbps"
    return "none" if test else "pcm"


def level_sort_key(text: str) -> tuple:
    """Sort key of a level's name: ``q=N`` by N, then ``B kbps`` by B, then ``none`` / ``pcm`` last."""
    if text.startswith("q="):
        return (0, int(text[2:]))
    if text.endswith("kbps"):
        return (1, float(text.split()[0]))
    return (2, 0)


def plot_target(folder: Path, name: str) -> Path:
    """``folder / name``, or a ValueError when something other than a file stands there (a folder of that name)."""
    path = Path(folder) / name
    if (path.exists() or path.is_symlink()) and not path.is_file():
        raise ValueError(f"cannot write the plot {str(path)!r}: something other than a file is in the way")
    return path


def plot_accuracy_intervals(ax: Any, x: Any, y: Any, low: Any, high: Any, seed_low: Any = None, seed_high: Any = None, label: str = "") -> Any:
    """Draw accuracies ``y`` at ``x`` with error bars ``[low, high]`` and, where given, a band ``[seed_low, seed_high]``.

    The bars are the 95% Wilson intervals from the test images; the band, the
    95% t interval over seeds (drawn only where it is known, i.e. with 2+ seeds).
    Returns the line, so that callers can match its colour.
    """
    import numpy as np

    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    lo, hi = np.asarray(low, dtype=float), np.asarray(high, dtype=float)
    known = ~(np.isnan(lo) | np.isnan(hi))
    yerr = np.vstack([np.where(known, y - lo, 0.0), np.where(known, hi - y, 0.0)]).clip(min=0)
    line = ax.errorbar(x, y, yerr=yerr, marker="o", capsize=3, label=label)
    if seed_low is not None and seed_high is not None:
        slo, shi = np.asarray(seed_low, dtype=float), np.asarray(seed_high, dtype=float)
        band = ~(np.isnan(slo) | np.isnan(shi))
        name = f"{label}: 95% t over seeds" if label else None
        if band.sum() >= 2:
            ax.fill_between(x, np.where(band, slo, y), np.where(band, shi, y), where=band, interpolate=False,
                            color=line[0].get_color(), alpha=0.15, linewidth=0, label=name)
        elif band.any():  # one point: a band has no width, so a broad pale bar
            ax.errorbar(x[band], y[band], yerr=np.vstack([y[band] - slo[band], shi[band] - y[band]]).clip(min=0), fmt="none",
                        ecolor=line[0].get_color(), elinewidth=9, alpha=0.2, label=name)
    return line


#: What the error bars and bands of every accuracy plot are (their y labels say it).
INTERVAL_NOTE = "bars: 95% Wilson (test images); band: 95% t over seeds"


def make_evaluation_plots(evals: Any, folder: str | os.PathLike, title: str = "") -> list[Path]:
    """Heatmaps of train x test quality per model, robust accuracy against eps and against the defence quality.

    Each heatmap cell shows the mean accuracy over seeds and, below it, its
    95% Wilson interval on the test images; the line plots draw the Wilson
    intervals as error bars and, with several seeds, the t interval over seeds as a band.
    """
    matplotlib = require("matplotlib", purpose="helmholtz report")
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    matrix = cross_quality(evals)
    lows, highs = cross_quality(evals, "ci_low"), cross_quality(evals, "ci_high")
    for model, grp in (matrix.groupby("model", sort=True) if not matrix.empty else []):
        path = plot_target(folder, f"cross_quality_{model}.png")
        values = grp.drop(columns=["model", "train level"]).to_numpy(dtype=float)
        low = lows.loc[grp.index].drop(columns=["model", "train level"]).to_numpy(dtype=float)
        high = highs.loc[grp.index].drop(columns=["model", "train level"]).to_numpy(dtype=float)
        fig, ax = plt.subplots(figsize=(1.6 + 1.1 * values.shape[1], 1.4 + 0.65 * values.shape[0]), dpi=120)
        im = ax.imshow(values, cmap="viridis", vmin=0, vmax=1, aspect="auto")
        ax.set_xticks(range(values.shape[1]), [c.removeprefix("test ") for c in grp.columns[2:]], fontsize=8)
        ax.set_yticks(range(values.shape[0]), list(grp["train level"]), fontsize=8)
        for i in range(values.shape[0]):
            for j in range(values.shape[1]):
                if values[i, j] == values[i, j]:
                    ci = f"\n[{low[i, j]:.2f}, {high[i, j]:.2f}]" if low[i, j] == low[i, j] else ""
                    ax.text(j, i, f"{values[i, j]:.2f}{ci}", ha="center", va="center", fontsize=6.5, color="w" if values[i, j] < 0.6 else "k")
        ax.set_xlabel("test-time compression")
        ax.set_ylabel("training compression")
        ax.set_title(f"model {model}: clean accuracy [95% Wilson interval]" + (f"\n{title}" if title else ""), fontsize=8)
        fig.colorbar(im, ax=ax, fraction=0.046)
        fig.tight_layout()
        fig.savefig(path)
        plt.close(fig)
        written.append(path)
    rob = robustness(evals)
    if not rob.empty:
        alone = rob[rob["defense"] == "none"]
        if not alone.empty:
            written.append(_lines(plt, alone, "eps", "eps (1/255)", f"robust accuracy\n(model alone, tested at its training quality)\n{INTERVAL_NOTE}",
                                  plot_target(folder, "robust_accuracy_vs_eps.png"), title))
        defended = rob[rob["defense"] != "none"]
        if not defended.empty:
            written.append(_lines(plt, defended.assign(defense=defended["defense"].astype(int)), "defense", "JPEG defence quality",
                                  f"robust accuracy\n(JPEG_q -> model, BPDA)\n{INTERVAL_NOTE}", plot_target(folder, "robust_accuracy_vs_defense_quality.png"),
                                  title, by_eps=True))
    return written


def _lines(plt: Any, df: Any, x: str, xlabel: str, ylabel: str, path: Path, title: str, by_eps: bool = False) -> Path:
    fig, ax = plt.subplots(figsize=(8.4, 4.6), dpi=120)
    keys = ["model", "quality", "eval"] + (["eps"] if by_eps else [])
    for key, grp in df.groupby(keys, sort=True):
        grp = grp.sort_values(x)
        images = sorted({int(n) for n in grp["images"].dropna()})
        label = f"{key[0]} q={key[1]} {key[2]}" + (f" eps={key[3]:g}" if by_eps else "") + (f" ({images[0]} images)" if len(images) == 1 else "")
        plot_accuracy_intervals(ax, grp[x].astype(float), grp["accuracy"], grp["ci_low"], grp["ci_high"], grp["seed_ci_low"], grp["seed_ci_high"], label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))  # beside the axes: many lines
    if title:
        ax.set_title(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
