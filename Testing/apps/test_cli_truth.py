"""Every command tells the same truth: help for a bare ``medfusion``, ``--modality`` as documented, decisions
and progress on stderr, one-line errors for user mistakes, truthful interruption, one scoring rule."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from synthetic import sample_pair_files

from MedFusionLib.apps import cli


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


pytestmark = pytest.mark.usefixtures("quiet_progress")


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> dict[str, Path]:
    return sample_pair_files(tmp_path_factory.mktemp("pair"))


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


def _interrupt_after_first_output(command: list[str], first: Path, timeout: float = 180) -> tuple[int, str]:
    """Start ``medfusion`` in a process, send it SIGINT once ``first`` (a glob pattern's folder) holds a file."""
    process = subprocess.Popen(
        [sys.executable, "-m", "MedFusionLib", *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        encoding="utf-8",  # the progress bar draws with block characters, whatever the locale
        errors="replace",
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if first.is_dir() and any(first.iterdir()):
            break
        time.sleep(0.05)
    assert process.poll() is None, "the run ended before it could be interrupted"
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    return process.returncode, err


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> Path:
    """40 rows of one small pair (16 x 32 x 32): quick rows, a run long enough to interrupt."""
    folder = tmp_path_factory.mktemp("manifest")
    rng = np.random.default_rng(3)
    for name in ("a", "b"):
        volume = np.zeros((16, 32, 32), np.float32)
        volume[4:12, 8:24, 8:24] = rng.uniform(50, 200, (8, 16, 16))
        sitk.WriteImage(sitk.GetImageFromArray(volume), str(folder / f"{name}.nii.gz"))
    rows = ["a,b,name"] + [f"a.nii.gz,b.nii.gz,case{i:02d}" for i in range(40)]
    (folder / "cases.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return folder / "cases.csv"


def test_interrupted_batch_says_what_it_wrote_and_resumes(manifest, tmp_path):
    out = tmp_path / "out"
    command = ["batch", str(manifest), str(out), "--workers", "0", "--method", "mean", "--register", "none"]
    code, err = _interrupt_after_first_output(command, out / ".medfusion")
    lines = [line for line in err.splitlines() if line.startswith("medfusion: interrupted;")]
    assert code == 130 and len(lines) == 1, err[-2000:]
    fused = len(list((out / ".medfusion").glob("*.json")))
    assert fused >= 1 and "nothing was written" not in lines[0]
    assert f"{fused} new row" in lines[0] and "rerun the same command to resume" in lines[0], lines[0]
    assert not (out / "metrics.csv").exists()
    done = subprocess.run(
        [sys.executable, "-m", "MedFusionLib", *command],
        capture_output=True,
        encoding="utf-8",
        errors="replace",
        timeout=600,
    )
    assert done.returncode == 0 and f"({fused} already done, 0 failed)" in done.stdout, done.stdout + done.stderr


def test_interrupted_study_says_what_it_wrote(manifest, tmp_path):
    out = tmp_path / "study"
    command = ["study", str(manifest), str(out), "--methods", "mean", "--register", "none"]
    code, err = _interrupt_after_first_output(command, out / "max")
    lines = [line for line in err.splitlines() if line.startswith("medfusion: interrupted;")]
    assert code == 130 and len(lines) == 1, err[-2000:]
    written = len([p for p in (out / "max").iterdir() if not p.name.startswith(".")])
    assert f"{written} fused file" in lines[0] and "cases.csv, summary.csv and report.html were not written" in lines[0]
    assert not (out / "cases.csv").exists()


def _csv_rows(path: Path) -> list[dict[str, str]]:
    import csv

    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_every_command_scores_a_fused_volume_the_same(capsys, pair, tmp_path):
    """fuse --metrics, metrics, compare and study: one rule, the same numbers (to the digits each writes)."""
    import json

    ct, mr = pair["ct"], pair["mr"]
    code, _, err = run(
        capsys, "fuse", ct, mr, "-o", tmp_path / "f.nii.gz", "--method", "max", "--metrics", tmp_path / "m.json"
    )
    assert code == 0, err
    fused = json.loads((tmp_path / "m.json").read_text(encoding="utf-8"))
    code, out, err = run(capsys, "metrics", ct, mr, tmp_path / "f.nii.gz", "--json")
    assert code == 0, err
    scored = json.loads(out)
    keys = [k for k in fused if k != "protocol"]
    assert keys and all(scored[k] == pytest.approx(fused[k], rel=1e-9, abs=1e-12) for k in keys)
    assert scored["protocol"]["scoring"] == fused["protocol"]["scoring"] == "modality"

    code, _, err = run(capsys, "compare", ct, mr, "-o", tmp_path / "cmp", "--methods", "max")
    assert code == 0, err
    row = next(r for r in _csv_rows(tmp_path / "cmp" / "metrics.csv") if r["method"] == "max")
    per_slice = [k for k in keys if not k.endswith("3D") and k in row]
    assert per_slice and all(float(row[k]) == pytest.approx(fused[k], rel=1e-5, abs=1e-9) for k in per_slice)

    (tmp_path / "cases.csv").write_text(f"a,b,name\n{ct},{mr},one\n", encoding="utf-8")
    code, _, err = run(capsys, "study", tmp_path / "cases.csv", tmp_path / "study", "--methods", "max")
    assert code == 0, err
    row = next(r for r in _csv_rows(tmp_path / "study" / "cases.csv") if r["method"] == "max")
    in_study = [k for k in keys if k in row]
    assert in_study and all(float(row[k]) == pytest.approx(fused[k], rel=1e-8, abs=1e-9) for k in in_study)

    code, out, _ = run(capsys, "metrics", ct, mr, tmp_path / "f.nii.gz", "--json", "--normalisation", "percentile")
    assert code == 0 and json.loads(out)["protocol"]["rule"].startswith("percentile")


def test_user_errors_that_ended_in_internal_error_are_one_line_exit_2(capsys, pair, tmp_path):
    binary = tmp_path / "manifest.csv"
    binary.write_bytes(b"\x1f\x8b\x08\x00" + bytes(range(256)))
    for args, expected in (
        (["study", binary, tmp_path / "s"], "not a text CSV file"),
        (["batch", binary, tmp_path / "b", "--workers", "0"], "not a text CSV file"),
        (["app", "--port", "70000"], "outside 1..65535"),
        (["app", "--port", "http"], "not a port number"),
    ):
        code, _, err = run(capsys, *args)
        assert code == 2 and expected in one_error_line(err), err


def test_tls_scheduler_without_tls_settings_is_one_line(capsys, tmp_path, monkeypatch):
    for name in [n for n in __import__("os").environ if n.startswith("DASK_DISTRIBUTED__COMM__TLS")]:
        monkeypatch.delenv(name)
    (tmp_path / "m.csv").write_text("a,b\nx.nii.gz,y.nii.gz\n", encoding="utf-8")
    code, _, err = run(capsys, "batch", tmp_path / "m.csv", tmp_path / "out", "--scheduler", "tls://127.0.0.1:1")
    assert code == 2 and "needs Dask's TLS settings" in one_error_line(err)
