"""One case from files to files: read, check, fuse, write the fused image (and metrics JSON, preview PNG).

Used by ``medfusion fuse`` and by every row of a batch or study, so a row and a single run behave alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from MedFusionLib.core.options import OUTPUT_TYPE, FusionOptions
from MedFusionLib.core.progress import CancelCallback, ProgressCallback, check_cancel, sub_progress
from MedFusionLib.core.stages import stage
from MedFusionLib.pipeline.result import FusionResult


def fuse_files(
    inputs: Sequence[str],
    output: str,
    options: FusionOptions,
    *,
    metrics_path=None,
    preview_path=None,
    progress: ProgressCallback | None = None,
    cancel: CancelCallback | None = None,
    want_metrics: bool = False,
    series: Sequence[str] | None = None,
    output_type: str = OUTPUT_TYPE.default,
) -> tuple[FusionResult, dict | None]:
    """Load, fuse, write the fused image (and metrics/preview); returns (result, metrics dict or None).

    Before anything is read: no output may resolve to an input (or lie inside an input folder), outputs must
    be distinct, and the estimated memory must be available. ``series`` picks DICOM series by UID.
    ``output_type`` "uint8" writes a grey fused volume rounded to 0..255 bytes (smaller and faster to write).
    """
    OUTPUT_TYPE.check(output_type)

    import MedFusionLib.pipeline as pipeline  # looked up at call time (tests interrupt it here)
    from MedFusionLib.core.imageio import (
        as_scalar,
        check_distinct_outputs,
        check_not_input,
        check_values,
        output_folder,
        protected_inputs,
        read_image,
        reference_tags,
        write_image,
    )
    from MedFusionLib.core.resources import check_memory
    from MedFusionLib.inference.devices import check_device

    check_device(options.device)
    outputs = [output, metrics_path, preview_path]
    check_distinct_outputs(outputs)
    for path in outputs:
        if path:
            check_not_input(path, inputs)
    scoring = bool(metrics_path or want_metrics)  # scoring holds the metric suite's copies too: the larger bound
    check_memory(inputs, series, what="fusing these inputs", work="score" if scoring else "fuse")
    with protected_inputs(inputs):
        with stage("read"):
            images = [read_image(path, series) for path in inputs]
            for path, image in zip(inputs, images):
                check_values(as_scalar(image, path), path)
        pipeline.check_output_path(output, images[0].GetDimension())
        for extra in (metrics_path, preview_path):
            if extra:
                output_folder(extra)
        share = 0.75 if scoring else 1.0
        result = pipeline.fuse_images(images, options, progress=sub_progress(progress, 0.0, share), cancel=cancel)
        fused = as_output_type(result.colour_fused if result.colour_fused is not None else result.fused, output_type)
        with stage("metrics"):
            metrics = (
                score_as_written(result, fused, True, sub_progress(progress, share, 1.0), cancel) if scoring else None
            )
        check_cancel(cancel)
        description = f"MedFusion {result.method} ({result.mode}) fusion"
        with stage("write"):
            write_image(fused, output, reference=reference_tags(images[0]), description=description)
        if metrics_path:
            pipeline.write_json(metrics, metrics_path)
        if preview_path:
            from MedFusionLib.render.preview import write_case_preview

            write_case_preview(result, [Path(p).name for p in inputs], preview_path, images[0].GetSpacing())
    return result, metrics


def as_output_type(fused, output_type: str):
    """The image a fused float32 grey volume is written as: rounded to uint8 bytes for "uint8", else unchanged."""
    import numpy as np
    import SimpleITK as sitk

    if output_type != "uint8" or fused.GetPixelID() != sitk.sitkFloat32:
        return fused
    values = sitk.GetArrayViewFromImage(fused)  # no copy; rounded slab by slab (no volume-sized temporaries)
    rounded = np.empty(values.shape, np.uint8)
    for start in range(0, max(len(values), 1), 16):
        slab = values[start : start + 16]
        rounded[start : start + 16] = np.clip(np.floor(slab + np.float32(0.5)), 0, 255)
    written = sitk.GetImageFromArray(rounded)
    written.CopyInformation(fused)
    return written


def score_as_written(
    result: FusionResult,
    written,
    include_3d: bool = True,
    progress: ProgressCallback | None = None,
    cancel: CancelCallback | None = None,
) -> dict:
    """The metrics of the grey fused image as the file holds it (rounded when written as uint8), so that
    ``medfusion metrics`` on the written file gives the same numbers (one scoring rule, docs/metrics.md)."""
    import numpy as np
    import SimpleITK as sitk

    from MedFusionLib.pipeline.result import score_on_fusion_scale

    if result.colour_fused is not None or written is result.fused:
        return result.metrics(include_3d=include_3d, progress=progress, cancel=cancel)
    array = sitk.GetArrayFromImage(written).astype(np.float32)
    return score_on_fusion_scale(
        result.sources01, array, result.axis, result.normalisation, include_3d, progress, cancel
    )
