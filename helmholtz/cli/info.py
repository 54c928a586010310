"""``helmholtz info``: information measures of a data set per JPEG quality."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import numpy as np

from .._codec.arrays import as_quality_list
from .._extras import check_extra
from ..data import dataset_names, get_spec
from ..info import DEFAULT_QUALITIES, dataset_report, plot_report

__all__ = ["register", "main", "load_images", "check_output_path"]


def load_images(
    name: str, data_dir: Any, split: str = "test", limit: int | None = None, download: bool = False
) -> np.ndarray | list[np.ndarray]:
    """The images of one split of an image data set (first ``limit`` of them).

    The data set is looked up in the same registry as ``helmholtz sweep``'s
    (:func:`helmholtz.data.get_spec`), so every image data set a sweep reads
    can be measured: CIFAR-10, MNIST, an image folder, or a registered one.

    Returns
    -------
    ndarray or list of ndarray
        uint8 ``(N, H, W, C)`` when every image has one size; a list of
        ``(H, W, C)`` arrays for a folder of mixed sizes, which the codec
        measures image by image (see :mod:`helmholtz.jpeg`'s ragged lists).

    Raises
    ------
    ValueError
        For a bad ``split`` or ``limit``, an unknown data set, or one that is
        not an image data set (info measures JPEG).
    """
    if split not in ("test", "train"):
        raise ValueError(f"split must be 'test' or 'train'; got {split!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1):
        raise ValueError(f"limit must be a positive int; got {limit!r}")
    spec = get_spec(name)
    if spec.kind != "image":
        images = [n for n in dataset_names() if n != name and get_spec(n).kind == "image"]
        raise ValueError(f"dataset {name!r} is of kind {spec.kind!r}; helmholtz info measures JPEG on image data sets ({', '.join(images)})")
    if download and not spec.downloadable:
        raise ValueError(f"--download works for {', '.join(n for n in dataset_names() if get_spec(n).downloadable)}, not {spec.name}")
    ds = spec.loader(data_dir, download=True) if download else spec.loader(data_dir)
    x = ds.x_train if split == "train" else ds.x_test
    x = x[:limit] if limit is not None else x
    if isinstance(x, list):  # a folder of mixed sizes: a ragged list for the codec
        return [np.ascontiguousarray(im) for im in x]
    return np.ascontiguousarray(x)


def check_output_path(path: Any, option: str) -> Path:
    """``path`` as a Path a file can be written to, or a ValueError naming ``option`` and the path.

    Checked before any work, so that a long run does not end on an unwritable
    output. Nothing is created.
    """
    p = Path(path)
    if p.is_dir():
        raise ValueError(f"{option} {str(p)!r} is a folder; give a file name")
    parent = p.parent
    if not parent.is_dir():
        what = "is not a folder" if parent.exists() else "does not exist"
        raise ValueError(f"{option} {str(p)!r} cannot be written: its folder {str(parent)!r} {what}")
    writable = os.access(p, os.W_OK) if p.exists() else os.access(parent, os.W_OK | os.X_OK)
    if not writable:
        raise ValueError(f"{option} {str(p)!r} cannot be written: permission denied")
    return p


def _parse_qualities(text: str) -> list[int]:
    try:
        qs = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise ValueError(f"--qualities must be comma-separated ints such as 1,5,10; got {text!r}") from None
    as_quality_list(qs, "--qualities")
    return qs


def main(args: argparse.Namespace) -> int:
    """Run ``helmholtz info`` from parsed arguments."""
    # Everything that can fail cheaply fails first: extras, arguments, output paths; then the work.
    check_extra("report", ("pandas", "matplotlib") if args.plot else ("pandas",), purpose="helmholtz info")
    qualities = _parse_qualities(args.qualities)
    for option in ("csv", "json", "plot"):
        if getattr(args, option):
            check_output_path(getattr(args, option), f"--{option}")
    if args.download and not args.data_dir:
        raise ValueError("--download needs --data-dir")
    images = load_images(args.dataset, args.data_dir, args.split, args.limit, download=args.download)
    df = dataset_report(images, qualities, subsampling=args.subsampling, optimize=args.optimize, backend=args.backend)
    import pandas as pd  # checked above; only for the display width

    ragged = isinstance(images, list)
    n_sizes = len({im.shape[:2] for im in images}) if ragged else 1
    sizes = f", {n_sizes} size{'s' if n_sizes != 1 else ''}" if ragged else ""
    with pd.option_context("display.width", 200, "display.max_columns", 50):
        print(f"{args.dataset} {args.split}: {len(images)} images{sizes}, subsampling {args.subsampling or 'Pillow default'}, optimize={args.optimize}")
        print(df.to_string(float_format=lambda v: f"{v:.4g}"))
    if args.csv:
        df.to_csv(args.csv)
    if args.json:
        df.reset_index().to_json(args.json, orient="records", indent=2)
    if args.plot:
        plot_report(df, args.plot, f"{args.dataset} {args.split} ({len(images)} images)")
    return 0


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``info`` sub-command to the ``helmholtz`` argument parser."""
    p = subparsers.add_parser(
        "info",
        help="bits per pixel, entropies, PSNR and zero fraction of a dataset per JPEG quality",
        description="Information measures of an image data set compressed with JPEG at several qualities. "
        "Reads every image data set helmholtz sweep reads; an image folder of mixed sizes is measured image by image.",
    )
    names = [n for n in dataset_names() if get_spec(n).kind == "image"]
    p.add_argument("--dataset", default="cifar10", help=f"image data set: {', '.join(names)} (default cifar10)")
    p.add_argument("--data-dir", help="data folder, or the image folder itself for --dataset folder (default $HELMHOLTZ_DATA)")
    p.add_argument("--download", action="store_true", help="download the data set into --data-dir if missing (checksummed)")
    p.add_argument("--qualities", default=",".join(map(str, DEFAULT_QUALITIES)), help="comma-separated JPEG qualities 1..100 (default %(default)s)")
    p.add_argument("--split", default="test", choices=["test", "train"], help="which split to measure (default test)")
    p.add_argument("--limit", type=int, help="use the first N images")
    p.add_argument(
        "--subsampling",
        default=None,
        choices=["4:2:0", "4:2:2", "4:4:4"],
        help="chroma subsampling (default: Pillow's default, 4:2:0 for colour and 1x1 for grayscale)",
    )
    p.add_argument("--optimize", action="store_true", help="per-image optimal Huffman tables")
    p.add_argument("--backend", default="auto", choices=["auto", "cpu", "numpy"], help="codec backend (default auto: the C core when built)")
    p.add_argument("--csv", help="write the table as CSV to this file")
    p.add_argument("--json", help="write the table as JSON records to this file")
    p.add_argument("--plot", help="draw bpp and PSNR against quality into this PNG")
    p.set_defaults(func=main)
    return p
