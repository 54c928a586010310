"""Argument types shared by the sub-commands."""

from __future__ import annotations

import argparse

__all__ = ["int_list", "bitrate_list", "name_list"]


def int_list(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers; got {text!r}") from None


def bitrate_list(text: str) -> list[float | None]:
    """``"pcm,8,16"`` -> ``[None, 8.0, 16.0]``: kbps, with ``pcm`` for the uncompressed baseline."""
    out: list[float | None] = []
    for v in text.split(","):
        v = v.strip()
        if not v:
            continue
        if v.lower() == "pcm":
            out.append(None)
            continue
        try:
            out.append(float(v))
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated bitrates in kbps (or pcm); got {text!r}") from None
    return out


def name_list(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]
