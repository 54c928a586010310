"""``helmholtz report``: tables, plots and Helmholtz numbers of a sweep."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .._extras import check_extra
from ..experiments.report import FORMATS, fingerprint_warnings, helmholtz_numbers, load_trials, make_plots, plot_title, render, summarize
from ..experiments.report_evaluations import load_evaluations, make_evaluation_plots
from ..experiments.store import db_path

__all__ = ["register", "main"]


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``report`` sub-command to the ``helmholtz`` parser."""
    p = subparsers.add_parser("report", help="tables, plots and Helmholtz numbers of a sweep", description="Tables, plots and Helmholtz numbers from a sweep's results database.")
    p.add_argument("out", help="the sweep's output folder (or its results.sqlite)")
    p.add_argument("--format", choices=FORMATS, default="table", help="output format (csv and json print the trials on stdout)")
    p.add_argument("--table", choices=("trials", "evaluations"), default="trials", help="what --format csv prints (default trials)")
    p.add_argument("--plots-dir", default=None, help="where to write the PNG plots (default OUT/plots)")
    p.add_argument("--no-plots", action="store_true", help="do not draw plots")
    p.set_defaults(func=main)
    return p


def main(args: argparse.Namespace) -> int:
    """Run ``helmholtz report`` from parsed arguments; returns the exit status."""
    check_extra("report", ("pandas",) if args.no_plots else ("pandas", "matplotlib"), purpose="helmholtz report")
    trials = load_trials(args.out)
    if trials.empty:
        print(f"no finished trials in {db_path(args.out)} yet", file=sys.stderr)
    summary = summarize(trials)
    numbers = helmholtz_numbers(summary, trials)
    evaluations = load_evaluations(args.out)
    plots: list[Path] = []
    if not args.no_plots and not trials.empty:
        folder = Path(args.plots_dir) if args.plots_dir else db_path(args.out).parent / "plots"
        plots = make_plots(summary, folder)
        if not evaluations.empty:
            plots += make_evaluation_plots(evaluations, folder, plot_title(summary))
    text = render(trials, summary, numbers, args.format, plots, evaluations=evaluations, table=args.table)
    print(text)
    if args.format == "csv":
        for warning in fingerprint_warnings(trials):
            print(f"warning: {warning}", file=sys.stderr)
        if plots:
            print("plots: " + ", ".join(str(p) for p in plots), file=sys.stderr)
    return 0
