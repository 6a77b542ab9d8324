"""Every command tells the same truth: help for a bare ``medfusion``, ``--modality`` as documented, decisions
and progress on stderr, one-line errors for user mistakes, truthful interruption, one scoring rule."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from MedFusionLib.apps import cli
from MedFusionLib.samples.phantom import make_phantom_pair


def run(capsys, *args) -> tuple[int, str, str]:
    try:
        code = cli.main([str(a) for a in args])
    except SystemExit as stop:  # argparse's usage errors exit from inside parse_args
        code = int(stop.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str) -> str:
    assert "Traceback" not in err and "internal error" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("medfusion: error:")]
    assert len(errors) == 1, err
    return errors[0]


@pytest.fixture(autouse=True)
def no_progress_lines(monkeypatch):
    monkeypatch.setenv("MEDFUSION_PROGRESS_SECONDS", "1e9")


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("pair")
    phantom = make_phantom_pair()
    sitk.WriteImage(phantom.ct, str(folder / "ct.nii.gz"))
    sitk.WriteImage(phantom.mr, str(folder / "mr.nii.gz"))
    return {"ct": folder / "ct.nii.gz", "mr": folder / "mr.nii.gz", "folder": folder}


def test_bare_medfusion_prints_help(capsys):
    code, out, err = run(capsys)
    assert code == 0 and out.startswith("usage: medfusion") and "fuse" in out and err == ""


def test_modality_takes_one_value_per_input_in_one_flag_or_repeated(capsys, pair, tmp_path):
    common = ["fuse", pair["ct"], pair["mr"], "--method", "mean", "--register", "none"]
    code, _, err = run(capsys, *common, "-o", tmp_path / "a.nii.gz", "--modality", "ct", "mr")
    assert code == 0, err
    code, _, err2 = run(capsys, *common, "-o", tmp_path / "b.nii.gz", "--modality", "ct", "--modality", "mr")
    assert code == 0, err2
    a = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "a.nii.gz")))
    b = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "b.nii.gz")))
    assert np.array_equal(a, b)
    code, _, _ = run(capsys, *common, "-o", tmp_path / "d.nii.gz", "--modality", "mr", "mr")
    d = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "d.nii.gz")))
    assert code == 0 and not np.array_equal(a, d)  # the first value reached the first input (ct window, not mr)
    code, _, err = run(capsys, *common, "-o", tmp_path / "c.nii.gz", "--modality", "ct", "xray")
    assert code == 2 and "invalid choice: 'xray'" in one_error_line(err)


def test_decisions_and_results_are_separate(capsys, pair, tmp_path):
    code, out, err = run(capsys, "fuse", pair["ct"], pair["mr"], "-o", tmp_path / "f.nii.gz", "--method", "mean")
    assert code == 0
    assert not [line for line in out.splitlines() if line.startswith("medfusion:")]
    assert any("modality ct" in line for line in err.splitlines())
