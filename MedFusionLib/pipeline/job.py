"""The job-folder format of one fusion run in another process (what the Slicer module's worker runs).

:func:`compute` turns images into a :class:`FusionOutcome` (fused image, transforms, metrics) without any
scene; :func:`write_job` / :func:`run_job` / :func:`load_outcome` carry it through a folder.

The Slicer module writes the input volumes (as they appear in the world) and a ``job.json`` into a
temporary folder and starts ``PythonSlicer -m MedFusionLib.apps.worker FOLDER`` (any Python with MedFusionLib
works). The worker prints one JSON object per line on stdout::

    {"progress": 0.42, "message": "aligning input 2 to input 1 (rigid)"}
    {"done": true}                      # or {"error": "..."} / {"cancelled": true}

and writes ``fused.nrrd`` (``rgb.nrrd`` for colour fusion), ``transform_<i>.h5`` per registered input and
``outcome.json`` into the folder. Cancelling: the module creates the file ``cancel`` in the folder (the
worker stops at its next check and writes nothing more), and kills the process if it does not stop.
Imports neither slicer, vtk nor Qt.
"""

from __future__ import annotations

import json
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import SimpleITK as sitk

from MedFusionLib.core.options import FUNCTIONAL_MODALITIES, FusionOptions, fusion_options
from MedFusionLib.core.progress import check_cancel, report, sub_progress

JOB = "job.json"
OUTCOME = "outcome.json"
CANCEL = "cancel"
SCORING_OPTIONS = ("computeMetrics", "include3DMetrics")
OPTIONS = (*(f.name for f in fields(FusionOptions)), *SCORING_OPTIONS)  # what job.json may hold besides inputs


def check_job_options(n_inputs: int, options: dict) -> None:
    """A one-line error for job options the worker could not run: unknown keys, values outside the schema, an
    unknown or unfit method, a modality list of the wrong length."""
    from MedFusionLib.core.errors import MedFusionError
    from MedFusionLib.fusion import get_method

    unknown = set(options) - set(OPTIONS)
    if unknown:
        raise MedFusionError(f"unknown job options {sorted(unknown)}")
    modalities = options.get("modalities")
    if modalities is not None and (
        not isinstance(modalities, (list, tuple))
        or len(modalities) != n_inputs
        or not all(isinstance(m, str) for m in modalities)
    ):
        raise MedFusionError(f"modalities must name one modality per input ({n_inputs}), got {modalities!r}")
    chosen = fusion_options(**{k: v for k, v in options.items() if k not in SCORING_OPTIONS})
    get_method(chosen.method).check(n_inputs, chosen.mode)
    for key in SCORING_OPTIONS:
        if not isinstance(options.get(key, False), bool):
            raise MedFusionError(f"{key} must be true or false, got {options[key]!r}")


def write_job(folder, images: Sequence[sitk.Image], **options) -> Path:
    """Check the options, then write the inputs and the options of a job; returns the job file. Nothing is
    written for options the worker would refuse: the inputs are patient data."""
    check_job_options(len(images), options)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for index, image in enumerate(images):
        name = f"input_{index}.nrrd"
        sitk.WriteImage(image, str(folder / name), useCompression=False)
        names.append(name)
    path = folder / JOB
    path.write_text(json.dumps({"inputs": names, **options}, indent=2), encoding="utf-8")
    return path


def _emit(stream, **message) -> None:
    stream.write(json.dumps(message, allow_nan=False) + "\n")
    stream.flush()


def run_job(folder, stream=None) -> int:
    """Run the job in ``folder``; returns the process exit code (0 done, 1 error, 2 cancelled)."""
    from MedFusionLib.core.errors import MedFusionError, OperationCancelled
    from MedFusionLib.registration import save_transform
    from MedFusionLib.registration.plausibility import ImplausibleRegistration

    stream = stream or sys.stdout
    folder = Path(folder)
    try:
        job = json.loads((folder / JOB).read_text(encoding="utf-8"))
        images = [sitk.ReadImage(str(folder / name)) for name in job["inputs"]]
        options = {k: job[k] for k in OPTIONS if k in job}
        outcome = compute(
            images,
            progress=lambda f, m: _emit(stream, progress=round(f, 4), message=m),
            cancel=lambda: (folder / CANCEL).exists(),
            **options,
        )
        sitk.WriteImage(outcome.fused, str(folder / "fused.nrrd"), useCompression=False)
        if outcome.rgb is not None:
            sitk.WriteImage(outcome.rgb, str(folder / "rgb.nrrd"), useCompression=False)
        transforms: list[str | None] = []
        for index, transform in enumerate(outcome.transforms):
            if transform is None:
                transforms.append(None)
                continue
            name = f"transform_{index + 1}.h5"
            save_transform(transform, folder / name)
            transforms.append(name)
        record = {
            "method": outcome.method,
            "mode": outcome.mode,
            "axis": outcome.axis,
            "registration": outcome.registration,
            "normalisation": outcome.normalisation,
            "metrics": outcome.metrics,
            "transforms": transforms,
            "summaries": outcome.summaries,
            "rgb": outcome.rgb is not None,
        }
        (folder / OUTCOME).write_text(json.dumps(record, indent=2), encoding="utf-8")
        _emit(stream, done=True)
        return 0
    except OperationCancelled:
        _emit(stream, cancelled=True)
        return 2
    except ImplausibleRegistration as err:  # the GUIs offer to fuse anyway (force_registration)
        _emit(stream, error=str(err), implausible=err.warning)
        return 1
    except MedFusionError as err:
        _emit(stream, error=str(err))
        return 1
    except Exception as err:  # a bug: keep the traceback for the log
        _emit(stream, error=f"{type(err).__name__}: {err}", traceback=traceback.format_exc())
        return 1


