"""MedFusion: registration, deep-learning fusion and fusion metrics for multimodal medical images.

Qt-free: runs from the command line, in batch, inside 3D Slicer (through the MedFusion module) and under
slicer-core.
"""

__version__ = "0.1.0"
