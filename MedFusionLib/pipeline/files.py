"""One case from files to files: read, check, fuse, write the fused image (and metrics JSON, preview PNG).

Used by ``medfusion fuse`` and by every row of a batch or study, so a row and a single run behave alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from MedFusionLib.core.errors import MedFusionError
from MedFusionLib.core.options import FusionOptions
from MedFusionLib.core.progress import ProgressCallback
from MedFusionLib.pipeline.result import FusionResult


def _check_folder(path) -> None:
    parent = Path(path).parent if str(Path(path).parent) else Path(".")
    if not parent.is_dir():
        raise MedFusionError(f"{path}: output folder {Path(path).parent} does not exist")


def fuse_files(
    inputs: Sequence[str],
    output: str,
    options: FusionOptions,
    *,
    metrics_path=None,
    preview_path=None,
    progress: ProgressCallback | None = None,
    want_metrics: bool = False,
) -> tuple[FusionResult, dict | None]:
    """Load, fuse, write the fused image (and metrics/preview); returns (result, metrics dict or None)."""
    import MedFusionLib.pipeline as pipeline  # looked up at call time (tests interrupt it here)
    from MedFusionLib.core.imageio import as_scalar, check_values, read_image, write_image

    images = [read_image(path) for path in inputs]
    for path, image in zip(inputs, images):
        check_values(as_scalar(image, path), path)
    pipeline.check_output_path(output, images[0].GetDimension())
    for extra in (metrics_path, preview_path):
        if extra:
            _check_folder(extra)
    result = pipeline.fuse_images(images, progress=progress, **options.as_dict())
    metrics = result.metrics() if (metrics_path or want_metrics) else None
    write_image(result.colour_fused if result.colour_fused is not None else result.fused, output)
    if metrics_path:
        pipeline.write_json(metrics, metrics_path)
    if preview_path:
        import SimpleITK as sitk

        from MedFusionLib.render.preview import write_preview

        labels = [Path(p).name for p in inputs] + [f"fused ({result.method}, {result.mode})"]
        shown = result.fused_array if result.colour_fused is None else sitk.GetArrayFromImage(result.colour_fused)
        write_preview(result.sources + [shown], labels, preview_path, images[0].GetSpacing())
    return result, metrics