def load_outcome(folder):
    """The :class:`~MedFusionLib.mrml.logic.FusionOutcome` a finished job left in ``folder``."""
    from MedFusionLib.registration import load_transform

    folder = Path(folder)
    record = json.loads((folder / OUTCOME).read_text(encoding="utf-8"))
    return FusionOutcome(
        fused=sitk.ReadImage(str(folder / "fused.nrrd")),
        transforms=[load_transform(folder / name) if name else None for name in record["transforms"]],
        metrics=record["metrics"],
        method=record["method"],
        mode=record["mode"],
        axis=record["axis"],
        registration=record["registration"],
        normalisation=record["normalisation"],
        rgb=sitk.ReadImage(str(folder / "rgb.nrrd")) if record.get("rgb") else None,
        summaries=record.get("summaries", []),
    )


def parse_line(line: str) -> dict | None:
    """One worker stdout line as a dict (None for anything that is not a worker message)."""
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        message = json.loads(line)
    except ValueError:
        return None
    return message if isinstance(message, dict) else None


@dataclass
class FusionOutcome:
    """What the computation gives back, independent of the scene (and of the process it ran in)."""

    fused: sitk.Image  # scalar, 0..255, on the fixed image's (world) grid
    transforms: list[sitk.Transform | None]  # per moving input: fixed LPS -> moving LPS (ITK), or None
    metrics: dict | None
    method: str
    mode: str
    axis: int
    registration: str
    normalisation: list[str] = field(default_factory=list)
    rgb: sitk.Image | None = None  # colour fusion (vector uint8), when asked for
    summaries: list[str] = field(default_factory=list)


def functional_index(modalities: Sequence[str]) -> int | None:
    """Input whose colours colour fusion shows: the first PET/SPECT input, else None (the pipeline's own
    detection decides, and ``auto`` shows the grey fused image when it finds none)."""
    for index, modality in enumerate(modalities):
        if modality in FUNCTIONAL_MODALITIES:
            return index
    return None


def compute(
    images: Sequence[sitk.Image],
    options: FusionOptions | None = None,
    *,
    computeMetrics: bool = True,
    include3DMetrics: bool = False,
    progress: Callable | None = None,
    cancel: Callable | None = None,
    **choices: Any,
) -> FusionOutcome:
    """Register, fuse and score SimpleITK images (the first is fixed); touches no scene. The fusion choices are
    those of :func:`MedFusionLib.pipeline.fuse_images`; a ``colour`` other than "none" adds the RGB rendering of
    the functional input (given, else :func:`functional_index` of the modalities) over the fused image."""
    from MedFusionLib.pipeline import fuse_images

    options = fusion_options(options, **choices)
    modalities = options.modalities or ("auto",) * len(images)
    if options.functional is None:
        options = replace(options, functional=functional_index(modalities))
    share = 0.85 if computeMetrics else 1.0
    result = fuse_images(list(images), options, progress=sub_progress(progress, 0.0, share), cancel=cancel)
    metrics = None
    if computeMetrics:
        check_cancel(cancel)
        report(progress, share, "computing metrics")
        metrics = result.metrics(
            include_3d=include3DMetrics, progress=sub_progress(progress, share, 1.0), cancel=cancel
        )
    check_cancel(cancel)
    report(progress, 1.0, "fusion computed")
    return FusionOutcome(
        fused=result.fused,
        transforms=[r.transform if r is not None else None for r in result.registrations],
        metrics=metrics,
        method=result.method,
        mode=result.mode,
        axis=result.axis,
        registration=options.registration,
        normalisation=list(result.normalisation),
        rgb=result.colour_fused,
        summaries=[r.summary() if r is not None and hasattr(r, "summary") else "" for r in result.registrations],
    )
