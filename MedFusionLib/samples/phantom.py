"""A synthetic CT/MR head phantom with a known misalignment: the embedded sample behind ``medfusion demo``.

Generated from a fixed seed (nothing is downloaded or shipped as data): ellipsoidal scalp, skull, brain with
grey/white matter texture, ventricles and a lesion, rendered with CT-like (Hounsfield) and MR-T2-like
contrasts. The MR is moved by a known rigid transform written into its header (origin and direction), so the
true registration is known exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

SHAPE = (56, 72, 64)  # z, y, x voxels
SPACING = (2.5, 2.5, 3.0)  # x, y, z mm
DEMO_ROTATION_DEG = (6.0, -4.0, 10.0)  # about x, y, z
DEMO_TRANSLATION_MM = (8.0, -6.0, 5.0)

# tissue -> (CT Hounsfield units, MR T2 relative intensity)
TISSUES = {
    "air": (-1000.0, 0.0),
    "scalp": (-80.0, 0.75),
    "skull": (1100.0, 0.05),
    "grey": (40.0, 0.55),
    "white": (28.0, 0.35),
    "csf": (8.0, 1.0),
    "lesion": (65.0, 0.85),
    "orbit": (-90.0, 0.9),  # orbital fat: dark on CT, bright on T2
    "calcification": (600.0, 0.1),
}


@dataclass
class PhantomPair:
    ct: sitk.Image
    mr: sitk.Image  # misaligned by `true_transform`
    brain_mask: sitk.Image  # on the CT grid
    true_transform: sitk.Euler3DTransform  # maps CT (fixed) physical points to MR (moving) points


def _ellipsoid(grid: tuple[np.ndarray, ...], centre, radii) -> np.ndarray:
    return sum(((g - c) / r) ** 2 for g, c, r in zip(grid, centre, radii)) <= 1.0


def _labels(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    z, y, x = np.meshgrid(*(np.linspace(-1, 1, n) for n in SHAPE), indexing="ij")
    grid = (z, y, x)
    labels = np.full(SHAPE, "air", dtype=object)
    head = _ellipsoid(grid, (0, 0, 0), (0.85, 0.9, 0.8))
    skull = _ellipsoid(grid, (0, 0, 0), (0.78, 0.83, 0.73))
    brain = _ellipsoid(grid, (0, 0, 0), (0.7, 0.75, 0.65))
    labels[head] = "scalp"
    labels[_ellipsoid(grid, (-0.1, -0.9, 0.0), (0.25, 0.12, 0.1))] = "scalp"  # nose
    labels[skull] = "skull"
    labels[brain] = "grey"
    texture = ndimage.gaussian_filter(rng.standard_normal(SHAPE), 2.0)
    labels[brain & (texture > 0.02) & _ellipsoid(grid, (0, 0, 0), (0.6, 0.65, 0.55))] = "white"
    labels[_ellipsoid(grid, (0.05, 0.0, -0.18), (0.25, 0.3, 0.08))] = "csf"
    labels[_ellipsoid(grid, (0.05, 0.0, 0.18), (0.25, 0.3, 0.08))] = "csf"
    labels[_ellipsoid(grid, (0.3, -0.35, 0.3), (0.12, 0.12, 0.12))] = "lesion"
    labels[_ellipsoid(grid, (-0.35, 0.2, 0.05), (0.06, 0.08, 0.06))] = "calcification"
    labels[_ellipsoid(grid, (-0.6, 0.1, 0.0), (0.06, 0.35, 0.45))] = "skull"  # skull base
    labels[_ellipsoid(grid, (0.1, 0.1, 0.0), (0.5, 0.45, 0.03))] = "csf"  # interhemispheric fissure
    for side in (-0.3, 0.3):  # eyes: asymmetric front/back, fixes the head's orientation
        labels[_ellipsoid(grid, (-0.2, -0.82, side), (0.12, 0.1, 0.12))] = "orbit"
    return labels, brain


def _render(labels: np.ndarray, column: int, noise: float, rng: np.random.Generator) -> np.ndarray:
    image = np.zeros(SHAPE, np.float32)
    for name, values in TISSUES.items():
        image[labels == name] = values[column]
    image = ndimage.gaussian_filter(image, 0.7)
    return (image + noise * rng.standard_normal(SHAPE)).astype(np.float32)


def _to_image(array: np.ndarray) -> sitk.Image:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(SPACING)
    extent = np.array(SPACING) * (np.array(SHAPE[::-1]) - 1)
    image.SetOrigin(tuple(-extent / 2))
    return image


def move_by_header(image: sitk.Image, transform: sitk.Euler3DTransform) -> sitk.Image:
    """Copy of ``image`` whose header places it so that ``transform`` (fixed -> moving) is the exact truth.

    A point p of the original scene appears at moving position T(p), with T(p) = R (p - c) + c + t, so the
    new header maps each voxel index to R (old position - c) + c + t.
    """
    moved = sitk.Image(image)
    rotation = np.array(transform.GetMatrix()).reshape(3, 3)
    centre = np.array(transform.GetCenter())
    shift = np.array(transform.GetTranslation())
    origin = rotation @ (np.array(image.GetOrigin()) - centre) + centre + shift
    direction = rotation @ np.array(image.GetDirection()).reshape(3, 3)
    moved.SetOrigin(tuple(origin))
    moved.SetDirection(tuple(direction.ravel()))
    return moved


def demo_transform() -> sitk.Euler3DTransform:
    transform = sitk.Euler3DTransform()
    transform.SetRotation(*np.deg2rad(DEMO_ROTATION_DEG))
    transform.SetTranslation(DEMO_TRANSLATION_MM)
    return transform


def make_phantom_pair(seed: int = 7) -> PhantomPair:
    """The demo's CT (fixed) and misaligned MR T2 (moving), with the brain mask and the true transform."""
    rng = np.random.default_rng(seed)
    labels, brain = _labels(rng)
    ct = _to_image(np.clip(_render(labels, 0, 12.0, rng), -1024, 3000).astype(np.int16).astype(np.float32))
    ct = sitk.Cast(ct, sitk.sitkInt16)
    mr_aligned = _to_image(np.clip(_render(labels, 1, 0.02, rng), 0, None) * 1000.0)
    truth = demo_transform()
    mask = _to_image(brain.astype(np.uint8))
    mask = sitk.Cast(mask, sitk.sitkUInt8)
    return PhantomPair(ct=ct, mr=move_by_header(mr_aligned, truth), brain_mask=mask, true_transform=truth)


def mean_displacement_error(estimate: sitk.Transform, truth: sitk.Transform, mask: sitk.Image) -> float:
    """Mean distance (mm) between where the two transforms send each physical point of ``mask``."""
    index = np.argwhere(sitk.GetArrayViewFromImage(mask) > 0)[:, ::-1]  # x, y, z voxel indices
    points = [
        mask.TransformIndexToPhysicalPoint(tuple(int(v) for v in i)) for i in index[:: max(1, len(index) // 5000)]
    ]
    errors = [np.linalg.norm(np.subtract(estimate.TransformPoint(p), truth.TransformPoint(p))) for p in points]
    return float(np.mean(errors))
