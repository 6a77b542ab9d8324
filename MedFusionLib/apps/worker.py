"""The Slicer module's worker process: ``PythonSlicer -m MedFusionLib.apps.worker FOLDER`` runs the job in
FOLDER (format: :mod:`MedFusionLib.pipeline.job`) so that Slicer's GUI stays responsive, and
:class:`WorkerProcess` starts and polls it without blocking. Imports neither slicer, vtk nor Qt.
"""

from __future__ import annotations

import sys
from pathlib import Path

from MedFusionLib.pipeline.job import CANCEL, parse_line, run_job

PID_FILE = "worker.pid"


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
        self._lines: queue.Queue[str] = queue.Queue()
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
        return subprocess.Popen(
            args,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
            errors="replace",
        )

    def _read(self):
        """Queue the worker's output lines; always ends with None, whatever bytes the process writes.

        Reads bytes where the stream has them (``launchConsoleProcess`` decodes strictly, and one undecodable
        line from a library would otherwise kill this thread and leave the panel waiting forever).
        """
        stream = self.process.stdout
        raw = getattr(stream, "buffer", None)
        try:
            if raw is not None:
                for line in iter(raw.readline, b""):
                    self._lines.put(line.decode("utf-8", errors="replace"))
            else:
                for line in iter(stream.readline, ""):
                    self._lines.put(line if isinstance(line, str) else line.decode("utf-8", errors="replace"))
        except (OSError, ValueError) as err:  # the pipe was closed under us (process killed)
            self._lines.put(f"output reader stopped: {err}\n")
        finally:
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
        if self.folder.is_dir():
            (self.folder / CANCEL).touch()

    def kill(self) -> None:
        """End the whole process tree now. ``PythonSlicer`` is a launcher that starts a second Python process,
        so killing the launcher alone would leave the worker computing."""
        self._cancelled = True
        if self.process.poll() is None:  # once reaped, the pid may already belong to another process
            kill_process_tree(self.process.pid)
        worker = self.worker_pid()
        if worker is not None:  # orphaned by a launcher that already exited
            kill_process_tree(worker)
        import subprocess

        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:  # a process that ignores SIGKILL (stuck in the kernel): leave it
            pass

    def worker_pid(self) -> int | None:
        """The pid the worker wrote into its folder, if that process still runs this job."""
        import psutil

        try:
            pid = int((self.folder / PID_FILE).read_text())
            if str(self.folder) in " ".join(psutil.Process(pid).cmdline()):
                return pid
        except (OSError, ValueError, psutil.Error):
            pass
        return None

    def close(self) -> None:
        """Kill the process tree (if it still runs) and delete the job folder: it holds copies of the input
        volumes, i.e. patient data, which must not stay in the temp folder after a cancel, crash or cleanup."""
        import shutil

        if self.process.poll() is None or self.worker_pid() is not None:
            self.kill()
        shutil.rmtree(self.folder, ignore_errors=True)

    def wait(self, timeout: float = 600.0, interval: float = 0.05) -> dict | None:
        """Poll until finished (for scripts and tests); returns the final message (None: the worker died without one)."""
        import time

        deadline = time.monotonic() + timeout
        while not self.finished:
            self.poll()
            if time.monotonic() > deadline:
                self.kill()
                raise TimeoutError("the MedFusion worker did not finish in time")
            time.sleep(interval)
        return self.final


def kill_process_tree(pid: int, timeout: float = 5.0) -> None:
    """Kill ``pid`` and every process below it (children first, found before anything is killed)."""
    import psutil

    try:
        root = psutil.Process(pid)
        processes = root.children(recursive=True) + [root]
    except psutil.NoSuchProcess:
        return
    for process in processes:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(processes, timeout=timeout)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        sys.stderr.write("usage: python -m MedFusionLib.apps.worker JOB_FOLDER\n")
        return 64
    import os

    folder = Path(argv[0])
    if folder.is_dir():
        (folder / PID_FILE).write_text(str(os.getpid()))  # lets the GUI find this process if orphaned
    return run_job(folder)


if __name__ == "__main__":
    sys.exit(main())
