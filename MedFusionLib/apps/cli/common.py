"""What every ``medfusion`` command shares: exit codes, the progress bar, and the fusion options, whose
choices and defaults come from :mod:`MedFusionLib.core.options` (never written out here)."""

from __future__ import annotations

import argparse
import sys

from MedFusionLib.core.options import AXIS, COLOUR, MODE, REGISTRATION, FusionOptions

EXIT_USER_ERROR = 2
EXIT_CANCELLED = 130


class ProgressBar:
    """A tqdm bar fed by the library's ``progress(fraction, message)`` callbacks (silent when not a TTY)."""

    def __init__(self, description: str):
        from tqdm import tqdm

        self._bar = tqdm(
            total=1000,
            desc=description,
            file=sys.stderr,
            disable=None,
            leave=False,
            bar_format="{desc}: {percentage:3.0f}%|{bar}| {postfix}",
        )

    def __call__(self, fraction: float, message: str) -> None:
        self._bar.n = int(fraction * 1000)
        self._bar.set_postfix_str(message[:60], refresh=True)

    def close(self) -> None:
        self._bar.close()


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


def add_fusion_options(parser: argparse.ArgumentParser, with_axis: bool = True) -> None:
    """The options of one fusion run (``fuse``, ``batch``)."""
    parser.add_argument("--method", help="fusion method (see 'medfusion methods'; default: the best shipped)")
    add_mode_options(parser, with_axis)
    add_register_option(parser)
    parser.add_argument(
        "--modality",
        action="append",
        metavar="NAME",
        help="intensity rule per input in order (auto, ct, mr, pet, spect, 8bit); repeat per input",
    )
    parser.add_argument(
        "--colour", default=COLOUR.default, metavar="MAP", help=f"{COLOUR.help} (default: {COLOUR.default})"
    )
    parser.add_argument(
        "--functional",
        type=int,
        metavar="N",
        help="1-based index of the functional (PET/SPECT) input for --colour (default: the colour "
        "input, else the last)",
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
        functional=None if args.functional is None else args.functional - 1,
    )
