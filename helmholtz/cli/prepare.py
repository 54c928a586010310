"""``helmholtz prepare``: decode a data set once into memory-mappable shards that every later command streams."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .._extras import check_extra
from ..data import dataset_names, get_spec, open_dataset, parse_size, prepare

__all__ = ["register", "main"]


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``prepare`` sub-command to the ``helmholtz`` argument parser."""
    p = subparsers.add_parser(
        "prepare",
        help="decode a data set once into memory-mappable uint8 shards (then --dataset DIR streams it)",
        description="Decode SOURCE once, on every core and in a fixed order, bring every image to HxW, and write uint8 NHWC shards "
        "(.npy, memory-mappable), labels, class names and a manifest into OUT. Killed, the same command resumes without redoing "
        "finished shards. Then pass --dataset OUT (or prepared:OUT) to sweep, info and report.",
    )
    names = [n for n in dataset_names() if get_spec(n).kind == "image"]
    p.add_argument("source", metavar="SOURCE",
                   help=f"what --dataset takes: {', '.join(names)}, an image folder, a .npz path, hf:NAME_OR_PATH or wds:SHARDS")
    p.add_argument("--size", required=True, metavar="HxW", help="height x width of every prepared image, e.g. 64x64")
    p.add_argument("--out", required=True, metavar="DIR", help="the folder to write (created; an existing one must hold this same preparation)")
    p.add_argument("--fit", choices=("crop", "pad", "stretch"), default="crop",
                   help="crop: scale the shorter side to fit, then take the centre (default); pad: scale the longer side to fit, "
                   "black borders; stretch: resample to HxW, aspect not kept")
    p.add_argument("--data-dir", default=None, help="data folder (default $HELMHOLTZ_DATA); for folder, the image folder itself")
    p.add_argument("--gray", action="store_true", help="prepare grayscale (one channel) images; default RGB")
    p.add_argument("--skip-bad", action="store_true", help="leave out files that cannot be decoded (named and counted) instead of stopping")
    p.add_argument("--exact", action="store_true", help="decode JPEGs at full size before resizing (slower; no DCT-domain downscaling)")
    p.add_argument("--workers", type=int, default=None, metavar="N", help="decoding processes (default: every core)")
    p.add_argument("--shard-size", type=int, default=None, metavar="N", help="images per shard (default: about 64 MiB of pixels)")
    bars = p.add_mutually_exclusive_group()
    bars.add_argument("--progress", dest="progress", action="store_true", default=None, help="always show the progress bar")
    bars.add_argument("--no-progress", dest="progress", action="store_false", help="never show the progress bar")
    p.set_defaults(func=main)
    return p


def main(args: argparse.Namespace) -> int:
    """Run ``helmholtz prepare`` from parsed arguments."""
    check_extra("data", ("PIL",), purpose="helmholtz prepare")
    size = parse_size(args.size, "--size")
    spec = get_spec(args.source)
    if spec.kind != "image":
        raise ValueError(f"SOURCE {args.source!r} is an {spec.kind} data set; helmholtz prepare prepares image data sets")
    for flag, value in (("--workers", args.workers), ("--shard-size", args.shard_size)):
        if value is not None and value < 1:
            raise ValueError(f"{flag} must be >= 1; got {value}")
    options: dict[str, Any] = {}
    if args.skip_bad:
        options["skip_bad"] = True
    if args.exact:
        if not spec.resizable:
            raise ValueError(f"--exact applies to sources of encoded images; {args.source} is held as pixels")
        options["exact"] = True
    ds = open_dataset(args.source, args.data_dir, **options)
    readers = {"train": ds.reader("train"), "test": ds.reader("test")}
    result = prepare(
        args.source, readers, args.out, size=size, fit=args.fit, mode="L" if args.gray else "RGB", name=ds.name,
        shard_size=args.shard_size, workers=args.workers, progress=args.progress,
    )
    images = ", ".join(f"{split} {n:,}" for split, n in result["images"].items())
    resumed = f", {result['resumed']} already done" if result["resumed"] else ""
    skipped = f"; {result['skipped']} file(s) could not be decoded and were left out" if result["skipped"] else ""
    print(f"prepared {images} images of {size[0]}x{size[1]} into {args.out} ({result['written']} shard(s) written{resumed}, "
          f"{result['seconds']:.1f} s){skipped}")
    print(f"use it with: helmholtz sweep --dataset prepared:{args.out} ...  (or info --dataset prepared:{args.out})", file=sys.stderr)
    return 0
