"""MedFusion: registration, deep-learning fusion and fusion metrics for multimodal medical images.

Qt-free: runs from the command line, in batch, inside 3D Slicer (through the MedFusion module) and under
slicer-core.
"""

__version__ = "0.1.0"


def __getattr__(name):
    """``from MedFusionLib import MedFusionLogic`` without importing slicer/vtk for CLI users."""
    if name in ("MedFusionLogic", "MedFusionResult"):
        from .mrml import logic

        return getattr(logic, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
