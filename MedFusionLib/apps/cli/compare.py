"""``medfusion compare A B [C ...] -o DIR``: every applicable method on one case, a montage and a metrics CSV."""

from __future__ import annotations

import argparse
from pathlib import Path

from MedFusionLib.apps.cli.common import ProgressBar, add_case_arguments, add_mode_options, add_register_option


def add_parser(sub) -> None:
    parser = sub.add_parser("compare", help="run every applicable method on one case: montage + metrics CSV")
    add_case_arguments(parser, "DIR")
    add_mode_options(parser)
    add_register_option(parser)
    parser.add_argument("--methods", help="comma-separated subset of methods (default: all applicable)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from MedFusionLib.study.compare import LABEL_METRICS, compare

    bar = ProgressBar("compare")
    try:
        rows = compare(
            args.inputs,
            Path(args.output),
            mode=args.mode,
            axis=args.axis,
            registration=args.register,
            force_registration=args.force,
            methods=args.methods.split(",") if args.methods else None,
            progress=bar,
        )
    finally:
        bar.close()
    width = max(len(r["method"]) for r in rows)
    print(f"{'method':<{width}}  {'family':<18} {'s':>6}  " + "  ".join(f"{k:>6}" for k in LABEL_METRICS))
    for r in rows:
        print(
            f"{r['method']:<{width}}  {r['family']:<18} {r['seconds']:6.2f}  "
            + "  ".join(f"{r[k]:6.3f}" for k in LABEL_METRICS)
        )
    print(f"montage: {Path(args.output) / 'montage.png'}; all metrics: {Path(args.output) / 'metrics.csv'}")
    return 0
