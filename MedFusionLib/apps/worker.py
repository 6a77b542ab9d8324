"""The Slicer module's worker process: ``PythonSlicer -m MedFusionLib.apps.worker FOLDER`` runs the job in
FOLDER (format: :mod:`MedFusionLib.pipeline.job`) so that Slicer's GUI stays responsive, and
:class:`WorkerProcess` starts and polls it without blocking. Imports neither slicer, vtk nor Qt.
"""

from __future__ import annotations

import sys
from pathlib import Path

from MedFusionLib.pipeline.job import CANCEL, parse_line, run_job


class WorkerProcess:
    """A running worker, polled without blocking (the Slicer module polls it from a QTimer).

    ``launch(args, environment)`` starts the process and returns a ``subprocess.Popen``-like object whose
    stdout yields text lines (stderr merged); by default ``subprocess.Popen``. In Slicer the module passes
    ``slicer.util.launchConsoleProcess``. ``pythonPath`` is prepended to ``PYTHONPATH`` so that the worker
    finds MedFusionLib.
    """

    def __init__(self, folder, python: str | None = None, pythonPath: str | None = None, launch=None):
        import os
        import queue
        import threading

        self.folder = Path(folder)
        self.final: dict | None = None
        self.log: list = []
        self._last: dict | None = None
        self._cancelled = False
        self._lines = queue.Queue()
        self._empty = queue.Empty
        environment = {}
        if pythonPath:
            environment["PYTHONPATH"] = os.pathsep.join(p for p in (pythonPath, os.environ.get("PYTHONPATH", "")) if p)
        args = [python or sys.executable, "-m", "MedFusionLib.apps.worker", str(self.folder)]
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
                    self._last = {
                        "error": f"the MedFusion worker stopped unexpectedly (exit code {self.process.returncode})"
                    }
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
        sys.stderr.write("usage: python -m MedFusionLib.apps.worker JOB_FOLDER\n")
        return 64
    return run_job(argv[0])


if __name__ == "__main__":
    sys.exit(main())
