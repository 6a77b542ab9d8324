"""``medfusion metrics A B F``: score a fused image against its two sources, by the same rule as
``fuse --metrics`` (``--normalisation modality``, the default) or by per-image percentiles."""

from __future__ import annotations

import argparse
import json

from MedFusionLib.apps.cli.common import add_modality_option, add_series_option
from MedFusionLib.core.errors import MedFusionError
from MedFusionLib.core.options import SCORING


def add_parser(sub) -> None:
    p = sub.add_parser("metrics", help="score a fused image F against its sources A and B")
    p.add_argument("a", help="the reference (first) input of the fusion")
    p.add_argument("b", help="the second input, on A's grid (after registration: register --resampled)")
    p.add_argument("f", help="the fused image")
    p.add_argument("--json", action="store_true", help="one JSON object")
    p.add_argument(
        "--normalisation",
        choices=SCORING.values,
        default=SCORING.default,
        help=f"{SCORING.help} (default: %(default)s)",
    )
    add_modality_option(
        p, "modality of A and B for --normalisation modality, as given to fuse (default: auto, detected)"
    )
    add_series_option(p)
    p.set_defaults(func=run)


def _read_scalar(path: str, series):
    import SimpleITK as sitk

    from MedFusionLib.core.imageio import as_scalar, check_values, fill_nan, read_image

    image = as_scalar(read_image(path, series), path)
    check_values(image, path)
    return sitk.GetArrayFromImage(fill_nan(image, path)).astype("float64")


def _check_shapes(shapes: list[tuple[int, ...]]) -> None:
    if len(set(shapes)) != 1:
        raise MedFusionError(f"A, B and F must have the same size, got {[s[::-1] for s in shapes]} (x, y[, z])")


def score_by_percentile(args: argparse.Namespace) -> dict:
    """Every image mapped by its own percentiles (``--normalisation percentile``)."""
    from MedFusionLib.metrics import score
    from MedFusionLib.pipeline.result import IMAGE_AXIS_NOTE

    arrays = [_read_scalar(path, args.series) for path in (args.a, args.b, args.f)]
    _check_shapes([a.shape for a in arrays])
    result = score(arrays[:2], arrays[2], axis=0)
    if result["protocol"].get("dimensions") == 3:  # numpy axis 0 of (z, y, x) is the image's k axis
        result["protocol"]["axis"] = 2
        result["protocol"]["axis_note"] = IMAGE_AXIS_NOTE
    return result


def score_by_modality(args: argparse.Namespace) -> dict:
    """The sources normalised as fusion normalises them, F as written (``--normalisation modality``)."""
    import SimpleITK as sitk

    from MedFusionLib.core.imageio import read_image
    from MedFusionLib.pipeline.prepare import prepare_inputs
    from MedFusionLib.pipeline.result import score_on_fusion_scale

    if args.modality and len(args.modality) != 2:
        raise MedFusionError(f"--modality needs one value for A and one for B, got {len(args.modality)}")
    images = [read_image(path, args.series) for path in (args.a, args.b)]
    fused = _read_scalar(args.f, args.series)
    _check_shapes([fused.shape] + [sitk.GetArrayFromImage(image).shape[: fused.ndim] for image in images])
    prepared = prepare_inputs(images, registration="none", modalities=args.modality)
    if fused.min() < 0 or fused.max() > 255:
        raise MedFusionError(
            f"{args.f}: values {fused.min():.6g}..{fused.max():.6g} are not on the fusion scale 0..255 "
            "(not written by medfusion?); use --normalisation percentile"
        )
    axis = 2 if fused.ndim == 3 else 0
    return score_on_fusion_scale(prepared.sources01, fused, axis, prepared.normalisation)


def run(args: argparse.Namespace) -> int:
    from MedFusionLib.core.resources import check_memory
    from MedFusionLib.metrics import format_table

    check_memory([args.f, args.a, args.b], args.series, what="scoring these images", work="score")
    result = score_by_percentile(args) if args.normalisation == "percentile" else score_by_modality(args)
    print(json.dumps(result, indent=2, allow_nan=False) if args.json else format_table(result))
    return 0
