"""Progress bars and one-line trial summaries for the sweep's console output."""

from __future__ import annotations

import sys
from typing import Any

from .._extras import require

__all__ = ["progress_bar", "summary_line", "log_stderr"]


def progress_bar(total: int, desc: str, progress: bool | None, leave: bool, position: int):
    tqdm = require("tqdm.auto", purpose="helmholtz sweep").tqdm

    return tqdm(total=total, desc=desc, disable=(None if progress is None else not progress), leave=leave, position=position, dynamic_ncols=True, file=sys.stderr)


def summary_line(r: dict) -> str:
    if r.get("quality") is not None:
        level = f"q={r['quality']}"
        rate = f"{r['bpp']:.3f} bpp" if r.get("bpp") is not None else "bpp n/a"
        speed = f"{r.get('images_per_s') or 0:.0f} img/s"
    else:
        level = "pcm" if r.get("bitrate") is None else f"{r['bitrate']:g} kbps"
        rate = f"{r['bits_per_second']:,.0f} bits/s" if r.get("bits_per_second") is not None else "bits/s n/a"
        speed = f"{r.get('train_images') or 0} clips"
    return (
        f"{r['model']} {level} seed={r['seed']}: test acc {r['test_accuracy']:.4f} (best {r['best_test_accuracy']:.4f}), "
        f"{rate}, converged at epoch {r['convergence_epoch']}, {r['wall_time_s']:.1f} s, {speed}"
    )


def log_stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


