"""``medfusion metrics A B F``: score a fused image against its two sources."""

from __future__ import annotations

import argparse
import json

from MedFusionLib.apps.cli.common import add_series_option
from MedFusionLib.core.errors import MedFusionError


def add_parser(sub) -> None:
    p = sub.add_parser("metrics", help="score a fused image F against its sources A and B")
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("f")
    p.add_argument("--json", action="store_true", help="one JSON object")
    add_series_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import SimpleITK as sitk

    from MedFusionLib.core.imageio import as_scalar, check_values, fill_nan, read_image
    from MedFusionLib.core.resources import check_memory
    from MedFusionLib.metrics import format_table, score

    check_memory([args.f, args.a, args.b], args.series, what="scoring these images")
    arrays = []
    for path in (args.a, args.b, args.f):
        image = as_scalar(read_image(path, args.series), path)
        check_values(image, path)
        arrays.append(sitk.GetArrayFromImage(fill_nan(image, path)).astype("float64"))
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise MedFusionError(f"A, B and F must have the same size, got {[a.shape[::-1] for a in arrays]} (x, y[, z])")
    result = score(arrays[:2], arrays[2], axis=0)
    if result["protocol"].get("dimensions") == 3:  # numpy axis 0 of (z, y, x) is the image's k axis
        from MedFusionLib.pipeline.result import IMAGE_AXIS_NOTE

        result["protocol"]["axis"] = 2
        result["protocol"]["axis_note"] = IMAGE_AXIS_NOTE
    print(json.dumps(result, indent=2, allow_nan=False) if args.json else format_table(result))
    return 0
