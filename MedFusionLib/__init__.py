"""MedFusion: registration, deep-learning fusion and fusion metrics for multimodal medical images.

Entry points (imported on first use, so ``import MedFusionLib`` stays light and pulls in neither torch nor
slicer):

* ``fuse_images(images, method=None, mode="slice", registration="none", ...)`` -> :class:`FusionResult`:
  register, normalise and fuse SimpleITK images (the first is the reference grid);
* ``prepare_inputs`` / ``fuse_prepared``: the same in two steps (prepare once, fuse with several methods);
* ``register(fixed, moving, mode="rigid")`` -> ``RegistrationResult`` (SimpleITK, Mattes mutual information);
* ``score(sources, fused)`` -> dict: the 16 fusion metrics (``docs/metrics.md``);
* ``available_methods()`` / ``get_method(name)``: the fusion-method registry;
* ``FusionOptions`` and the choice schema (``MedFusionLib.core.options``);
* ``MedFusionLogic``: the same on 3D Slicer's MRML scene (needs slicer or slicer-core).

Front-ends: the ``medfusion`` command (``python -m MedFusionLib``), the Slicer module ``MedFusion``.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "fuse_images": "MedFusionLib.pipeline",
    "fuse_prepared": "MedFusionLib.pipeline",
    "prepare_inputs": "MedFusionLib.pipeline",
    "FusionResult": "MedFusionLib.pipeline",
    "register": "MedFusionLib.registration",
    "score": "MedFusionLib.metrics",
    "available_methods": "MedFusionLib.fusion",
    "get_method": "MedFusionLib.fusion",
    "FusionOptions": "MedFusionLib.core.options",
    "MedFusionError": "MedFusionLib.core.errors",
    "MedFusionLogic": "MedFusionLib.mrml.logic",
    "MedFusionResult": "MedFusionLib.mrml.logic",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    """Import an entry point on first use (PEP 562)."""
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
