"""Multimodal image registration with SimpleITK (Mattes mutual information, multi-resolution).

    result = register(fixed, moving, "rigid")          # or "affine", "deformable"
    aligned = resample_to_fixed(fixed, moving, result.transform)
    save_transform(result.transform, "moving_to_fixed.tfm")

Transforms follow ITK: they map fixed physical points to moving physical points. See docs/registration.md.
"""

from MedFusionLib.registration.core import MODES, RegistrationResult, register
from MedFusionLib.registration.presets import PRESETS
from MedFusionLib.registration.transform_io import load_transform, resample_to_fixed, save_transform

__all__ = [
    "register",
    "resample_to_fixed",
    "save_transform",
    "load_transform",
    "RegistrationResult",
    "MODES",
    "PRESETS",
]
