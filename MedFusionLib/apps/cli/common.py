"""What every ``medfusion`` command shares: exit codes, the progress bar, and the fusion options, whose
choices and defaults come from :mod:`MedFusionLib.core.options` (never written out here)."""

from __future__ import annotations

import argparse
import os
import sys
import time

from MedFusionLib.core.options import AXIS, COLOUR, COLOUR_STYLE, DEVICE, MODALITY, MODE, REGISTRATION, FusionOptions

EXIT_USER_ERROR = 2
EXIT_CANCELLED = 130


class ProgressBar:
    """Progress of the library's ``progress(fraction, message)`` callbacks: a tqdm bar on a terminal, else a
    plain line on stderr every few seconds (``MEDFUSION_PROGRESS_SECONDS``, default 5; 0 = every update),
    so a long run in a log file or a pipe still shows it is alive."""

    def __init__(self, description: str):
        from tqdm import tqdm

        self._description = description
        self._tty = sys.stderr.isatty()
        try:
            self._every = float(os.environ.get("MEDFUSION_PROGRESS_SECONDS", "5"))
        except ValueError:
            self._every = 5.0
        self._last = time.monotonic()
        self._bar = tqdm(
            total=1000,
            desc=description,
            file=sys.stderr,
            disable=not self._tty,
            leave=False,
            bar_format="{desc}: {percentage:3.0f}%|{bar}| {postfix}",
        )

    def __call__(self, fraction: float, message: str) -> None:
        if self._tty:
            self._bar.n = int(fraction * 1000)
            self._bar.set_postfix_str(message[:60], refresh=True)
            return
        now = time.monotonic()
        if now - self._last >= self._every:
            self._last = now
            print(f"medfusion: {self._description} {fraction:4.0%}: {message}", file=sys.stderr, flush=True)

    def close(self) -> None:
        self._bar.close()


def add_case_arguments(parser: argparse.ArgumentParser, output: str) -> None:
    """The images of one case (the first is the reference grid) and ``-o`` (``output``: what it names)."""
    parser.add_argument("inputs", nargs="+", metavar="IMAGE")
    parser.add_argument("-o", "--output", required=True, metavar=output)


def add_mode_options(parser: argparse.ArgumentParser, with_axis: bool = True) -> None:
    """``--mode`` and ``--axis``."""
    parser.add_argument("--mode", choices=MODE.values, default=MODE.default, help=MODE.help)
    if with_axis:
        parser.add_argument(
            "--axis",
            type=int,
            choices=sorted(AXIS.values),
            default=AXIS.default,
            help=f"{AXIS.help} (default: {AXIS.default})",
        )


def add_register_option(parser: argparse.ArgumentParser) -> None:
    """``--register``."""
    parser.add_argument(
        "--register",
        choices=REGISTRATION.values,
        default=REGISTRATION.default,
        help=f"{REGISTRATION.help} (default: {REGISTRATION.default})",
    )
    add_force_option(parser)


def add_force_option(parser: argparse.ArgumentParser) -> None:
    """``--force``: keep a registration that looks implausible (weak similarity, misplaced foreground, a
    search bound) instead of stopping with exit 2."""
    parser.add_argument(
        "--force",
        action="store_true",
        help="keep a registration that looks implausible (it stops the run by default, with the figures)",
    )


def add_fusion_options(parser: argparse.ArgumentParser, with_axis: bool = True) -> None:
    """The options of one fusion run (``fuse``, ``batch``)."""
    parser.add_argument("--method", help="fusion method (see 'medfusion methods'; default: the best shipped)")
    add_mode_options(parser, with_axis)
    add_register_option(parser)
    add_modality_option(
        parser,
        f"intensity rule per input in order ({', '.join(MODALITY.values)}; auto and 8bit are detected), also "
        "the modality a method such as chartsias picks its encoder by; one value per input (--modality mr pet) "
        "or the flag repeated",
    )
    parser.add_argument(
        "--colour", default=COLOUR.default, metavar="MAP", help=f"{COLOUR.help} (default: {COLOUR.default})"
    )
    parser.add_argument(
        "--colour-style",
        choices=COLOUR_STYLE.values,
        default=COLOUR_STYLE.default,
        help=f"{COLOUR_STYLE.help} (default: {COLOUR_STYLE.default})",
    )
    parser.add_argument(
        "--functional",
        type=input_number,
        metavar="N",
        help="1-based index of the functional (PET/SPECT) input for --colour (default: the colour "
        "input, else the one detected as PET/SPECT, else the last); FusionOptions.functional is 0-based",
    )
    parser.add_argument("--device", choices=DEVICE.values, default=DEVICE.default, help=DEVICE.help)


def add_modality_option(parser: argparse.ArgumentParser, help_text: str) -> None:
    """``--modality NAME ...``: one value per input in one flag, or the flag repeated."""
    parser.add_argument(
        "--modality", action="extend", nargs="+", choices=MODALITY.values, metavar="NAME", help=help_text
    )


def input_number(text: str) -> int:
    """An input's number on the command line: 1 for the first input (the library counts from 0)."""
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an input number (1 = the first input)") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"{number} is not an input number: inputs are numbered from 1")
    return number


def add_series_option(parser: argparse.ArgumentParser) -> None:
    """``--series UID`` (repeatable): which series to read from a DICOM folder holding several."""
    parser.add_argument(
        "--series",
        action="append",
        metavar="UID",
        help="DICOM series instance UID to read from an input folder holding several series (repeat per folder)",
    )


def fusion_options(args: argparse.Namespace) -> FusionOptions:
    """The validated :class:`FusionOptions` of parsed arguments (``--functional`` is 1-based here)."""
    return FusionOptions(
        method=args.method,
        mode=args.mode,
        axis=getattr(args, "axis", AXIS.default),
        registration=args.register,
        modalities=tuple(args.modality) if args.modality else None,
        colour=args.colour,
        colour_style=args.colour_style,
        functional=None if args.functional is None else args.functional - 1,
        force_registration=args.force,
        device=getattr(args, "device", DEVICE.default),
    )
