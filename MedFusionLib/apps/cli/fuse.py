"""``medfusion fuse A B [C ...] -o OUT``: register, normalise, fuse and write one case."""

from __future__ import annotations

import argparse
import sys

from MedFusionLib.apps.cli.common import (
    ProgressBar,
    add_case_arguments,
    add_fusion_options,
    add_series_option,
    fusion_options,
)
from MedFusionLib.core.options import OUTPUT_TYPE


def add_parser(sub) -> None:
    p = sub.add_parser("fuse", help="fuse images (the first is the reference grid)")
    add_case_arguments(p, "OUT")
    add_fusion_options(p)
    add_series_option(p)
    p.add_argument("--metrics", metavar="OUT.json", help="write the metric values as JSON")
    p.add_argument("--preview", metavar="OUT.png", help="write a preview PNG")
    p.add_argument("--output-type", choices=OUTPUT_TYPE.values, default=OUTPUT_TYPE.default, help=OUTPUT_TYPE.help)
    p.add_argument("--profile", action="store_true", help="print the time of each stage (read, fuse, write ...)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from MedFusionLib.core.stages import recording, summary

    with recording() as record:
        code = _run(args)
    if args.profile:
        print(f"medfusion: profile: {summary(record)}", file=sys.stderr)
    return code


def _run(args: argparse.Namespace) -> int:
    from MedFusionLib.pipeline.files import fuse_files

    bar = ProgressBar("fuse")
    try:
        result, _ = fuse_files(
            args.inputs,
            args.output,
            fusion_options(args),
            metrics_path=args.metrics,
            preview_path=args.preview,
            progress=bar,
            series=args.series,
            output_type=args.output_type,
        )
    finally:
        bar.close()
    for registration in result.registrations:
        if registration is not None:
            print(registration.summary())
    print(f"fused ({result.method}, {result.mode} mode): {args.output}")
    if args.metrics:
        print(f"metrics: {args.metrics}")
    if args.preview:
        print(f"preview: {args.preview}")
    return 0
