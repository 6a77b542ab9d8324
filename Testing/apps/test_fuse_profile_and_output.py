"""``medfusion fuse``'s speed-related contract: ``--profile`` prints the stages, the grey output is uint8 by
default, and a deep method fuses without importing scipy.ndimage or torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import SimpleITK as sitk
from synthetic import phantom_pair_files

from MedFusionLib.apps import cli

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> tuple[Path, Path]:
    return phantom_pair_files(tmp_path_factory.mktemp("pair"))


def test_profile_prints_one_line_of_stage_times(pair, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MEDFUSION_PROGRESS_SECONDS", "1e9")
    assert cli.main(["fuse", str(pair[0]), str(pair[1]), "-o", str(tmp_path / "f.nii.gz"), "--profile"]) == 0
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("medfusion: profile:")]
    assert len(lines) == 1
    stages = dict(part.rsplit(" ", 2)[:2] for part in lines[0].removeprefix("medfusion: profile: ").split(", "))
    assert {"read", "prepare", "fuse", "write"} <= set(stages)
    assert all(float(seconds) >= 0 for seconds in stages.values())


def test_grey_volume_output_is_uint8_by_default(pair, tmp_path, capsys):
    out = tmp_path / "f.nii.gz"
    assert cli.main(["fuse", str(pair[0]), str(pair[1]), "-o", str(out), "--method", "max"]) == 0
    assert sitk.ReadImage(str(out)).GetPixelID() == sitk.sitkUInt8


def test_deep_method_fuses_without_scipy_ndimage_or_torch(pair, tmp_path):
    argv = ["fuse", str(pair[0]), str(pair[1]), "-o", str(tmp_path / "f.nii.gz")]
    script = (
        "import sys\nfrom MedFusionLib.apps.cli import main\n"
        f"assert main({argv!r}) == 0\n"
        "print(sorted(m for m in sys.modules if m.startswith(('scipy.ndimage', 'torch'))))\n"
    )
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip().splitlines()[-1] == "[]"
