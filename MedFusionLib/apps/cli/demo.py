"""``medfusion demo``: the whole pipeline on the embedded phantom, with a known registration answer."""

from __future__ import annotations

import argparse
from pathlib import Path

from MedFusionLib.apps.cli.common import add_mode_options


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="register and fuse an embedded CT/MR phantom with a known answer")
    p.add_argument("--out", default="medfusion-demo", help="output folder (default: ./medfusion-demo)")
    p.add_argument("--method", help="fusion method (default: the best shipped)")
    add_mode_options(p, with_axis=False)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from MedFusionLib.apps.demo import run_demo

    return run_demo(Path(args.out), method=args.method, mode=args.mode)
