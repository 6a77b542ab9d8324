"""A PET-like rendering of the synthetic head phantom of :mod:`MedFusionLib.samples`.

Same anatomy (same seed, same labels) as the CT/MR pair, rendered with FDG-like uptake: high in grey
matter and in the lesion, lower in white matter, none in CSF, bone or air; blurred to PET resolution
(about 8 mm FWHM) and with Poisson-like noise. Moved by the same known rigid transform through the header,
so the true registration to the CT is exact.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from MedFusionLib.samples import phantom as samples

UPTAKE = {"air": 0.0, "scalp": 0.3, "skull": 0.1, "grey": 1.0, "white": 0.35, "csf": 0.05, "lesion": 2.5}
PET_FWHM_MM = 8.0


def make_phantom_pet(seed: int = 7, moved: bool = True) -> sitk.Image:
    """PET-like volume (kBq/ml-like units) on the phantom grid; moved by ``samples.demo_transform()``
    through its header when ``moved`` (the CT of ``make_phantom_pair(seed)`` is then the fixed image)."""
    rng = np.random.default_rng(seed)
    labels, _ = samples._labels(rng)
    activity = np.zeros(samples.SHAPE, np.float32)
    for name, value in UPTAKE.items():
        activity[labels == name] = value
    sigma_mm = PET_FWHM_MM / 2.3548
    sigma_vox = [sigma_mm / s for s in samples.SPACING[::-1]]
    activity = ndimage.gaussian_filter(activity, sigma_vox) * 5000.0
    noisy = rng.poisson(np.maximum(activity, 0) / 50.0).astype(np.float32) * 50.0
    image = samples._to_image(noisy.astype(np.float32))
    return samples.move_by_header(image, samples.demo_transform()) if moved else image
