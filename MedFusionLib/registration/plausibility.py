"""Is a converged registration believable? Three signs that it is not, each with its figure.

A registration can "succeed" (finite, overlapping, better than the start) and still be wrong: two exams of
different body parts, or a search that settled in a far optimum. A clinician would then read a misregistered
fusion. :func:`implausibility` names what looks wrong, in one line with the figures, or returns None; the CLI
stops on it (exit 2, ``--force`` keeps the result) and the GUIs show the same line before fusing.

* weak final similarity: the final Mattes MI (negative = better) above ``-MIN_SIMILARITY``;
* the moving image's foreground landing mostly on the fixed image's background (or outside it);
* a result at a search bound: a rotation beyond twice the widest rotated start, or an affine scale outside
  ``SCALE_BOUNDS``.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from MedFusionLib.core.errors import RegistrationError
from MedFusionLib.registration import stages
from MedFusionLib.registration.checks import foreground_points

# Correct alignments of the real pairs in ../shared/data/volumes end between -0.22 (sts002 CT/PET) and
# -0.97 (spm T1/PET); a brain T1 against a thigh MR ends at -0.056, the two-exam PET/CT-MR pair at
# -0.019 (docs/registration.md has the table and the command).
MIN_SIMILARITY = 0.10
MIN_LANDING = 0.5  # fraction of the moving foreground that must land on the fixed foreground
MAX_ROTATION_DEG = 60.0  # the rotated starts reach +-30 degrees
SCALE_BOUNDS = (0.67, 1.5)


class ImplausibleRegistration(RegistrationError):
    """A registration that converged but looks wrong; the message names why, with the figures."""

    def __init__(self, warning: str, metric: float) -> None:
        super().__init__(
            f"registration implausible: {warning}; the fused image would be misregistered "
            "(check that the inputs show the same anatomy, or pass --force to keep it)"
        )
        self.warning = warning
        self.metric = metric


def _fixed_foreground(fixed: sitk.Image) -> np.ndarray:
    array = sitk.GetArrayViewFromImage(fixed)
    low, high = np.percentile(array, (1, 99))
    return np.asarray(array > low + 0.15 * (high - low))


def foreground_landing(fixed: sitk.Image, moving: sitk.Image, transform: sitk.Transform) -> float | None:
    """Fraction of the moving image's foreground that lands on the fixed image's foreground (points outside
    the fixed image count as background); None when the transform has no inverse (B-spline)."""
    try:
        inverse = transform.GetInverse()
    except RuntimeError:
        return None
    points = foreground_points(moving, max_points=4000)
    if len(points) == 0:
        return None
    mask = _fixed_foreground(fixed)
    index = np.array(
        [fixed.TransformPhysicalPointToContinuousIndex(inverse.TransformPoint(p.tolist())) for p in points]
    )
    index = np.round(index).astype(int)
    size = np.array(fixed.GetSize())
    inside = np.all((index >= 0) & (index < size), axis=1)
    landed = np.zeros(len(index), dtype=bool)
    landed[inside] = mask[tuple(index[inside][:, ::-1].T)]
    return float(landed.mean())


def search_bound(transform: sitk.Transform) -> str | None:
    """What lies at the edge of the search: a rotation beyond ``MAX_ROTATION_DEG``, a scale outside
    ``SCALE_BOUNDS``; None otherwise (and for transforms without a matrix)."""
    if not hasattr(transform, "GetMatrix"):
        return None
    angle = stages.rotation_angle_deg(transform)
    if angle > MAX_ROTATION_DEG:
        return f"rotation {angle:.0f} degrees (search bound {MAX_ROTATION_DEG:.0f})"
    matrix = np.array(transform.GetMatrix()).reshape(transform.GetDimension(), -1)
    scales = np.linalg.svd(matrix, compute_uv=False)
    if scales.min() < SCALE_BOUNDS[0] or scales.max() > SCALE_BOUNDS[1]:
        return f"scale {scales.min():.2f}..{scales.max():.2f} (bounds {SCALE_BOUNDS[0]}..{SCALE_BOUNDS[1]})"
    return None


def _matrix_part(transform: sitk.Transform) -> sitk.Transform:
    """The first (rigid or affine) transform of a composite: what the bounds and the landing judge."""
    if isinstance(transform, sitk.CompositeTransform) and transform.GetNumberOfTransforms() > 0:
        return transform.GetNthTransform(0)
    return transform


def implausibility(fixed: sitk.Image, moving: sitk.Image, transform: sitk.Transform, final_metric: float) -> str | None:
    """One line naming every sign that the registration is wrong, with its figure; None when it looks right."""
    problems = []
    if final_metric > -MIN_SIMILARITY:
        problems.append(
            f"weak final similarity (Mattes MI {final_metric:.3f}; correct alignments reach below {-MIN_SIMILARITY:.2f})"
        )
    landing = foreground_landing(fixed, moving, _matrix_part(transform))
    if landing is not None and landing < MIN_LANDING:
        problems.append(
            f"only {100 * landing:.0f}% of the moving image's foreground lands on the fixed image's foreground"
        )
    bound = search_bound(_matrix_part(transform))
    if bound:
        problems.append(f"the result lies at a search bound: {bound}")
    return "; ".join(problems) or None
