"""The ``helmholtz`` command line: ``sweep``, ``report``, ``info`` and ``prepare``.

Each sub-command lives in its own module, which provides ``register(subparsers)``
to add its parser (setting ``func``); the modules import their heavy
dependencies only when the command runs.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys

from .._version import __version__
from ..errors import HelmholtzError

__all__ = ["main", "build_parser", "parse", "run_args", "command_line_message", "Parser"]

# sub-command -> module providing register(subparsers)
COMMANDS = {
    "sweep": "helmholtz.cli.sweep",
    "report": "helmholtz.cli.report",
    "info": "helmholtz.cli.info",
    "prepare": "helmholtz.cli.prepare",
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


# The library's messages name Python parameters; on the command line each is a flag.
# Names with an underscore (or "=") are unambiguous anywhere in a message; the
# plain words are replaced only where a message starts with them.
FLAG_OF_PARAMETER = {
    "download=True": "--download",
    "data_dir": "--data-dir",
    "train_subset": "--train-subset",
    "test_subset": "--test-subset",
    "image_size": "--image-size",
    "trials_per_device": "--trials-per-device",
    "attack_subset": "--attack-subset",
    "ray_address": "--ray-address",
    "ray_num_cpus": "--ray-num-cpus",
    "executor='ray'": "--executor ray",
    "executor='local'": "--executor local",
    "device='cuda'": "--device cuda",
}
FLAG_OF_LEADING_WORD = {
    "sweep": {
        "name": "--models", "quality": "--qualities", "bitrate": "--bitrates", "epochs": "--epochs",
        "seeds": "--seeds", "dataset": "--dataset", "device": "--device", "recipe": "--recipe",
        "models": "--models", "out": "--out", "executor": "--executor",
    },
    "info": {"quality": "--qualities", "limit": "--limit", "split": "--split", "dataset": "--dataset", "seed": "--seed"},
    "prepare": {"size": "--size", "out": "--out", "workers": "--workers", "shard_size": "--shard-size", "fit": "--fit"},
    "report": {},
}


def command_line_message(command: str, message: str) -> str:
    """``message`` with the Python parameter names it mentions replaced by ``command``'s flags."""
    for param, flag in FLAG_OF_PARAMETER.items():
        message = re.sub(rf"(?<![\w-]){re.escape(param)}(?![\w])", flag, message)
    word = re.match(r"[a-z_]+", message)
    flag = FLAG_OF_LEADING_WORD.get(command, {}).get(word.group(0)) if word else None
    return flag + message[word.end():] if flag else message


def run_args(args: argparse.Namespace) -> int:
    """Call ``args.func``: errors print one line and give status 2, Ctrl-C gives 130.

    A reader that closes the pipe early (``helmholtz report OUT | head``) ends
    the command quietly with status 141, as SIGPIPE ends other Unix tools.
    """
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # Python would complain again when flushing stdout at exit: point it at /dev/null first.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except (HelmholtzError, ValueError, TypeError, FileNotFoundError, RuntimeError) as exc:
        print(f"helmholtz {args.command}: error: {command_line_message(args.command, str(exc))}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
