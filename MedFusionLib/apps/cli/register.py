"""``medfusion register FIXED MOVING -o T.tfm``: align one image to another and save the transform."""

from __future__ import annotations

import argparse

from MedFusionLib.apps.cli.common import ProgressBar, add_force_option, add_series_option
from MedFusionLib.core.options import REGISTRATION_MODES


def add_parser(sub) -> None:
    p = sub.add_parser("register", help="register MOVING to FIXED and save the transform")
    p.add_argument("fixed")
    p.add_argument("moving")
    p.add_argument("-o", "--output", required=True, metavar="TRANSFORM.tfm")
    p.add_argument("--mode", choices=REGISTRATION_MODES, default="rigid")
    p.add_argument("--resampled", metavar="OUT", help="also write MOVING resampled onto FIXED's grid")
    add_force_option(p)
    add_series_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from MedFusionLib.core.imageio import (
        check_distinct_outputs,
        check_not_input,
        load_for_fusion,
        protected_inputs,
    )
    from MedFusionLib.core.resources import check_memory

    inputs = [args.fixed, args.moving]
    check_distinct_outputs([args.output, args.resampled])
    for path in (args.output, args.resampled):
        if path:
            check_not_input(path, inputs)
    check_memory(inputs, args.series, what="registering these images", work="register")
    with protected_inputs(inputs):
        return _run(args, load_for_fusion(args.fixed, args.series), load_for_fusion(args.moving, args.series))


def _run(args: argparse.Namespace, fixed, moving) -> int:
    from MedFusionLib.core.imageio import output_folder, reference_tags, write_image
    from MedFusionLib.pipeline import check_output_path
    from MedFusionLib.registration import register, resample_to_fixed, save_transform

    output_folder(args.output)
    if args.resampled:
        check_output_path(args.resampled, fixed.GetDimension())
    bar = ProgressBar("register")
    try:
        result = register(fixed, moving, args.mode, progress=bar, force=args.force)
    finally:
        bar.close()
    save_transform(result.transform, args.output)
    print(result.summary())
    print(f"transform (fixed -> moving points, ITK convention): {args.output}")
    if args.resampled:
        resampled = resample_to_fixed(fixed, moving, result.transform)
        write_image(resampled, args.resampled, reference_tags(fixed), f"MedFusion {args.mode} resampled")
        print(f"resampled moving image: {args.resampled}")
    return 0
