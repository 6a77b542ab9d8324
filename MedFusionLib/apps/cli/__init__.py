"""The ``medfusion`` command: one module per sub-command (methods, register, fuse, batch, metrics, demo,
compare, train, export, study, app), each with ``add_parser(subparsers)`` and ``run(args)``.

User errors print one line (``medfusion: error: <file>: <problem>``) and exit 2 without a traceback;
``--debug`` shows the traceback. Every output is written atomically, so an error or Ctrl-C leaves no
half-written file.
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from collections.abc import Sequence
from typing import NoReturn

from MedFusionLib import __version__
from MedFusionLib.apps.cli import app, batch, compare, demo, export, fuse, methods, metrics, register, study, train
from MedFusionLib.apps.cli.common import EXIT_CANCELLED, EXIT_USER_ERROR, ProgressBar
from MedFusionLib.core.errors import MedFusionError, OperationCancelled, describe_os_error
from MedFusionLib.core.progress import install_interrupt_handlers, uninstall_interrupt_handlers

COMMANDS = (methods, register, fuse, batch, metrics, demo, compare, train, export, study, app)

__all__ = ["EXIT_CANCELLED", "EXIT_USER_ERROR", "ProgressBar", "build_parser", "main"]


class _Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors (``medfusion: error: ...``, exit 2), like every other error."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USER_ERROR, f"medfusion: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="medfusion", description="Register, fuse and score multimodal medical images.")
    parser.add_argument("--version", action="version", version=f"medfusion {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


class _LineHandler(logging.Handler):
    """The library's warnings as ``medfusion: warning: ...`` lines, its decisions (e.g. a detected modality) as
    ``medfusion: ...`` lines, all on stderr: stdout holds only a command's result (a table, JSON)."""

    def emit(self, record: logging.LogRecord) -> None:
        text = " ".join(record.getMessage().split())
        prefix = "medfusion: warning: " if record.levelno >= logging.WARNING else "medfusion: "
        print(prefix + text, file=sys.stderr, flush=True)


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Python warnings (numpy, torch) as one ``medfusion: warning:`` line, like the library's own."""
    text = " ".join(str(message).split())[:300]
    print(f"medfusion: warning: {category.__name__}: {text}", file=sys.stderr, flush=True)


def _show_library_messages() -> logging.Handler:
    warnings.showwarning = _one_line_warning
    handler = _LineHandler()
    logger = logging.getLogger("MedFusionLib")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return handler


def _is_allocation_failure(err: BaseException) -> bool:
    text = str(err).lower()
    return any(words in text for words in ("can't allocate memory", "out of memory", "failed to allocate", "bad_alloc"))


def _internal_error(args: argparse.Namespace, err: BaseException) -> int:
    """A bug: one line (exit 1) unless --debug, which shows the traceback."""
    if args.debug:
        raise err
    text = " ".join(str(err).split())[:300]
    print(f"medfusion: internal error: {type(err).__name__}: {text} (rerun with --debug for details)", file=sys.stderr)
    return 1


def interrupt_note(args: argparse.Namespace) -> str:
    """What an interrupted command wrote: its own account (``args.interrupt_note``, a function read at the
    moment of the interrupt, so a file finished just before it counts), else that nothing was written."""
    note = getattr(args, "interrupt_note", None)
    return (note() if callable(note) else note) or "nothing was written"


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; exit codes: 0 done, 1 internal error (a bug), 2 user error, 130 interrupted."""
    parser = build_parser()
    if not (sys.argv[1:] if argv is None else list(argv)):
        parser.print_help()  # bare ``medfusion``: what it can do, not an error
        return 0
    args = parser.parse_args(argv)
    install_interrupt_handlers()
    handler = _show_library_messages()
    try:
        return args.func(args)
    except (OperationCancelled, KeyboardInterrupt):
        if args.debug:
            raise
        print(f"medfusion: interrupted; {interrupt_note(args)}", file=sys.stderr)
        return EXIT_CANCELLED
    except MedFusionError as err:
        if args.debug:
            raise
        print(f"medfusion: error: {' '.join(str(err).split())}", file=sys.stderr)
        return EXIT_USER_ERROR
    except OSError as err:  # permissions, disk full, read-only file system, ... outside the library's checks
        if args.debug:
            raise
        print(f"medfusion: error: {describe_os_error(err)}", file=sys.stderr)
        return EXIT_USER_ERROR
    except (MemoryError, RuntimeError) as err:  # numpy's MemoryError; torch's and ITK's allocation failures
        if args.debug or (isinstance(err, RuntimeError) and not _is_allocation_failure(err)):
            return _internal_error(args, err)
        print(
            "medfusion: error: out of memory (the inputs are too large for this machine's free memory); "
            "nothing was written",
            file=sys.stderr,
        )
        return EXIT_USER_ERROR
    except Exception as err:  # a bug: one line unless --debug
        if args.debug:
            raise
        text = " ".join(str(err).split())[:300]
        print(
            f"medfusion: internal error: {type(err).__name__}: {text} (rerun with --debug for details)", file=sys.stderr
        )
        return 1
    finally:
        logging.getLogger("MedFusionLib").removeHandler(handler)
        uninstall_interrupt_handlers()


if __name__ == "__main__":
    sys.exit(main())
