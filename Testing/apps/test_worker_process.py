"""The worker process behind the Slicer module (and the web app): Cancel ends the whole process tree even when
a launcher sits in between (as ``PythonSlicer`` does), ``close()`` leaves no job folder (patient data), the
output reader survives undecodable bytes, and volume-mode fusion honours Cancel within about 2 s."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import numpy as np
import psutil
import pytest

from MedFusionLib.apps.worker import WorkerProcess
from MedFusionLib.core.errors import OperationCancelled
from MedFusionLib.pipeline.job import write_job
from MedFusionLib.samples.phantom import make_phantom_pair

# Like PythonSlicer: a launcher process that starts the real interpreter as its child and waits for it.
LAUNCHER = textwrap.dedent("""
    import subprocess, sys
    sys.stdout.buffer.write(PREFIX)
    sys.stdout.flush()
    sys.exit(subprocess.Popen(sys.argv[1:]).wait())
""")


def launch_through_launcher(prefix: bytes = b""):
    """A ``launch(args, environment)`` that goes through a launcher, decoding strictly as Slicer's
    ``launchConsoleProcess`` does (``universal_newlines=True``, no ``errors=``)."""

    def launch(args, environment):
        import os

        code = LAUNCHER.replace("PREFIX", repr(prefix))
        return subprocess.Popen(
            [sys.executable, "-c", code] + list(args),
            env=dict(os.environ, **environment),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            universal_newlines=True,
            encoding="utf-8",
        )

    return launch


def job_folder(tmp_path, **options):
    pair = make_phantom_pair(7)
    folder = tmp_path / "MedFusion-job"
    write_job(folder, [pair.ct, pair.mr], **options)
    return folder


def wait_for_progress(worker: WorkerProcess, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker.poll():
            return
        assert not worker.finished, worker.final
        time.sleep(0.05)
    raise AssertionError("the worker reported no progress")


def test_kill_ends_the_whole_process_tree_and_close_removes_the_job_folder(tmp_path):
    folder = job_folder(tmp_path, method="mean", mode="volume", registration="deformable")
    worker = WorkerProcess(folder, launch=launch_through_launcher())
    wait_for_progress(worker)
    launcher = psutil.Process(worker.process.pid)
    job_processes = [launcher] + launcher.children(recursive=True)
    assert len(job_processes) >= 2, "the launcher should have started the worker"
    worker.kill()
    gone, alive = psutil.wait_procs(job_processes, timeout=5)
    assert not alive, f"processes of the job survived Cancel: {[p.pid for p in alive]}"
    worker.close()
    assert not folder.exists(), "the job folder (copies of the inputs) survived"
    assert worker.wait(10)["cancelled"]


def test_close_kills_a_worker_orphaned_by_its_launcher(tmp_path):
    folder = job_folder(tmp_path, method="mean", mode="volume", registration="deformable")
    worker = WorkerProcess(folder, launch=launch_through_launcher())
    wait_for_progress(worker)
    launcher = psutil.Process(worker.process.pid)
    child = launcher.children(recursive=True)[0]
    launcher.kill()  # the launcher dies (crash, or a plain Popen.kill): the worker is orphaned
    worker.process.wait(10)
    assert child.is_running() and child.status() != psutil.STATUS_ZOMBIE
    worker.close()
    assert psutil.wait_procs([child], timeout=5)[1] == [], "the orphaned worker survived cleanup"
    assert not folder.exists()


def test_reader_survives_undecodable_output(tmp_path):
    folder = job_folder(tmp_path, method="mean", mode="slice", registration="none", computeMetrics=False)
    worker = WorkerProcess(folder, launch=launch_through_launcher(prefix=b"\xff\xfe not utf-8 \xc3\x28\n"))
    final = worker.wait(timeout=60)
    assert final.get("done"), final
    assert any("not utf-8" in line for line in worker.log)
    worker.close()


def test_volume_mode_fusion_honours_cancel_within_two_seconds():
    """max-residual-cnn's volume mode (8 tiles of 96^3 with halos) is one method call: it must still stop. Cancel is
    asked once the work is under way (at the cancel callback's 5th poll, whatever the machine's speed), and the
    call must end within 2 s of that."""
    from MedFusionLib.fusion.engine import fuse_arrays

    rng = np.random.default_rng(0)
    sources = [rng.random((160, 160, 160), dtype=np.float32) for _ in range(2)]
    fuse_arrays([s[:8, :8, :8] for s in sources], "max-residual-cnn", "volume")  # load the network first
    polls: list[int] = []
    asked_at: list[float] = []

    def cancel() -> bool:
        polls.append(1)
        if len(polls) >= 5 and not asked_at:
            asked_at.append(time.monotonic())
        return bool(asked_at)

    with pytest.raises(OperationCancelled):
        fuse_arrays(sources, "max-residual-cnn", "volume", cancel=cancel)
    stopped = time.monotonic()
    assert asked_at and stopped - asked_at[0] <= 2.0, f"stopped {stopped - asked_at[0]:.1f} s after Cancel"


@pytest.mark.parametrize(
    "stage, options",
    [
        ("rigid, level", dict(registration="rigid", mode="slice")),
        ("deformable", dict(registration="deformable", mode="slice")),
        ("slice", dict(registration="none", mode="slice")),
        ("fusing volume", dict(registration="none", mode="volume")),
        ("metrics", dict(registration="none", mode="slice")),
    ],
)
def test_every_long_stage_honours_cancel_within_two_seconds(stage, options):
    """Cancel asked at the first progress message of a stage (what the worker sees through its cancel file)
    stops the job within 2 s: registration iterations, slice batches, a volume-mode call, the metrics."""
    from MedFusionLib.pipeline.job import compute

    pair = make_phantom_pair(7)
    asked_at = []

    def progress(fraction: float, message: str) -> None:
        if not asked_at and stage in message:
            asked_at.append(time.monotonic())

    with pytest.raises(OperationCancelled):
        compute(
            [pair.ct, pair.mr],
            method="max-residual-cnn",
            computeMetrics=True,
            progress=progress,
            cancel=lambda: bool(asked_at),
            **options,
        )
    stopped = time.monotonic()
    assert asked_at, f"no progress message of stage {stage!r}"
    assert stopped - asked_at[0] <= 2.0, f"{stage}: stopped {stopped - asked_at[0]:.1f} s after Cancel"
