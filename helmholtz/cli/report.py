"""``helmholtz report``: tables, plots and Helmholtz numbers of a sweep."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from .._extras import check_extra
from ..experiments.report import (
    FORMATS, compare_levels, fingerprint_warnings, helmholtz_numbers, load_trials, make_plots, plot_title, render, summarize,
)
from ..experiments.report_evaluations import load_evaluations, make_evaluation_plots
from ..experiments.store import db_path

__all__ = ["register", "main", "check_plots_dir"]


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``report`` sub-command to the ``helmholtz`` parser."""
    p = subparsers.add_parser("report", help="tables, plots and Helmholtz numbers of a sweep", description="Tables, plots and Helmholtz numbers from a sweep's results database.")
    p.add_argument("out", help="the sweep's output folder (or its results.sqlite)")
    p.add_argument("--format", choices=FORMATS, default="table", help="output format (csv and json print the trials on stdout)")
    p.add_argument("--table", choices=("trials", "evaluations"), default="trials", help="what --format csv prints (default trials)")
    plots = p.add_mutually_exclusive_group()
    plots.add_argument("--plots-dir", default=None, help="folder to write the PNG plots into, created if missing (default OUT/plots)")
    plots.add_argument("--no-plots", action="store_true", help="do not draw plots")
    p.set_defaults(func=main)
    return p


def check_plots_dir(folder: str | os.PathLike, option: str) -> Path:
    """``folder`` as a folder the plots can be written into, or a ValueError naming ``option``; nothing is created.

    The folder may exist (the plots replace their own earlier versions) or
    be missing below a writable folder; it may not be empty, the root, a file,
    below a file, unwritable or named in bytes that are not UTF-8 (the report
    prints the plots' paths).
    """
    text = os.fspath(folder)
    if not text:  # Path("") would be the current folder
        raise ValueError(f"{option} must name a folder; got ''")
    try:
        os.fsencode(text).decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{option} {text!r} is not valid UTF-8; name the folder in UTF-8") from None
    path = Path(os.path.abspath(folder))
    if path == Path(path.anchor):
        raise ValueError(f"{option} {text!r} is the file system's root; name a folder for the plots")
    if path.exists() and not path.is_dir():
        raise ValueError(f"{option} {text!r} is a file, not a folder")
    existing = path
    while not existing.exists():  # the nearest existing folder above: the one mkdir would write into
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"{option} {text!r} cannot be created: {str(existing)!r} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        where = "" if existing == path else f" ({str(existing)!r} is not writable)"
        raise ValueError(f"{option} {text!r} cannot be written: permission denied{where}")
    return Path(text)


def main(args: argparse.Namespace) -> int:
    """Run ``helmholtz report`` from parsed arguments; returns the exit status."""
    check_extra("report", ("pandas",) if args.no_plots else ("pandas", "matplotlib"), purpose="helmholtz report")
    trials = load_trials(args.out)  # read only: a missing or foreign database is named first
    folder = None
    if not args.no_plots:  # checked before anything is computed or written
        if args.plots_dir is not None:
            folder = check_plots_dir(args.plots_dir, "--plots-dir")
        else:
            folder = check_plots_dir(db_path(args.out).parent / "plots", "the plots folder (the default of --plots-dir)")
    if trials.empty:
        print(f"no finished trials in {db_path(args.out)} yet", file=sys.stderr)
    summary = summarize(trials)
    numbers = helmholtz_numbers(summary, trials)
    evaluations = load_evaluations(args.out)
    plots: list[Path] = []
    if folder is not None and not trials.empty:
        try:
            plots = make_plots(summary, folder)
            if not evaluations.empty:
                plots += make_evaluation_plots(evaluations, folder, plot_title(summary))
        except OSError as exc:  # a full disk, storage turned read-only since the check
            option = "--plots-dir" if args.plots_dir is not None else "the plots folder (the default of --plots-dir)"
            raise ValueError(f"{option} {str(folder)!r}: cannot write the plots: {exc.strerror or exc}") from None
    text = render(trials, summary, numbers, args.format, plots, evaluations=evaluations, table=args.table)
    print(text)
    if args.format == "csv":
        for warning in fingerprint_warnings(trials):
            print(f"warning: {warning}", file=sys.stderr)
        for sentence in compare_levels(summary)["text"]:
            print(f"note: {sentence}", file=sys.stderr)
        if plots:
            print("plots: " + ", ".join(str(p) for p in plots), file=sys.stderr)
    return 0
