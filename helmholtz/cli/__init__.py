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

__all__ = ["main", "build_parser", "run_args"]

# sub-command -> module providing register(subparsers)
COMMANDS = {
    "sweep": "helmholtz.cli.sweep",
    "report": "helmholtz.cli.report",
    "info": "helmholtz.cli.info",
}


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every sub-command."""
    parser = argparse.ArgumentParser(prog="helmholtz", description="Perceptual-compression experiments (the Helmholtz method).")
    parser.add_argument("--version", action="version", version=f"helmholtz {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMANDS.values():
        importlib.import_module(module_name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
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
