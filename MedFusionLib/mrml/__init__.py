"""The MRML side of MedFusion: volume nodes <-> SimpleITK images, transform, table and display nodes.

Everything here runs in 3D Slicer and under PyPI's ``slicer-core`` (the real MRML without Qt); nothing
imports Qt. Importing this package does not import ``slicer`` or ``vtk``: the submodules that need them
(``nodes``, ``transforms``, ``tables``, ``display``, ``logic``) import them, so the CLI never pays for it.

    from MedFusionLib import MedFusionLogic
    result = MedFusionLogic().process(fixedNode, movingNode, registration="rigid")
"""

__all__ = ["MedFusionLogic", "MedFusionResult"]


def __getattr__(name):
    if name in __all__:
        from MedFusionLib.mrml import logic

        return getattr(logic, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
