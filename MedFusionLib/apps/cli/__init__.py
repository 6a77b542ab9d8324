"""The ``medfusion`` command: one module per sub-command (methods, register, fuse, batch, metrics, demo,
compare, train, study, app), each with ``add_parser(subparsers)`` and ``run(args)``.

User errors print one line (``medfusion: error: <file>: <problem>``) and exit 2 without a traceback;
``--debug`` shows the traceback. Every output is written atomically, so an error or Ctrl-C leaves no
half-written file.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from MedFusionLib import __version__
from MedFusionLib.apps.cli import app, batch, compare, demo, fuse, methods, metrics, register, study, train
from MedFusionLib.apps.cli.common import EXIT_CANCELLED, EXIT_USER_ERROR, ProgressBar
from MedFusionLib.core.errors import MedFusionError, OperationCancelled

COMMANDS = (methods, register, fuse, batch, metrics, demo, compare, train, study, app)

__all__ = ["EXIT_CANCELLED", "EXIT_USER_ERROR", "ProgressBar", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="medfusion", description="Register, fuse and score multimodal medical images."
    )
    parser.add_argument("--version", action="version", version=f"medfusion {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except OperationCancelled:
        print("medfusion: cancelled; nothing was written", file=sys.stderr)
        return EXIT_CANCELLED
    except KeyboardInterrupt:
        if args.debug:
            raise
        print("medfusion: interrupted; nothing half-written was left", file=sys.stderr)
        return EXIT_CANCELLED
    except MedFusionError as err:
        if args.debug:
            raise
        print(f"medfusion: error: {err}", file=sys.stderr)
        return EXIT_USER_ERROR
    except Exception as err:  # a bug: one line unless --debug
        if args.debug:
            raise
        print(
            f"medfusion: internal error: {type(err).__name__}: {err} (rerun with --debug for details)", file=sys.stderr
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
