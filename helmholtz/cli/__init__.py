"""The ``helmholtz`` command line: ``sweep``, ``report`` and ``info``.

Each sub-command lives in its own module, which provides ``register(subparsers)``
to add its parser (setting ``func``); the modules import their heavy
dependencies only when the command runs.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .._version import __version__
from ..errors import HelmholtzError

__all__ = ["main", "build_parser", "parse", "run_args", "Parser"]

# sub-command -> module providing register(subparsers)
COMMANDS = {
    "sweep": "helmholtz.cli.sweep",
    "report": "helmholtz.cli.report",
    "info": "helmholtz.cli.info",
}


class Parser(argparse.ArgumentParser):
    """The top-level parser; ``commands`` maps each sub-command to its own parser."""

    commands: dict[str, argparse.ArgumentParser]


def build_parser() -> Parser:
    """The full argument parser with every sub-command."""
    parser = Parser(prog="helmholtz", description="Perceptual-compression experiments (the Helmholtz method).")
    parser.add_argument("--version", action="version", version=f"helmholtz {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    parser.commands = {name: importlib.import_module(module_name).register(sub) for name, module_name in COMMANDS.items()}
    return parser


def parse(parser: Parser, argv: list[str] | None = None) -> argparse.Namespace:
    """``parser.parse_args(argv)``, except that an unknown option is reported with its sub-command's usage.

    argparse hands a sub-command's unrecognised arguments back to the
    top-level parser, which would print ``helmholtz``'s usage for
    ``helmholtz sweep --bogus``; here the sub-command's parser reports them
    (exit status 2).
    """
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        owner = parser.commands.get(getattr(args, "command", None) or "", parser)
        owner.error(f"unrecognized arguments: {' '.join(unknown)}")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the process exit status."""
    parser = build_parser()
    args = parse(parser, argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return run_args(args)


def run_args(args: argparse.Namespace) -> int:
    """Call ``args.func``: errors print one line and give status 2, Ctrl-C gives 130."""
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (HelmholtzError, ValueError, TypeError, FileNotFoundError, RuntimeError) as exc:
        print(f"helmholtz {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
