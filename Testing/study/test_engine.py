"""The Dask engine on a real LocalCluster (2 worker processes, 1 thread each, 127.0.0.1): a failing row, resume,
a worker killed mid-run, and outputs byte-identical to the in-process run."""

from __future__ import annotations

import csv
import os
import signal
import time
from pathlib import Path

import pytest

pytest.importorskip("distributed")

from MedFusionLib.core.options import FusionOptions
from MedFusionLib.samples.cohort import write_cohort
from MedFusionLib.study.manifest import read_manifest
from MedFusionLib.study.resume import record_path
from MedFusionLib.study.runner import plan_cases, run_batch

pytestmark = pytest.mark.slow
OPTIONS = FusionOptions()  # the default (deep) method: torch runs in the workers


@pytest.fixture(scope="module")
def client():
    """One embedded cluster for the module (its workers' threads chosen by the engine); always shut down."""
    from MedFusionLib.study.engine import cohort_client

    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MEDFUSION_THREADS", raising=False)
        with cohort_client(workers=2) as dask_client:
            dask_client.wait_for_workers(2, timeout=120)
            yield dask_client


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> Path:
    return write_cohort(tmp_path_factory.mktemp("cohort"), rows=24, size=128, volumes=2, volume_size=16)


def run_on(client, manifest: Path, out: Path, on_record=None, overwrite: bool = False):
    from MedFusionLib.study.engine import run_plan_on

    out.mkdir(parents=True, exist_ok=True)
    plan = plan_cases(read_manifest(manifest), out, OPTIONS, overwrite)
    return plan, run_plan_on(client, plan, out, OPTIONS, on_record=on_record)


def images(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file() and p.suffix != ".csv"}


def test_failing_row_others_go_on_then_resume_redoes_only_it(client, cohort, tmp_path):
    manifest = cohort.parent / "with_bad.csv"
    manifest.write_text(
        cohort.read_text(encoding="utf-8") + "slice000_a.png,missing.png,broken\nslice000_a.png,slice000_b.png,../x\n"
    )
    out = tmp_path / "out"
    _, outcome = run_on(client, manifest, out)
    assert len(outcome.succeeded) == 26
    failed = {r.name: r.error for r in outcome.failed}
    assert set(failed) == {"broken", "../x"} and "missing.png" in failed["broken"] and "separator" in failed["../x"]
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert [r["case"] for r in rows] == [r.name for r in outcome.succeeded]

    seen = []
    plan, again = run_on(client, manifest, out, on_record=lambda r, n: seen.append(r.name))
    assert len(plan.done) == 26 and sorted(seen) == ["../x", "broken"]  # only the failed rows were submitted
    assert [r.name for r in again.succeeded] == [r.name for r in outcome.succeeded]


def test_worker_killed_mid_run_its_rows_rerun_elsewhere(client, cohort, tmp_path):
    import json

    out = tmp_path / "out"
    killed = {}

    def kill_a_busy_worker(record, total):
        if killed or len(list((out / ".medfusion").glob("*.json"))) < 3:
            return
        pid = json.loads(record_path(out, record.name).read_text(encoding="utf-8"))[
            "pid"
        ]  # a worker that has work in hand
        os.kill(pid, signal.SIGKILL)
        killed["pid"], killed["at"] = pid, time.monotonic()

    pids_before = set(client.run(os.getpid).values())
    _, outcome = run_on(client, cohort, out, on_record=kill_a_busy_worker)
    assert killed and killed["pid"] in pids_before
    assert len(outcome.succeeded) == 26 and not outcome.failed  # every row done despite the lost worker
    assert all(record_path(out, f"slice{i:03d}").exists() for i in range(24))
    assert not list(out.glob(".*.part*"))  # no half-written output left behind
    rescheduled = client.run_on_scheduler(
        lambda dask_scheduler: [
            t[0] for t in dask_scheduler.transition_log if t[1:3] == ("processing", "released") and "worker" in t[4]
        ]
    )
    assert any(key.startswith("medfusion-") for key in rescheduled)  # rows the lost worker held were run again
    client.wait_for_workers(2, timeout=120)  # the nanny restarts the killed worker for the next tests
    assert killed["pid"] not in set(client.run(os.getpid).values())


def test_cluster_outputs_equal_in_process_outputs(client, cohort, tmp_path, monkeypatch):
    from MedFusionLib.study.engine import usable_cpus

    per_worker = set(client.run(lambda: os.environ.get("MEDFUSION_THREADS")).values())
    assert per_worker == {str(max(1, usable_cpus() // 2))}  # 2 workers share the CPUs, no oversubscription
    monkeypatch.setenv("MEDFUSION_THREADS", per_worker.pop())  # the in-process run at the same thread count
    _, on_cluster = run_on(client, cohort, tmp_path / "cluster")
    in_process = run_batch(cohort, tmp_path / "local", OPTIONS)
    assert len(on_cluster.succeeded) == len(in_process.succeeded) == 26
    cluster_images, local_images = images(tmp_path / "cluster"), images(tmp_path / "local")
    assert len(cluster_images) == 26 and {n for n in cluster_images if n.endswith(".nii.gz")} == {
        "vol024.nii.gz",
        "vol025.nii.gz",
    }
    assert cluster_images == local_images  # byte-identical PNGs and NIfTI volumes


def test_task_threads_follow_the_environment(monkeypatch):
    from MedFusionLib.study.engine import _task_threads, usable_cpus

    monkeypatch.setenv("MEDFUSION_THREADS", "3")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert _task_threads() == 3  # the user's choice wins
    monkeypatch.delenv("MEDFUSION_THREADS")
    assert _task_threads() == 1  # what a Dask nanny sets for its worker
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert _task_threads() == usable_cpus()  # not on a worker: one task thread
