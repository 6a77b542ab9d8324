"""The outcome of fusing one case: the fused image on the reference grid and what is needed to score it."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import SimpleITK as sitk

from MedFusionLib.core.progress import CancelCallback, ProgressCallback

IMAGE_AXIS_NOTE = "image axis the slices were cut along, as --axis: 0 = i (x), 1 = j (y), 2 = k (z, usually axial)"
FUSION_SCALE = 255.0  # fused volumes are written as float32 on 0..255, the scale the metrics are defined on


@dataclass
class FusionResult:
    """A fused image on the reference grid plus everything needed to score and explain it."""

    fused: sitk.Image
    sources01: list[np.ndarray]  # inputs on the fused grid, normalised to 0..1 (array order z, y, x)
    method: str
    mode: str
    axis: int  # image axis (0 = i/x, 1 = j/y, 2 = k/z) along which slice mode cut the volume
    normalisation: list[str]
    registrations: list = field(default_factory=list)  # RegistrationResult or None per moving input
    colour_fused: sitk.Image | None = None  # RGB: functional colour over the fused image (colour option)
    kinds: list[str] = field(default_factory=list)  # modality per input (given or detected): ct, mr, pet, spect

    @cached_property
    def fused_array(self) -> np.ndarray:
        """The fused values on 0..255 as a float32 array, copied from ``fused`` on first use (scoring, previews):
        a plain ``fuse`` never holds a second volume-sized copy."""
        return sitk.GetArrayFromImage(self.fused).astype(np.float32, copy=False)

    @cached_property
    def sources(self) -> list[np.ndarray]:
        """The inputs on the metrics' 0..255 scale, made on first use (a plain ``fuse`` never needs them)."""
        return [s * FUSION_SCALE for s in self.sources01]

    @property
    def array_axis(self) -> int:
        """The numpy axis (arrays are z, y, x) matching the image axis slice mode cut along."""
        return 2 - self.axis if self.fused_array.ndim == 3 else 0

    def metrics(
        self, include_3d: bool = True, progress: ProgressCallback | None = None, cancel: CancelCallback | None = None
    ) -> dict:
        """The metric suite on the normalised sources and the fused image (see docs/metrics.md)."""
        return score_on_fusion_scale(
            self.sources01, self.fused_array, self.axis, self.normalisation, include_3d, progress, cancel
        )


def score_on_fusion_scale(
    sources01: list[np.ndarray],
    fused_array: np.ndarray,
    axis: int,
    normalisation: list[str],
    include_3d: bool = True,
    progress: ProgressCallback | None = None,
    cancel: CancelCallback | None = None,
) -> dict:
    """The one scoring rule ("modality", docs/metrics.md): the sources as fusion saw them (each normalised by
    its modality rule to 0..1, here x 255) and the fused values as written (0..255), with no further mapping.
    ``fuse --metrics``, ``metrics``, ``compare``, ``study`` and the GUIs all score through here; ``axis`` is the
    image axis (as ``--axis``) of the per-slice metrics."""
    from MedFusionLib.metrics import score

    array_axis = 2 - axis if fused_array.ndim == 3 else 0
    result = score(
        [s * FUSION_SCALE for s in sources01],
        fused_array,
        axis=array_axis,
        rule="as-is",
        include_3d=include_3d,
        progress=progress,
        cancel=cancel,
    )
    if "protocol" in result:
        result["protocol"]["normalisation"] = list(normalisation)
        result["protocol"]["scoring"] = "modality"
        if result["protocol"].get("dimensions") == 3:  # one axis key, in the convention of --axis
            result["protocol"]["axis"] = axis
            result["protocol"]["axis_note"] = IMAGE_AXIS_NOTE
    return result
