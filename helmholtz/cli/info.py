"""``helmholtz info``: information measures of a data set per JPEG quality."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import numpy as np

from .._codec.arrays import as_quality_list
from .._extras import check_extra
from ..data import Reader, dataset_names, get_spec, open_dataset
from ..info import DEFAULT_QUALITIES, dataset_report, plot_report

__all__ = ["register", "main", "load_images", "open_images", "check_output_path"]


def open_images(name: str, data_dir: Any, split: str = "test", limit: int | None = None, download: bool = False, seed: int = 0) -> Reader:
    """One split of an image data set as a reader, or a seeded random sample of ``limit`` of its images.

    Nothing is decoded here: ``helmholtz info`` reads the reader a chunk at a
    time, so a sample of a folder decodes only the sampled files, and memory
    stays flat in the data set's size. The sample is uniform over the split
    (so every class is drawn from in proportion), the same for the same
    ``seed``.

    Raises
    ------
    ValueError
        For a bad ``split``, ``limit`` or ``seed``, an unknown data set, or
        one that is not an image data set (info measures JPEG).
    """
    if split not in ("test", "train"):
        raise ValueError(f"split must be 'test' or 'train'; got {split!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1):
        raise ValueError(f"limit must be a positive int; got {limit!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an int; got {seed!r}")
    spec = get_spec(name)
    if spec.kind != "image":
        images = [n for n in dataset_names() if n != name and get_spec(n).kind == "image"]
        raise ValueError(f"dataset {name!r} is of kind {spec.kind!r}; helmholtz info measures JPEG on image data sets ({', '.join(images)})")
    if download and not spec.downloadable:
        raise ValueError(f"--download works for {', '.join(n for n in dataset_names() if get_spec(n).downloadable)}, not {spec.name}")
    ds = open_dataset(name, data_dir, download=download) if download else open_dataset(name, data_dir)
    reader = ds.reader(split)
    return reader.sample(limit, seed) if limit is not None else reader


def load_images(
    name: str, data_dir: Any, split: str = "test", limit: int | None = None, download: bool = False, seed: int = 0
) -> np.ndarray | list[np.ndarray]:
    """The images of one split of an image data set in memory (a seeded random sample of ``limit`` of them; see :func:`open_images`).

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
    reader = open_images(name, data_dir, split, limit, download, seed)
    x, _ = reader[:]
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
    if not p.exists():  # a folder can look writable and refuse new files (/proc, a read-only mount): try, leave nothing
        try:
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except OSError as exc:
            raise ValueError(f"{option} {str(p)!r} cannot be written ({exc.strerror or exc})") from None
        os.close(fd)
        os.unlink(p)
    return p


def _write(path: str, option: str, write: Any) -> None:
    try:
        write(path)
    except OSError as exc:
        raise ValueError(f"{option} {path!r} cannot be written ({exc.strerror or exc})") from None


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
    if args.workers is not None and args.workers < 1:
        raise ValueError(f"--workers must be >= 1; got {args.workers}")
    if args.workers is None:
        args.workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    for option in ("csv", "json", "plot"):
        if getattr(args, option):
            check_output_path(getattr(args, option), f"--{option}")
    if args.download and not args.data_dir:
        raise ValueError("--download needs --data-dir")
    reader = open_images(args.dataset, args.data_dir, args.split, args.limit, download=args.download, seed=args.seed)
    sizes: set = set()
    if reader.image_shape is None:
        # a split of mixed sizes: count them as the images stream past
        class _Sizes:
            def __init__(self, r: Reader) -> None:
                self.r, self.image_shape = r, None

            def batches(self, n: int):
                for x, y in self.r.batches(n):
                    sizes.update(im.shape[:2] for im in x)
                    yield x, y

        source: Any = _Sizes(reader)
    else:
        source = reader
    bar = _bar(len(reader), f"info {args.dataset} {args.split}")
    try:
        df = dataset_report(source, qualities, subsampling=args.subsampling, optimize=args.optimize, backend=args.backend, progress=bar.update,
                            workers=args.workers)
    finally:
        bar.close()
    import pandas as pd  # checked above; only for the display width

    shown = f", {len(sizes)} size{'s' if len(sizes) != 1 else ''}" if reader.image_shape is None else ""
    sample = f" (a seeded sample, seed {args.seed})" if args.limit is not None and args.limit < len(reader.base if hasattr(reader, "base") else reader) else ""
    with pd.option_context("display.width", 200, "display.max_columns", 50):
        print(f"{args.dataset} {args.split}: {len(reader)} images{sample}{shown}, subsampling {args.subsampling or 'Pillow default'}, optimize={args.optimize}")
        print(df.to_string(float_format=lambda v: f"{v:.4g}"))
    if args.csv:
        _write(args.csv, "--csv", df.to_csv)
    if args.json:
        _write(args.json, "--json", lambda p: df.reset_index().to_json(p, orient="records", indent=2))
    if args.plot:
        _write(args.plot, "--plot", lambda p: plot_report(df, p, f"{args.dataset} {args.split} ({len(reader)} images)"))
    return 0


def _bar(total: int, desc: str) -> Any:
    """A progress bar on stderr when it is a terminal (tqdm's), else nothing."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        class _Quiet:
            def update(self, n: int) -> None:
                pass

            def close(self) -> None:
                pass

        return _Quiet()
    import sys

    return tqdm(total=total, desc=desc, unit="img", disable=None, file=sys.stderr, dynamic_ncols=True, leave=False)


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``info`` sub-command to the ``helmholtz`` argument parser."""
    p = subparsers.add_parser(
        "info",
        help="bits per pixel, entropies, PSNR and zero fraction of a dataset per JPEG quality",
        description="Information measures of an image data set compressed with JPEG at several qualities. "
        "Reads every image data set helmholtz sweep reads, a chunk at a time (memory stays flat in the number of images); "
        "an image folder of mixed sizes is measured image by image.",
    )
    names = [n for n in dataset_names() if get_spec(n).kind == "image"]
    p.add_argument("--dataset", default="cifar10",
                   help=f"image data set: {', '.join(names)}; or prepared:DIR, a .npz path, hf:NAME_OR_PATH, wds:SHARDS (default cifar10)")
    p.add_argument("--data-dir", help="data folder, or the image folder itself for --dataset folder (default $HELMHOLTZ_DATA)")
    p.add_argument("--download", action="store_true", help="download the data set into --data-dir if missing (checksummed)")
    p.add_argument("--qualities", default=",".join(map(str, DEFAULT_QUALITIES)), help="comma-separated JPEG qualities 1..100 (default %(default)s)")
    p.add_argument("--split", default="test", choices=["test", "train"], help="which split to measure (default test)")
    p.add_argument("--limit", type=int, help="measure a seeded random sample of N images of the split (only those are decoded)")
    p.add_argument("--seed", type=int, default=0, help="seed of the --limit sample (default 0)")
    p.add_argument("--workers", type=int, default=None, metavar="N", help="measure in N processes (default: every core)")
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
