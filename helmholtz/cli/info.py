"""``helmholtz info``: information measures of a data set per JPEG quality."""

from __future__ import annotations

import argparse

import numpy as np

from .._codec.arrays import as_quality_list
from ..data import load_dataset as load_named_dataset
from ..info import DEFAULT_QUALITIES, dataset_report, plot_report

__all__ = ["register", "main", "load_images"]


def load_images(name: str, data_dir, split: str = "test", limit: int | None = None) -> np.ndarray:
    """The images of one split of a data set (first ``limit`` of them)."""
    if split not in ("test", "train"):
        raise ValueError(f"split must be 'test' or 'train'; got {split!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1):
        raise ValueError(f"limit must be a positive int; got {limit!r}")
    ds = load_named_dataset(name, data_dir)
    x = ds.x_train if split == "train" else ds.x_test
    return np.ascontiguousarray(x[:limit] if limit is not None else x)


def _parse_qualities(text: str) -> list[int]:
    try:
        qs = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise ValueError(f"--qualities must be comma-separated ints such as 1,5,10; got {text!r}") from None
    as_quality_list(qs, "--qualities")
    return qs


def main(args: argparse.Namespace) -> int:
    """Run ``helmholtz info`` from parsed arguments."""
    import pandas as pd  # noqa: I001 - the experiments extra; dataset_report needs it too

    qualities = _parse_qualities(args.qualities)
    images = load_images(args.dataset, args.data_dir, args.split, args.limit)
    df = dataset_report(images, qualities, subsampling=args.subsampling, optimize=args.optimize, backend=args.backend)
    with pd.option_context("display.width", 200, "display.max_columns", 50):
        print(f"{args.dataset} {args.split}: {len(images)} images, subsampling {args.subsampling}, optimize={args.optimize}")
        print(df.to_string(float_format=lambda v: f"{v:.4g}"))
    if args.csv:
        df.to_csv(args.csv)
    if args.json:
        df.reset_index().to_json(args.json, orient="records", indent=2)
    if args.plot:
        plot_report(df, args.plot, f"{args.dataset} {args.split} ({len(images)} images)")
    return 0


def register(subparsers) -> None:
    """Add the ``info`` sub-command to the ``helmholtz`` argument parser."""
    p = subparsers.add_parser(
        "info",
        help="bits per pixel, entropies, PSNR and zero fraction of a dataset per JPEG quality",
        description="Information measures of a dataset compressed with JPEG at several qualities.",
    )
    p.add_argument("--dataset", default="cifar10", choices=["cifar10"], help="dataset (default cifar10)")
    p.add_argument("--data-dir", help="data folder (default $HELMHOLTZ_DATA)")
    p.add_argument("--qualities", default=",".join(map(str, DEFAULT_QUALITIES)), help="comma-separated JPEG qualities")
    p.add_argument("--split", default="test", choices=["test", "train"])
    p.add_argument("--limit", type=int, help="use the first N images")
    p.add_argument("--subsampling", default="4:2:0", choices=["4:2:0", "4:2:2", "4:4:4"])
    p.add_argument("--optimize", action="store_true", help="per-image optimal Huffman tables")
    p.add_argument("--backend", default="auto", choices=["auto", "cpu", "numpy"])
    p.add_argument("--csv", help="write the table as CSV")
    p.add_argument("--json", help="write the table as JSON records")
    p.add_argument("--plot", help="draw bpp and PSNR against quality into this PNG")
    p.set_defaults(func=main)
