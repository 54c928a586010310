"""Argument types shared by the sub-commands."""

from __future__ import annotations

import argparse
import re
from typing import Any, Callable

from ..experiments.evaluate import parse_attacks, parse_eps, parse_eval_qualities

__all__ = ["int_list", "bitrate_list", "name_list", "eval_qualities", "eps_list", "attack_list"]


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


def _argument_type(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """An argparse type from a parser that raises ValueError (argparse then prints the sub-command's usage)."""
    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as exc:
            # argparse already says "argument --flag:"; the parser's own "--flag" prefix would repeat it
            raise argparse.ArgumentTypeError(re.sub(r"^--[\w-]+:?\s*", "", str(exc))) from None

    convert.__name__ = parse.__name__.removeprefix("parse_")
    return convert


eval_qualities = _argument_type(parse_eval_qualities)
eps_list = _argument_type(parse_eps)
attack_list = _argument_type(parse_attacks)
