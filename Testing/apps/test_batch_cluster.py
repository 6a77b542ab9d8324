"""``medfusion batch`` on a real third-party-style cluster: ``dask scheduler`` and two ``dask worker`` processes on
127.0.0.1 (random ports, one thread each, no dashboard). One worker is killed mid-run; every row still completes;
the rerun redoes nothing and is quick; the embedded ``--workers 2`` run writes byte-identical images."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("distributed")

from MedFusionLib.apps import cli
from MedFusionLib.samples.cohort import write_cohort

pytestmark = pytest.mark.slow
ROWS, VOLUMES = 88, 2  # the 90-row batch


def dask_command() -> str:
    found = Path(sys.executable).parent / "dask"
    return str(found) if found.exists() else (shutil.which("dask") or pytest.skip("no dask command"))


def stop(process: subprocess.Popen) -> None:
    """Kill a process group we started (the dask command and the worker process its nanny spawned)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A scheduler and two single-threaded workers; torch at one thread; everything killed at the end."""
    from distributed import Client

    folder = tmp_path_factory.mktemp("cluster")
    env = {**os.environ, "MEDFUSION_THREADS": "1"}
    dask, started = dask_command(), []

    def start(*args: str) -> subprocess.Popen:
        log = open(folder / f"{args[0]}-{len(started)}.log", "w")
        process = subprocess.Popen([dask, *args], cwd=folder, env=env, stdout=log, stderr=log, start_new_session=True)
        started.append(process)
        return process

    try:
        scheduler_file = folder / "scheduler.json"
        start(
            "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard", "--scheduler-file", str(scheduler_file)
        )
        deadline = time.monotonic() + 120
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        address = json.loads(scheduler_file.read_text(encoding="utf-8"))["address"]
        workers = [
            start("worker", address, "--nthreads", "1", "--nworkers", "1", "--no-dashboard", "--host", "127.0.0.1")
            for _ in range(2)
        ]
        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=120)
        yield {"address": address, "workers": workers}
    finally:
        for process in reversed(started):
            stop(process)


def batch(*args, env_threads: bool = True) -> tuple[subprocess.CompletedProcess, float]:
    env = {**os.environ, "MEDFUSION_THREADS": "1"} if env_threads else None
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "MedFusionLib", "batch", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    return done, time.monotonic() - started


def images(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file() and p.suffix != ".csv"}


def test_cluster_run_survives_a_killed_worker_resumes_and_matches_embedded(cluster, tmp_path):
    manifest = write_cohort(tmp_path / "in", rows=ROWS, size=192, volumes=VOLUMES, volume_size=24)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "MedFusionLib", "batch", manifest, out, "--scheduler", cluster["address"]]
    started = time.monotonic()
    run = subprocess.Popen(
        list(map(str, command)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "MEDFUSION_THREADS": "1"},
    )
    try:
        deadline = time.monotonic() + 300
        while len(list((out / ".medfusion").glob("*.json"))) < 6 and run.poll() is None:
            assert time.monotonic() < deadline, "no rows done in 300 s"
            time.sleep(0.05)
        assert run.poll() is None, "the batch ended before a worker could be killed"
        stop(cluster["workers"][0])  # SIGKILL: the worker and its nanny vanish mid-run
        stdout, stderr = run.communicate(timeout=600)
    finally:
        if run.poll() is None:
            run.kill()
    first = time.monotonic() - started
    assert run.returncode == 0, stderr[-2000:]
    assert f"{ROWS + VOLUMES}/{ROWS + VOLUMES} rows fused" in stdout
    records = sorted((out / ".medfusion").glob("*.json"))
    assert (
        len(records) == ROWS + VOLUMES
        and len((out / "metrics.csv").read_text(encoding="utf-8").splitlines()) == ROWS + VOLUMES + 1
    )
    record_times = {p.name: p.stat().st_mtime_ns for p in records}

    again, second = batch(manifest, out, "--scheduler", cluster["address"])
    assert again.returncode == 0 and f"({ROWS + VOLUMES} already done, 0 failed)" in again.stdout
    assert {p.name: p.stat().st_mtime_ns for p in records} == record_times  # nothing redone
    assert second <= 0.3 * first, (first, second)

    embedded, third = batch(manifest, tmp_path / "embedded", "--workers", "2")
    print(f"cluster run with a kill {first:.1f} s, rerun {second:.1f} s, embedded run {third:.1f} s")
    assert embedded.returncode == 0, embedded.stderr[-2000:]
    cluster_images = images(out)
    assert len(cluster_images) == ROWS + VOLUMES
    assert images(tmp_path / "embedded") == cluster_images  # byte-identical PNGs and NIfTI volumes


def test_unreachable_scheduler_is_a_one_line_error(capsys, tmp_path):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    manifest = write_cohort(tmp_path / "in", rows=1, size=32)
    code = cli.main(["batch", str(manifest), str(tmp_path / "out"), "--scheduler", f"tcp://127.0.0.1:{port}"])
    err = capsys.readouterr().err
    assert (
        code == 2
        and err.strip() == f"medfusion: error: cannot reach scheduler tcp://127.0.0.1:{port}: Connection refused"
    )


def test_workers_and_scheduler_together_are_refused(capsys, tmp_path):
    manifest = write_cohort(tmp_path / "in", rows=1, size=32)
    code = cli.main(
        ["batch", str(manifest), str(tmp_path / "out"), "--scheduler", "tcp://127.0.0.1:1", "--workers", "2"]
    )
    assert code == 2 and "leave it out with --scheduler" in capsys.readouterr().err


def test_duplicate_and_unsafe_names_in_process(capsys, tmp_path):
    folder = tmp_path / "in"
    write_cohort(folder, rows=2, size=32)
    manifest = folder / "names.csv"
    manifest.write_text(
        "a,b,name\nslice000_a.png,slice000_b.png,x\nslice001_a.png,slice001_b.png,x\n"
        "slice000_a.png,slice000_b.png,../outside\n"
    )
    out = tmp_path / "out"
    code = cli.main(["batch", str(manifest), str(out), "--workers", "0", "--method", "mean"])
    captured = capsys.readouterr()
    assert code == 1  # the unsafe name fails its row
    assert "row 2: name 'x' is also row 1's; written as 'x-2'" in captured.err
    assert "row 3 (../outside) failed: name '../outside' contains a path separator" in captured.err
    assert (out / "x.png").read_bytes() != (out / "x-2.png").read_bytes()
    assert not (tmp_path / "outside.png").exists()
    assert [line.split(",")[0] for line in (out / "metrics.csv").read_text(encoding="utf-8").splitlines()] == [
        "case",
        "x",
        "x-2",
    ]
