"""Fusion methods (registry), the slice/volume engine, and intensity normalisation."""

from MedFusionLib.fusion.engine import fuse_arrays
from MedFusionLib.fusion.registry import (
    FusionMethod,
    available_methods,
    default_method_name,
    describe_methods,
    get_method,
    register_method,
)

__all__ = [
    "FusionMethod",
    "available_methods",
    "default_method_name",
    "describe_methods",
    "fuse_arrays",
    "get_method",
    "register_method",
]
