"""The one schema of user choices: every front-end (CLI, pipeline, scene logic, Slicer module, web app, study)
takes its enumerations and defaults from here, so they can never disagree on what a word means. The fusion
method is the one open-ended choice: its values and default come from the method registry
(``MedFusionLib.fusion.available_methods()`` / ``default_method_name()``; ``None`` means the default).

Each :class:`Choice` holds the allowed values, the single default, display labels for GUIs (a parameter node
stores the *value*, never the label) and a one-line help text. ``check`` turns a bad value into a one-line
:class:`~MedFusionLib.core.errors.MedFusionError` naming the option and the allowed values.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

from MedFusionLib.core.errors import MedFusionError


@dataclass(frozen=True)
class Choice:
    """One enumerated option: its values, its one default, GUI labels and help."""

    name: str
    values: tuple[Any, ...]
    default: Any
    help: str
    labels: dict[Any, str] = field(default_factory=dict)
    gui_default: Any = None  # what the GUIs start with when it differs from the files' default (None: the same)

    def __post_init__(self) -> None:
        for default in (self.default, self.shown_default):
            if default not in self.values:
                raise ValueError(f"default {default!r} of option {self.name!r} is not one of {self.values}")

    @property
    def shown_default(self) -> Any:
        """The default of the Slicer module and the web app (a clinician's first view)."""
        return self.default if self.gui_default is None else self.gui_default

    def check(self, value: Any) -> Any:
        """``value`` if allowed, else a one-line MedFusionError."""
        if value not in self.values:
            allowed = ", ".join(str(v) for v in self.values)
            raise MedFusionError(f"unknown {self.name} {value!r} (choose from {allowed})")
        return value

    def label(self, value: Any) -> str:
        """The display label of ``value`` (the value itself when it has none)."""
        return self.labels.get(value, str(value))

    def value_of_label(self, label: str) -> Any:
        """Inverse of :meth:`label` (for GUIs that only hand back the shown text)."""
        for value in self.values:
            if self.label(value) == label or str(value) == label:
                return value
        raise MedFusionError(f"unknown {self.name} {label!r}")


MODE = Choice(
    "mode",
    ("slice", "volume"),
    "slice",
    "slice: the 2-D method over the slices of the chosen axis; volume: the method's 3-D form",
    labels={"slice": "slice-wise (2-D)", "volume": "volumetric (3-D)"},
)

AXIS = Choice(
    "axis",
    (2, 1, 0),
    2,
    "image axis cut by slice mode: 0 = i (x, sagittal), 1 = j (y, coronal), 2 = k (z, axial)",
    labels={2: "k (axial)", 1: "j (coronal)", 0: "i (sagittal)"},
)

REGISTRATION = Choice(
    "registration",
    ("none", "rigid", "affine", "deformable"),
    "none",
    "align inputs 2.. to the first before fusing (none: header geometry only)",
)

REGISTRATION_MODES = REGISTRATION.values[1:]  # what the registration core itself accepts

COLOUR = Choice(
    "colour",
    ("none", "auto", "hot", "pet", "rainbow"),
    "none",
    "RGB output with the functional input's colour over the fused image: auto (the clinical rule: when an input "
    "is functional, PET/SPECT by detection or choice, or in colour, its own colours or the PET map over the grey "
    "anatomy; otherwise, CT + MR, the grey fused image) or a map (hot, pet, rainbow); none: grey output",
    gui_default="auto",  # the GUIs show PET/SPECT the clinical way at once; files stay grey unless asked
)

COLOUR_STYLE = Choice(
    "colour style",
    ("overlay", "ycbcr"),
    "overlay",
    "how --colour paints the functional input: overlay (the fused anatomy in grey, the colour map above a "
    "threshold of the functional values, transparent below, black background kept black) or ycbcr (fused "
    "image as luma, functional colour as chroma everywhere)",
    labels={"overlay": "thresholded overlay", "ycbcr": "luma/chroma (YCbCr)"},
)

COLOUR_MAP_NAMES = COLOUR.values[2:]  # the named colour maps (colour.COLOUR_MAPS holds their control points)

OVERLAY_MAP = Choice(
    "overlay map",
    ("auto", "grey", "pet"),
    "auto",
    "colour table of a grey fused volume shown in Slicer's views: auto (PET heat when a PET/SPECT input is "
    "present, else grey), grey or pet",
)

DISPLAY_MODE = Choice(
    "display mode",
    ("overlay", "fused"),
    "overlay",
    "overlay: the fused volume over the reference at the chosen opacity; fused: the fused volume alone",
)

VIEW_LAYOUT = Choice(
    "view layout",
    ("grid", "three", "axial", "3d"),
    "grid",
    "the views of the web app: grid (axial and 3-D above, coronal and sagittal below), three (the three slice "
    "views in a row), axial (one slice view), 3d (the 3-D view: the three slice planes in space)",
    labels={"grid": "2 x 2 with 3-D", "three": "three slices", "axial": "axial only", "3d": "3-D only"},
)

MODALITY = Choice(
    "modality",
    ("auto", "ct", "mr", "pet", "spect", "8bit"),
    "auto",
    "intensity rule per input: ct (fixed HU window), mr/pet/spect (percentiles), 8bit (as is), auto (guessed)",
)

OUTPUT_TYPE = Choice(
    "output type",
    ("float32", "uint8"),
    "uint8",
    "voxel type of a grey fused volume on its 0..255 display scale: uint8 rounded (the default: what a viewer "
    "shows, 5x smaller and 5x faster to write as .nii.gz), or float32 (for re-scoring the file)",
)

DEVICE = Choice(
    "device",
    ("auto", "cpu", "cuda"),
    "auto",
    "where the networks run: auto (an NVIDIA GPU through ONNX Runtime's CUDA provider when installed, else the "
    "CPU), cpu, or cuda (an error when no GPU is usable)",
    labels={"auto": "auto (GPU if available)", "cpu": "CPU", "cuda": "GPU (CUDA)"},
)

SCORING = Choice(
    "normalisation",
    ("modality", "percentile"),
    "modality",
    "how scoring maps intensities to 0..255: modality (each source by its modality rule, as fusion saw it, and "
    "the fused image as written, on 0..255: what fuse --metrics, compare, study and the GUIs use) or percentile "
    "(every image, the fused one too, by its own 0.5th..99.5th percentiles: for images from other tools)",
)

FUNCTIONAL_MODALITIES = ("pet", "spect")  # inputs shown in colour (functional imaging)

LAYER_OPACITY = 0.5  # the GUIs' first opacity of a grey fused layer over the reference: both stay visible
COLOUR_LAYER_OPACITY = 1.0  # a colour overlay result already shows both (grey anatomy, colour above a threshold)


def shown_opacity(colour_used: str) -> float:
    """The GUIs' opacity for a result made with ``colour_used`` ("none": a grey result over the reference)."""
    return LAYER_OPACITY if COLOUR.check(colour_used) == "none" else COLOUR_LAYER_OPACITY


def colour_for_inputs(colour: str, has_functional: bool) -> str:
    """The colour a run really uses: ``auto`` is the clinical rule, the colour overlay when an input is
    functional (PET/SPECT, detected or chosen, or a colour input) and the grey fused image ("none") otherwise
    (CT + MR: colouring the MR would read as uptake)."""
    COLOUR.check(colour)
    return "none" if colour == "auto" and not has_functional else colour


ALL_CHOICES = (
    MODE,
    AXIS,
    REGISTRATION,
    COLOUR,
    OUTPUT_TYPE,
    COLOUR_STYLE,
    OVERLAY_MAP,
    DISPLAY_MODE,
    VIEW_LAYOUT,
    MODALITY,
    SCORING,
    DEVICE,
)


@dataclass(frozen=True)
class FusionOptions:
    """Every choice of one fusion run, validated: what the CLI, batch/study rows, the Dask engine and the web
    app pass around (a plain, picklable value). ``method`` None = the registry's default; ``functional`` is the
    0-based index of the functional input for colour output (None = the colour input, else the last)."""

    method: str | None = None
    mode: str = MODE.default
    axis: int = AXIS.default
    registration: str = REGISTRATION.default
    modalities: tuple[str, ...] | None = None
    colour: str = COLOUR.default
    functional: int | None = None
    colour_style: str = COLOUR_STYLE.default
    force_registration: bool = False  # keep a registration that looks implausible (registration/plausibility)
    device: str = DEVICE.default

    def __post_init__(self) -> None:
        MODE.check(self.mode)
        AXIS.check(self.axis)
        REGISTRATION.check(self.registration)
        COLOUR.check(self.colour)
        COLOUR_STYLE.check(self.colour_style)
        DEVICE.check(self.device)
        if not isinstance(self.force_registration, bool):
            raise MedFusionError(f"force_registration must be true or false, got {self.force_registration!r}")
        if self.functional is not None and (not isinstance(self.functional, int) or self.functional < 0):
            raise MedFusionError(f"functional input index must be 0 or more (0-based), got {self.functional!r}")
        for modality in self.modalities or ():
            MODALITY.check(modality)
        if self.modalities is not None and not isinstance(self.modalities, tuple):
            object.__setattr__(self, "modalities", tuple(self.modalities))

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (records, job files, study protocol); also the keyword arguments of
        :func:`MedFusionLib.pipeline.fuse_images`."""
        return {
            "method": self.method,
            "mode": self.mode,
            "axis": self.axis,
            "registration": self.registration,
            "modalities": list(self.modalities) if self.modalities else None,
            "colour": self.colour,
            "colour_style": self.colour_style,
            "functional": self.functional,
            **({"force_registration": True} if self.force_registration else {}),  # default: records unchanged
            "device": self.device,
        }


def fusion_options(options: FusionOptions | None = None, **choices: Any) -> FusionOptions:
    """``options`` (default: every default) with ``choices`` replaced and validated: how the keyword APIs
    (``fuse_images``, ``compute``, ``MedFusionLogic.process``) take the fields of :class:`FusionOptions` without
    declaring them again. A key that is not a fusion choice is a one-line error naming it."""
    known = [f.name for f in fields(FusionOptions)]
    unknown = sorted(set(choices) - set(known))
    if unknown:
        raise MedFusionError(f"unknown fusion option {', '.join(unknown)} (known: {', '.join(known)})")
    return replace(options or FusionOptions(), **choices)
