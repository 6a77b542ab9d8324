"""Run one MedFusion job in a separate process, so that 3D Slicer's GUI stays responsive.

The Slicer module writes the input volumes (as they appear in the world) and a ``job.json`` into a
temporary folder and starts ``PythonSlicer -m MedFusionLib.worker FOLDER`` (any Python with MedFusionLib
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
from pathlib import Path
from typing import Optional, Sequence

import SimpleITK as sitk

JOB = "job.json"
OUTCOME = "outcome.json"
CANCEL = "cancel"
OPTIONS = ("method", "mode", "axis", "registration", "modalities", "colour", "computeMetrics", "include3DMetrics")


def write_job(folder, images: Sequence[sitk.Image], **options) -> Path:
    """Write the inputs and the options of a job; returns the job file."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for index, image in enumerate(images):
        name = f"input_{index}.nrrd"
        sitk.WriteImage(image, str(folder / name), useCompression=False)
        names.append(name)
    unknown = set(options) - set(OPTIONS)
    if unknown:
        raise ValueError(f"unknown job options {sorted(unknown)}")
    path = folder / JOB
    path.write_text(json.dumps({"inputs": names, **options}, indent=2))
    return path


def _emit(stream, **message) -> None:
    stream.write(json.dumps(message, allow_nan=False) + "\n")
    stream.flush()


def run_job(folder, stream=None) -> int:
    """Run the job in ``folder``; returns the process exit code (0 done, 1 error, 2 cancelled)."""
    from .errors import MedFusionError, OperationCancelled
    from .mrml.logic import compute
    from .registration import save_transform

    stream = stream or sys.stdout
    folder = Path(folder)
    try:
        job = json.loads((folder / JOB).read_text())
        images = [sitk.ReadImage(str(folder / name)) for name in job["inputs"]]
        options = {k: job[k] for k in OPTIONS if k in job}
        outcome = compute(images, progress=lambda f, m: _emit(stream, progress=round(f, 4), message=m),
                          cancel=lambda: (folder / CANCEL).exists(), **options)
        sitk.WriteImage(outcome.fused, str(folder / "fused.nrrd"), useCompression=False)
        if outcome.rgb is not None:
            sitk.WriteImage(outcome.rgb, str(folder / "rgb.nrrd"), useCompression=False)
        transforms = []
        for index, transform in enumerate(outcome.transforms):
            if transform is None:
                transforms.append(None)
                continue
            name = f"transform_{index + 1}.h5"
            save_transform(transform, folder / name)
            transforms.append(name)
        record = {"method": outcome.method, "mode": outcome.mode, "axis": outcome.axis,
                  "registration": outcome.registration, "normalisation": outcome.normalisation,
                  "metrics": outcome.metrics, "transforms": transforms, "summaries": outcome.summaries,
                  "rgb": outcome.rgb is not None}
        (folder / OUTCOME).write_text(json.dumps(record, indent=2))
        _emit(stream, done=True)
        return 0
    except OperationCancelled:
        _emit(stream, cancelled=True)
        return 2
    except MedFusionError as err:
        _emit(stream, error=str(err))
        return 1
    except Exception as err:  # a bug: keep the traceback for the log
        _emit(stream, error=f"{type(err).__name__}: {err}", traceback=traceback.format_exc())
        return 1


def load_outcome(folder):
    """The :class:`~MedFusionLib.mrml.logic.FusionOutcome` a finished job left in ``folder``."""
    from .mrml.logic import FusionOutcome
    from .registration import load_transform

    folder = Path(folder)
    record = json.loads((folder / OUTCOME).read_text())
    return FusionOutcome(
        fused=sitk.ReadImage(str(folder / "fused.nrrd")),
        transforms=[load_transform(folder / name) if name else None for name in record["transforms"]],
        metrics=record["metrics"], method=record["method"], mode=record["mode"], axis=record["axis"],
        registration=record["registration"], normalisation=record["normalisation"],
        rgb=sitk.ReadImage(str(folder / "rgb.nrrd")) if record.get("rgb") else None,
        summaries=record.get("summaries", []))


def parse_line(line: str) -> Optional[dict]:
    """One worker stdout line as a dict (None for anything that is not a worker message)."""
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        message = json.loads(line)
    except ValueError:
        return None
    return message if isinstance(message, dict) else None


class WorkerProcess:
    """A running worker, polled without blocking (the Slicer module polls it from a QTimer).

    ``launch(args, environment)`` starts the process and returns a ``subprocess.Popen``-like object whose
    stdout yields text lines (stderr merged); by default ``subprocess.Popen``. In Slicer the module passes
    ``slicer.util.launchConsoleProcess``. ``pythonPath`` is prepended to ``PYTHONPATH`` so that the worker
    finds MedFusionLib.
    """

    def __init__(self, folder, python: Optional[str] = None, pythonPath: Optional[str] = None, launch=None):
        import os
        import queue
        import threading

        self.folder = Path(folder)
        self.final: Optional[dict] = None
        self.log: list = []
        self._last: Optional[dict] = None
        self._cancelled = False
        self._lines = queue.Queue()
        self._empty = queue.Empty
        environment = {}
        if pythonPath:
            environment["PYTHONPATH"] = os.pathsep.join(p for p in (pythonPath, os.environ.get("PYTHONPATH", "")) if p)
        args = [python or sys.executable, "-m", "MedFusionLib.worker", str(self.folder)]
        self.process = (launch or self._popen)(args, environment)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @staticmethod
    def _popen(args, environment):
        import os
        import subprocess

        env = dict(os.environ, **environment)
        return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def _read(self):
        for line in iter(self.process.stdout.readline, ""):
            self._lines.put(line)
        self._lines.put(None)

    @property
    def finished(self) -> bool:
        return self.final is not None

    def poll(self) -> list:
        """Progress messages that arrived since the last call; sets :attr:`final` once the process ended
        (``{"done": True}``, ``{"cancelled": True}`` or ``{"error": ...}``)."""
        progress = []
        while self.final is None:
            try:
                line = self._lines.get_nowait()
            except self._empty:
                break
            if line is None:
                self.process.wait()
                if self._cancelled and not (self._last or {}).get("done"):
                    self._last = {"cancelled": True}
                elif self._last is None:
                    self._last = {"error": f"the MedFusion worker stopped unexpectedly (exit code {self.process.returncode})"}
                self.final = self._last
                break
            message = parse_line(line)
            if message is None:
                self.log.append(line.rstrip())
            elif "progress" in message:
                progress.append(message)
            else:
                self._last = message
        return progress

    def cancel(self) -> None:
        """Ask the worker to stop at its next check (call :meth:`kill` if it does not stop)."""
        self._cancelled = True
        (self.folder / CANCEL).touch()

    def kill(self) -> None:
        if self.process.poll() is None:
            self._cancelled = True
            self.process.kill()

    def wait(self, timeout: float = 600.0, interval: float = 0.05) -> dict:
        """Poll until finished (for scripts and tests); returns the final message."""
        import time

        deadline = time.monotonic() + timeout
        while not self.finished:
            self.poll()
            if time.monotonic() > deadline:
                self.kill()
                raise TimeoutError("the MedFusion worker did not finish in time")
            time.sleep(interval)
        return self.final


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        sys.stderr.write("usage: python -m MedFusionLib.worker JOB_FOLDER\n")
        return 64
    return run_job(argv[0])


if __name__ == "__main__":
    sys.exit(main())
