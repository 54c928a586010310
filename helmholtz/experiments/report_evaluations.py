"""The evaluations part of ``helmholtz report``: cross-quality matrices, robust accuracies, their plots.

:func:`load_evaluations` joins each stored evaluation with its trial; the
rows of :data:`EVALUATION_COLUMNS` are what ``--format json`` lists under
``"evaluations"`` and ``--format csv --table evaluations`` prints.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .._extras import require
from .store import ResultStore

__all__ = ["EVALUATION_COLUMNS", "load_evaluations", "cross_quality", "robustness", "make_evaluation_plots"]

#: Columns of an evaluation row, in order (``quality`` / ``bitrate`` are the training level).
EVALUATION_COLUMNS = [
    "dataset", "model", "quality", "bitrate", "seed", "eval", "eval_quality", "eval_bitrate", "eps", "defense_quality", "accuracy", "images",
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
    return df.sort_values(["dataset", "model", "quality", "bitrate", "seed", "eval", "defense_quality", "eval_quality", "eps"],
                          na_position="first", kind="stable").reset_index(drop=True)


def cross_quality(evals: Any) -> Any:
    """Clean accuracy, mean over seeds: one row per model and training level, one column per test-time level."""
    pd = require("pandas", purpose="helmholtz report")
    clean = evals[evals["eval"] == "clean"]
    if clean.empty:
        return pd.DataFrame()
    clean = clean.assign(
        train=[_level(q, b) for q, b in zip(clean["quality"], clean["bitrate"])],
        test=[_level(q, b, test=True) for q, b in zip(clean["eval_quality"], clean["eval_bitrate"])],
    )
    table = clean.pivot_table(index=["model", "train"], columns="test", values="accuracy", aggfunc="mean", sort=False)
    table = table[sorted(table.columns, key=_level_order)]
    table = table.reindex(sorted(table.index, key=lambda ix: (ix[0], _level_order(ix[1]))))
    table.columns = [f"test {c}" for c in table.columns]
    return table.reset_index().rename(columns={"train": "train level"})


def robustness(evals: Any) -> Any:
    """Attack accuracies, mean over seeds, per model, training quality, attack, eps and defence."""
    pd = require("pandas", purpose="helmholtz report")
    att = evals[evals["eval"] != "clean"]
    if att.empty:
        return pd.DataFrame()
    att = att.assign(defense=att["defense_quality"].astype("object").where(att["defense_quality"].notna(), "none"))
    g = att.groupby(["model", "quality", "eval", "defense", "eps"], dropna=False, sort=True)
    return g.agg(accuracy=("accuracy", "mean"), seeds=("seed", "nunique"), images=("images", "first")).reset_index()


def _level(q: Any, b: Any, test: bool = False) -> str:
    import pandas as pd

    if not pd.isna(q):
        return f"q={int(q)}"
    if not pd.isna(b):
        return f"{float(b):g} kbps"
    return "none" if test else "pcm"


def _level_order(text: str) -> tuple:
    if text.startswith("q="):
        return (0, int(text[2:]))
    if text.endswith("kbps"):
        return (1, float(text.split()[0]))
    return (2, 0)


def make_evaluation_plots(evals: Any, folder: str | os.PathLike, title: str = "") -> list[Path]:
    """Heatmaps of train x test quality per model, robust accuracy against eps and against the defence quality."""
    matplotlib = require("matplotlib", purpose="helmholtz report")
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    matrix = cross_quality(evals)
    for model, grp in (matrix.groupby("model", sort=True) if not matrix.empty else []):
        values = grp.drop(columns=["model", "train level"]).to_numpy(dtype=float)
        fig, ax = plt.subplots(figsize=(1.2 + 0.8 * values.shape[1], 1.2 + 0.5 * values.shape[0]), dpi=120)
        im = ax.imshow(values, cmap="viridis", vmin=0, vmax=1, aspect="auto")
        ax.set_xticks(range(values.shape[1]), [c.removeprefix("test ") for c in grp.columns[2:]], fontsize=8)
        ax.set_yticks(range(values.shape[0]), list(grp["train level"]), fontsize=8)
        for i in range(values.shape[0]):
            for j in range(values.shape[1]):
                if values[i, j] == values[i, j]:
                    ax.text(j, i, f"{values[i, j]:.2f}", ha="center", va="center", fontsize=7, color="w" if values[i, j] < 0.6 else "k")
        ax.set_xlabel("test-time compression")
        ax.set_ylabel("training compression")
        ax.set_title(f"model {model}: clean accuracy" + (f"\n{title}" if title else ""), fontsize=8)
        fig.colorbar(im, ax=ax, fraction=0.046)
        fig.tight_layout()
        path = folder / f"cross_quality_{model}.png"
        fig.savefig(path)
        plt.close(fig)
        written.append(path)
    rob = robustness(evals)
    if not rob.empty:
        alone = rob[rob["defense"] == "none"]
        if not alone.empty:
            written.append(_lines(plt, alone, "eps", "eps (1/255)", "robust accuracy\n(model alone, tested at its training quality)",
                                  folder / "robust_accuracy_vs_eps.png", title))
        defended = rob[rob["defense"] != "none"]
        if not defended.empty:
            written.append(_lines(plt, defended.assign(defense=defended["defense"].astype(int)), "defense", "JPEG defence quality",
                                  "robust accuracy\n(JPEG_q -> model, BPDA)", folder / "robust_accuracy_vs_defense_quality.png", title, by_eps=True))
    return written


def _lines(plt: Any, df: Any, x: str, xlabel: str, ylabel: str, path: Path, title: str, by_eps: bool = False) -> Path:
    fig, ax = plt.subplots(figsize=(8.4, 4.4), dpi=120)
    keys = ["model", "quality", "eval"] + (["eps"] if by_eps else [])
    for key, grp in df.groupby(keys, sort=True):
        grp = grp.sort_values(x)
        label = f"{key[0]} q={key[1]} {key[2]}" + (f" eps={key[3]:g}" if by_eps else "")
        ax.plot(grp[x].astype(float), grp["accuracy"].astype(float), marker="o", label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))  # beside the axes: many lines
    if title:
        ax.set_title(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
