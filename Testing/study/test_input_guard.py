"""Inputs are never overwritten by a cohort or comparison run: not by a row's own output, not by another row's,
not by the run's summary files (issue 14: fix the class, not the example)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from MedFusionLib.apps import cli
from MedFusionLib.core.errors import OutputError
from MedFusionLib.core.imageio import InputGuard
from MedFusionLib.core.options import FusionOptions
from MedFusionLib.study.cohort import run_study
from MedFusionLib.study.runner import run_batch


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    y, x = np.mgrid[-1:1:48j, -1:1:48j]
    a = (150 * (x**2 + y**2 < 0.5) + 30 * np.sin(8 * x) + 30).clip(0, 255).astype(np.uint8)
    b = (220 * np.exp(-(x**2 + y**2) / 0.1)).astype(np.uint8)
    for name, image in (("ct.png", a), ("mr.png", b), ("x.png", a[::-1])):
        sitk.WriteImage(sitk.GetImageFromArray(image), str(tmp_path / name))
    return tmp_path


def test_guard_sees_paths_links_and_folders(tmp_path):
    (tmp_path / "a.png").write_bytes(b"a")
    (tmp_path / "series").mkdir()
    (tmp_path / "hard.png").hardlink_to(tmp_path / "a.png")
    guard = InputGuard([tmp_path / "a.png", tmp_path / "series"])
    assert guard.clash(tmp_path / "sub" / ".." / "a.png") == tmp_path / "a.png"
    assert guard.clash(tmp_path / "hard.png") == tmp_path / "a.png"
    assert guard.clash(tmp_path / "series" / "fused.nii.gz") == tmp_path / "series"
    assert guard.clash(tmp_path / "other.png") is None
    with pytest.raises(OutputError, match="would overwrite the input"):
        guard.check(tmp_path / "a.png")


def test_batch_row_cannot_overwrite_another_rows_input(folder):
    # row 1 would write OUTDIR/ct.png, which is row 2's input (before: silently replaced, row 2 then fused it)
    manifest = folder / "m.csv"
    manifest.write_text("name,a,b\nct,x.png,mr.png\nother,ct.png,mr.png\n")
    before = {p.name: digest(p) for p in folder.glob("*.png")}
    outcome = run_batch(manifest, folder, FusionOptions(method="max"))
    assert [r.ok for r in outcome.records] == [False, True]
    assert "would overwrite the input" in outcome.records[0].error and "\n" not in outcome.records[0].error
    assert {name: digest(folder / name) for name in before} == before


def test_batch_refuses_when_its_metrics_csv_is_an_input(folder):
    manifest = folder / "m.csv"
    manifest.write_text("name,a,b\none,ct.png,metrics.csv\n")
    (folder / "metrics.csv").write_text("an input that happens to be named metrics.csv\n")
    with pytest.raises(OutputError, match="metrics.csv: output would overwrite the input"):
        run_batch(manifest, folder, FusionOptions(method="max"))
    assert (folder / "metrics.csv").read_text(encoding="utf-8").startswith("an input")


def test_study_rows_cannot_overwrite_inputs(folder):
    (folder / "max").mkdir()
    sitk.WriteImage(sitk.ReadImage(str(folder / "ct.png")), str(folder / "max" / "one.png"))
    manifest = folder / "m.csv"
    manifest.write_text("name,a,b\none,max/one.png,mr.png\ntwo,ct.png,mr.png\n")
    kept = digest(folder / "max" / "one.png")
    outcome = run_study(manifest, folder, FusionOptions(), methods="max", report=False)
    errors = {record.name: record.error for _, record in outcome.records}
    assert "would overwrite the input" in errors["one"] and errors["two"] == ""
    assert digest(folder / "max" / "one.png") == kept


def test_compare_refuses_an_input_named_like_an_output(folder, capsys):
    (folder / "cmp").mkdir()
    for name in ("max.png", "montage.png"):
        (folder / "cmp" / name).write_bytes((folder / "ct.png").read_bytes())
    before = digest(folder / "cmp" / "max.png")
    code = cli.main(
        [
            "compare",
            str(folder / "cmp" / "max.png"),
            str(folder / "mr.png"),
            "-o",
            str(folder / "cmp"),
            "--methods",
            "max",
        ]
    )
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "would overwrite the input" in err[0]
    assert digest(folder / "cmp" / "max.png") == before and not (folder / "cmp" / "metrics.csv").exists()
