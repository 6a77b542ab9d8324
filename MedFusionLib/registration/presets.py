"""Registration presets: per modality-pair settings, and the "auto" guess.

Mutual information does not care how intensities map between modalities, so the presets differ little;
each difference below was measured with benchmarks/registration_benchmark.py (docs/registration.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

PRESETS = ("auto", "ct-mr", "pet-mr", "mr-mr")


@dataclass(frozen=True)
class Preset:
    name: str
    bins: int = 32  # Mattes histogram bins
    samplings: tuple[float, ...] = (0.25, 0.15, 0.03)  # fraction of each level's voxels sampled (random, seeded)
    mask_dilate_mm: float = 0.0  # >0: sample only the fixed foreground dilated by this much
    min_samples: int = 3000  # but at least this many (every voxel of a tiny level)...
    final_min_samples: int = 20000  # ...and at least this many at the finest level (small images)
    max_level_voxels: int = 1_200_000  # finest level grid is coarsened until it holds at most this many
    levels: tuple[float, ...] = (4.0, 2.0, 1.0)  # level spacing as multiples of the finest spacing
    extra_sigma: tuple[float, ...] = (1.0, 0.25, 0.25)  # additional blur per level, in level voxels
    clip_percentiles: tuple[float, float] = (0.0, 100.0)
    iterations: int = 200  # per level and start; regular-step usually stops long before
    learning_rates: tuple[float, ...] = (1.0, 1.0, 0.15)  # regular-step first step, per level
    min_steps: tuple[float, ...] = (0.01, 0.005, 0.0005)  # regular-step stop: step below this, per level
    relaxation: float = 0.5
    rotation_radius_fraction: float = 0.3  # >0: rigid scales with rotations weighted at this fraction of
    # the box half-diagonal; 0: scales from physical shift
    patience: int = 10  # stop a level after this many iterations without metric gain...
    stall_tolerances: tuple[float, ...] = (1e-4, 1e-4, 1e-4)  # ...of more than this fraction, per level
    seed: int = 2024  # fixed sampling seed: same input, same answer


_PRESETS: dict[str, Preset] = {
    "mr-mr": Preset("mr-mr"),
    # Sampling the body outline plus a margin (_loose_mask: not a tight mask, the outline itself is the
    # strongest feature) ignores the empty air (CT) or noisy background (PET/SPECT). CT against thick-slice
    # MR has a flat optimum: more samples at the finest level steady it.
    # Rotation scales from physical shift here: on the porcine pair the balanced scales converge faster
    # but land further from elastix's result (1.1-1.8 mm over three seeds instead of 0.4-1.2 mm).
    "ct-mr": Preset("ct-mr", mask_dilate_mm=6.0, samplings=(0.25, 0.15, 0.20), rotation_radius_fraction=0.0),
    "pet-mr": Preset("pet-mr", mask_dilate_mm=6.0),
}


def get_preset(name: str) -> Preset:
    return _PRESETS[name]


def guess_preset(fixed: sitk.Image, moving: sitk.Image) -> str:
    """CT shows air at about -1000 HU; nothing else has values below -500. Otherwise "mr-mr", which is
    also sound for PET/SPECT (choose "pet-mr" explicitly for them: it is a little more accurate)."""
    for image in (fixed, moving):
        arr = sitk.GetArrayViewFromImage(image)
        if arr.size and float(np.min(arr)) < -500:
            return "ct-mr"
    return "mr-mr"
