"""Argument types shared by the sub-commands."""

from __future__ import annotations

import argparse
import re
from typing import Any, Callable

from ..experiments.evaluate import parse_attacks, parse_eps, parse_eval_qualities

__all__ = ["int_list", "bitrate_list", "name_list", "eval_qualities", "eps_list", "attack_list"]


def _items(text: str, what: str) -> list[str]:
    """The comma-separated items of ``text``, stripped; an empty item (``20,,30``, a trailing comma) is an error."""
    items = [v.strip() for v in text.split(",")]
    if any(not v for v in items):
        raise argparse.ArgumentTypeError(f"expected comma-separated {what} without empty items; got {text!r}")
    return items


def _once(values: list, items: list[str]) -> list:
    """``values`` if none repeats; else an error naming the repeated one (nothing is dropped silently)."""
    seen: dict = {}
    for value, item in zip(values, items):
        if value in seen:
            also = "" if item == seen[value] else f" (as {seen[value]!r} and {item!r})"
            raise argparse.ArgumentTypeError(f"{item} is repeated{also}; give each once")
        seen[value] = item
    return values


def int_list(text: str) -> list[int]:
    """``"5,20,100"`` -> ``[5, 20, 100]``: integers, each once."""
    items = _items(text, "integers")
    try:
        values = [int(v) for v in items]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers; got {text!r}") from None
    return _once(values, items)


def bitrate_list(text: str) -> list[float | None]:
    """``"pcm,8,16"`` -> ``[None, 8.0, 16.0]``: kbps, with ``pcm`` for the uncompressed baseline, each once."""
    items = _items(text, "bitrates in kbps (or pcm)")
    out: list[float | None] = []
    for v in items:
        if v.lower() == "pcm":
            out.append(None)
            continue
        try:
            out.append(float(v))
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated bitrates in kbps (or pcm); got {text!r}") from None
    return _once(out, items)


def name_list(text: str) -> list[str]:
    """``"A,C,F"`` -> ``["A", "C", "F"]``: names, each once."""
    items = _items(text, "names")
    return _once(items, items)


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
