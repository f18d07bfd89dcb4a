"""``segzero`` — the command-line entry point.

Run ``segzero --help`` for the list of subcommands. Each subcommand lives in its own module under
``segzero.cli`` and exposes ``add_parser(subparsers)`` (which registers it and sets ``func``). Modules are
imported lazily only for the chosen subcommand's run, so ``segzero --help`` stays fast.

Errors that the user can fix (``segzero.errors.UserError``) print one line on stderr and exit with code 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from segzero import __version__
from segzero.errors import UserError

# Subcommand modules, in the order ``--help`` lists them.
SUBCOMMANDS: list[str] = [
    "segment",
    "tiny_models",
    "data",
    "eval",
    "train",
    "serve",
    "demo",
    "world",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="segzero",
        description="Reasoning segmentation: a VLM reasons and answers with boxes and points, SAM2 makes the mask.",
    )
    parser.add_argument("--version", action="version", version=f"segzero {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(f"segzero.cli.{name}").add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except UserError as err:
        print(f"segzero {args.command}: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print(f"segzero {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
