"""Resume records (in this process, no Dask): a rerun skips complete rows and redoes anything half-done."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest

from MedFusionLib.core.options import FusionOptions
from MedFusionLib.fusion.registry import default_method_name as default_method
from MedFusionLib.samples.cohort import write_cohort
from MedFusionLib.study.resume import completed_record, record_path, row_key
from MedFusionLib.study.runner import run_batch

OPTIONS = FusionOptions(method="mean")


@pytest.fixture
def cohort(tmp_path) -> Path:
    return write_cohort(tmp_path / "in", rows=4, size=48, volumes=1, volume_size=12)


def record_times(out_dir: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in (out_dir / ".medfusion").glob("*.json")}


def test_rerun_skips_complete_rows_and_overwrite_redoes_them(cohort, tmp_path):
    out = tmp_path / "out"
    first = run_batch(cohort, out, OPTIONS)
    assert len(first.succeeded) == 5 and not any(r.resumed for r in first.records)
    record = json.loads(record_path(out, "slice000").read_text(encoding="utf-8"))
    assert record["output"] == "slice000.png" and record["metrics"]["QABF"] > 0
    before = record_times(out)

    calls = []
    second = run_batch(cohort, out, OPTIONS, on_record=lambda r, n: calls.append(r))
    assert calls == [] and all(r.resumed for r in second.records)
    assert record_times(out) == before
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert [r["case"] for r in rows] == [r.name for r in first.records]  # metrics come back from the records
    assert rows[0]["QABF"] == f"{first.records[0].metrics['QABF']:.6g}"

    third = run_batch(cohort, out, OPTIONS, overwrite=True)
    assert not any(r.resumed for r in third.records) and len(third.succeeded) == 5
    assert all(record_times(out)[name] > before[name] for name in before)


def test_half_written_or_changed_rows_are_redone(cohort, tmp_path):
    out = tmp_path / "out"
    run_batch(cohort, out, OPTIONS)
    (out / "slice001.png").write_bytes((out / "slice001.png").read_bytes()[:100])  # truncated output
    (out / "slice002.png").unlink()  # output gone, record left
    record_path(out, "slice003").unlink()  # output written, record never written (crash in between)
    (out / ".medfusion" / ".vol004.json.123.part.json").write_text("{")  # a stray temporary file is ignored
    again = run_batch(cohort, out, OPTIONS)
    assert [r.name for r in again.records if not r.resumed] == ["slice001", "slice002", "slice003"]
    assert all(r.ok for r in again.records)

    source = Path(cohort.parent / "vol004_a.nii.gz")  # an input changed after its row was done
    os.utime(source, ns=(source.stat().st_atime_ns, source.stat().st_mtime_ns + 10**9))
    assert [r.name for r in run_batch(cohort, out, OPTIONS).records if not r.resumed] == ["vol004"]
    assert not any(r.resumed for r in run_batch(cohort, out, FusionOptions(method="max")).records)


def test_key_depends_on_options_and_row_not_on_out_dir(cohort, tmp_path):
    from MedFusionLib.study.manifest import read_manifest

    case = read_manifest(cohort)[0]
    assert row_key(case, OPTIONS) == row_key(case, FusionOptions(method="mean"))
    assert row_key(case, OPTIONS) != row_key(case, FusionOptions(method="mean", axis=1))
    assert row_key(case, FusionOptions()) == row_key(case, FusionOptions(method=default_method()))  # None = default
    assert completed_record(tmp_path / "nowhere", case, row_key(case, OPTIONS)) is None


def test_failing_row_is_reported_rerun_and_kept_out_of_metrics(cohort, tmp_path):
    manifest = cohort.parent / "with_bad.csv"
    manifest.write_text(cohort.read_text(encoding="utf-8") + "slice000_a.png,missing.png,broken\n")
    out = tmp_path / "out"
    outcome = run_batch(manifest, out, OPTIONS)
    assert [r.name for r in outcome.failed] == ["broken"] and "missing.png" in outcome.failed[0].error
    assert not record_path(out, "broken").exists()
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert len(rows) == 5 and "broken" not in {r["case"] for r in rows}
    again = run_batch(manifest, out, OPTIONS)
    assert [r.name for r in again.records if not r.resumed] == ["broken"]  # failed rows are tried again


def test_unexpected_error_fails_its_row_only(cohort, tmp_path, monkeypatch):
    import MedFusionLib.pipeline.files as files

    real = files.fuse_files

    def broken_for_one_row(inputs, output, options, **kwargs):
        if Path(output).name.startswith("slice002"):
            raise RuntimeError("simulated bug\nsecond line")
        return real(inputs, output, options, **kwargs)

    monkeypatch.setattr(files, "fuse_files", broken_for_one_row)
    outcome = run_batch(cohort, tmp_path / "out", OPTIONS)
    assert [(r.name, r.error) for r in outcome.failed] == [("slice002", "internal error: RuntimeError: simulated bug")]
    assert len(outcome.succeeded) == 4 and not record_path(tmp_path / "out", "slice002").exists()


def test_copied_out_dir_still_resumes_but_same_size_replacement_is_redone(cohort, tmp_path):
    import shutil

    out = tmp_path / "out"
    run_batch(cohort, out, OPTIONS)
    copy = tmp_path / "copy"
    shutil.copytree(out, copy, copy_function=shutil.copyfile)  # new modification times: checked by SHA-256
    assert all(r.resumed for r in run_batch(cohort, copy, OPTIONS).records)

    target = copy / "slice001.png"
    data = bytearray(target.read_bytes())
    data[-20:-12] = bytes(8)  # same size, different bytes (inside the PNG's last chunk)
    target.write_bytes(bytes(data))
    assert target.stat().st_size == len(data)
    assert [r.name for r in run_batch(cohort, copy, OPTIONS).records if not r.resumed] == ["slice001"]


def test_finishing_a_run_removes_a_killed_workers_temporary_files(tmp_path):
    """SIGKILL leaves an atomic write's temporary file behind; the run's end sweeps it (and only it)."""
    from MedFusionLib.study.resume import RECORD_DIR
    from MedFusionLib.study.runner import Plan, finish

    records = tmp_path / RECORD_DIR
    records.mkdir()
    stale = [records / ".slice002.json.8bc2gzvt.part.json", tmp_path / ".slice002.nii.gz.k3j2h1aa.part.nii.gz"]
    (tmp_path / ".case.dcm.x1y2z3.part").mkdir()  # a DICOM series folder being written
    kept = [records / "slice001.json", tmp_path / "slice001.nii.gz", tmp_path / ".hidden-notes.txt"]
    for path in stale + kept:
        path.write_text("x", encoding="utf-8")
    finish(Plan([], {}, []), [], tmp_path)
    assert [p for p in stale if p.exists()] == [] and not (tmp_path / ".case.dcm.x1y2z3.part").exists()
    assert all(p.exists() for p in kept) and (tmp_path / "metrics.csv").exists()
