"""The registry of fusion methods.

Each method lives in its own file under ``MedFusionLib/fusion/methods/`` and registers itself with
:func:`declare_method` (one ``fuse(stack, mode=...)`` callable and the description; :func:`register_method` takes a
ready :class:`FusionMethod`). Everything else (CLI, batch, Slicer logic, comparison) looks methods up here, so
adding a method means adding one file and importing it in ``methods/__init__.py``.

Array conventions for the fusion callables (all float32, intensities normalised to 0..1):

* ``fuse_slices(stack)``: ``stack`` has shape ``(n_inputs, batch, H, W)``; returns ``(batch, H, W)``.
* ``fuse_volume(stack)``: ``stack`` has shape ``(n_inputs, D, H, W)``; returns ``(D, H, W)``.
* a method registered with ``uses_modalities=True`` is called as ``fuse_slices(stack, modalities=...)`` /
  ``fuse_volume(stack, modalities=...)``: one name per input from :data:`IMAGING_MODALITIES` (``ct``, ``mr``,
  ``pet``, ``spect``), in the order of the inputs (the engine checks them; see ``fusion.engine.fuse_arrays``).
  Every other method is called with the stack alone.

Methods that need a trained network load it lazily (and once) inside these callables.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np

from MedFusionLib.core.errors import MedFusionError
from MedFusionLib.core.options import MODALITY, MODE

FAMILIES = (
    "classical",
    "cnn",
    "encoder-decoder",
    "gan",
    "decision-map",
    "feature-extraction",
    "multi-encoder",
)
MODES = MODE.values

IMAGING_MODALITIES = tuple(m for m in MODALITY.values if m not in ("auto", "8bit"))  # ct, mr, pet, spect

# the volume_note of a 2-D network run along the three axes of a volume (inference/batching.run_triplanar)
TRIPLANAR_NOTE = "Tri-planar (2.5-D): the 2-D network along all three axes, results averaged."

FuseFunction = Callable[..., np.ndarray]  # (stack) -> fused, or (stack, modalities=...) when uses_modalities


@dataclass(frozen=True)
class FusionMethod:
    """Description and entry points of one fusion method."""

    name: str
    family: str
    description: str
    fuse_slices: FuseFunction | None = None
    fuse_volume: FuseFunction | None = None
    inputs: int | str = 2  # 2, or "n" for any number >= 2
    volume_note: str = ""  # what 'volume' mode means for this method (documentation)
    references: tuple[str, ...] = field(default_factory=tuple)
    # the paper a deep method follows ("" for classical): "<paper>, at its published architecture" only where
    # ``parameters`` equals ``paper_parameters``; otherwise "after <paper>: <departures>"
    paper: str = ""
    # trainable parameters of the shipped weights (slice-mode network): an int, or a callable that counts them
    # from the weight file on demand (so listing methods does not load every network)
    parameters: int | Callable[[], int] = 0
    # trainable parameters of the paper's network at our grey input, counted layer for layer from the paper (with
    # the authors' release where the paper leaves a width open); None where the method reproduces no published
    # network (our own designs, frameworks around another network, classical rules)
    paper_parameters: int | None = None
    # True: the fuse callables take ``modalities=`` (one of IMAGING_MODALITIES per input), e.g. to pick an
    # encoder per modality; the engine then always passes them (given, or detected with a note)
    uses_modalities: bool = False
    # True when fusing runs torch (the networks not exported to ONNX: docs/runtime.md); the Slicer module asks
    # for PyTorch only then, for onnxruntime otherwise
    needs_torch: bool = False

    def parameter_count(self) -> int:
        """Trainable parameters of the shipped (slice-mode) network; 0 for classical methods."""
        return int(self.parameters() if callable(self.parameters) else self.parameters)

    @property
    def modes(self) -> list[str]:
        modes = []
        if self.fuse_slices is not None:
            modes.append("slice")
        if self.fuse_volume is not None:
            modes.append("volume")
        return modes

    @property
    def inputs_text(self) -> str:
        return "2 or more" if self.inputs == "n" else str(self.inputs)

    def accepts(self, n_inputs: int) -> bool:
        return n_inputs >= 2 if self.inputs == "n" else n_inputs == self.inputs

    def check(self, n_inputs: int, mode: str) -> None:
        """Raise a clear MedFusionError unless this method fuses ``n_inputs`` images in ``mode``."""
        if not self.accepts(n_inputs):
            raise MedFusionError(f"method {self.name!r} takes {self.inputs_text} inputs, got {n_inputs}")
        if mode not in self.modes:
            raise MedFusionError(f"method {self.name!r} supports modes {self.modes}, not {mode!r}")


_REGISTRY: dict[str, FusionMethod] = {}


def register_method(method: FusionMethod) -> FusionMethod:
    """Add ``method`` to the registry (called at import time by each method's file)."""
    if method.family not in FAMILIES:
        raise ValueError(f"unknown family {method.family!r} for method {method.name!r}")
    if not method.modes:
        raise ValueError(f"method {method.name!r} supports no mode")
    if method.name in _REGISTRY:
        raise ValueError(f"method {method.name!r} registered twice")
    _REGISTRY[method.name] = method
    return method


def declare_method(
    fuse: Callable[..., np.ndarray],
    *,
    weights: str | None = None,
    without: str | None = None,
    **description: Any,
) -> FusionMethod:
    """Register a method whose one callable ``fuse(stack, mode=...)`` serves slice and volume mode (with
    ``modalities=...`` too when ``uses_modalities``); a network's ``parameters`` are counted from its weight file
    ``weights`` (``without``: see :func:`weight_parameters`). ``description``: the other :class:`FusionMethod`
    fields. What a method file declares, so each file states only what is its own."""
    if description.get("uses_modalities"):
        slices: FuseFunction = lambda stack, modalities: fuse(stack, mode="slice", modalities=modalities)  # noqa: E731
        volume: FuseFunction = lambda stack, modalities: fuse(stack, mode="volume", modalities=modalities)  # noqa: E731
    else:
        slices, volume = partial(fuse, mode="slice"), partial(fuse, mode="volume")
    if weights is not None:
        description["parameters"] = weight_parameters(weights, without)
    return register_method(FusionMethod(fuse_slices=slices, fuse_volume=volume, **description))


def _ensure_loaded() -> None:
    from MedFusionLib.fusion import methods  # noqa: F401  (importing registers every shipped method)


def available_methods() -> list[FusionMethod]:
    """All registered methods, in registration order."""
    _ensure_loaded()
    return list(_REGISTRY.values())


def default_method_name() -> str:
    """Name of the method used when none is given: ``methods.DEFAULT_METHOD`` (see its docstring for how it was
    chosen and where it stands in the 16-metric study)."""
    from MedFusionLib.fusion.methods import DEFAULT_METHOD

    return DEFAULT_METHOD


def get_method(name: str | None) -> FusionMethod:
    """Look a method up by name (``None`` gives the default); unknown names raise a clear error."""
    _ensure_loaded()
    if name is None:
        name = default_method_name()
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(_REGISTRY)
        raise MedFusionError(f"unknown fusion method {name!r} (known: {known})") from None


def weight_parameters(weights: str, without: str | None = None) -> Callable[[], int]:
    """A callable counting the parameters stored in the shipped weight file ``weights`` (read on first call);
    ``without`` names a submodule the method does not use (e.g. the decoder of an autoencoder whose encoder
    features it weighs), whose parameters are left out."""

    def count() -> int:
        from MedFusionLib.inference.runtime import load_network

        net = load_network(weights)
        unused = getattr(net, without).parameters() if without else ()
        return sum(p.numel() for p in net.parameters()) - sum(p.numel() for p in unused)

    return count


def describe_methods(with_parameters: bool = False) -> list[dict]:
    """JSON-ready list used by ``medfusion methods --json`` and the Slicer method combo.

    ``paper_parameters`` is always there (None where no published network is reproduced); ``with_parameters``
    adds ``parameters`` (loads each deep method's weight file once, so it needs torch).
    """
    default = default_method_name()
    return [
        {
            "name": m.name,
            "family": m.family,
            "modes": m.modes,
            "inputs": m.inputs,
            "default": m.name == default,
            "description": m.description,
            "paper": m.paper,
            "paper_parameters": m.paper_parameters,
            "uses_modalities": m.uses_modalities,
            "needs_torch": m.needs_torch,
            **({"parameters": m.parameter_count()} if with_parameters else {}),
        }
        for m in available_methods()
    ]
