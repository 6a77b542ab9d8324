"""The ``medfusion`` command-line contract, end to end on small generated data and on real slices."""

from __future__ import annotations

import csv
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from synthetic import sample_pair_files

from MedFusionLib.apps import cli
from MedFusionLib.metrics import METRIC_KEYS

FAMILIES = {"classical", "cnn", "encoder-decoder", "gan", "decision-map", "feature-extraction", "multi-encoder"}


pytestmark = pytest.mark.usefixtures("quiet_progress")


def run(capsys, *args) -> tuple:
    code = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def slices(tmp_path_factory) -> dict:
    """A 2-D MR-like / PET-like pair as 8-bit PNGs (grey and pseudo-colour RGB)."""
    folder = tmp_path_factory.mktemp("slices")
    y, x = np.mgrid[-1:1:96j, -1:1:112j]
    head = (x**2 / 0.8 + y**2) < 0.8
    mr = np.where(head, 90 + 60 * np.sin(9 * x) * np.cos(7 * y), 0).clip(0, 255).astype(np.uint8)
    blob = np.exp(-((x - 0.2) ** 2 + (y + 0.1) ** 2) / 0.05) * head
    pet = np.stack([255 * blob, 180 * blob**2, 40 * blob], axis=-1).astype(np.uint8)
    sitk.WriteImage(sitk.GetImageFromArray(mr), str(folder / "mr.png"))
    sitk.WriteImage(sitk.GetImageFromArray(pet, isVector=True), str(folder / "pet.png"))
    sitk.WriteImage(sitk.GetImageFromArray(mr[:90, :100]), str(folder / "small.png"))
    return {"mr": folder / "mr.png", "pet": folder / "pet.png", "small": folder / "small.png"}


@pytest.fixture(scope="module")
def phantom(tmp_path_factory) -> dict:
    return sample_pair_files(tmp_path_factory.mktemp("phantom"), mr_name="mr.nrrd")


# ------------------------------------------------------------------------------------------------ methods
def test_methods_json_contract(capsys):
    code, out, _ = run(capsys, "methods", "--json")
    methods = json.loads(out)
    assert code == 0 and methods
    assert sum(m["default"] for m in methods) == 1
    for m in methods:
        assert set(m) == {
            "name",
            "family",
            "modes",
            "min_inputs",
            "max_inputs",
            "default",
            "paper",
            "parameters",
            "paper_parameters",
        }
        assert m["family"] in FAMILIES
        classical = m["family"] == "classical"
        assert (m["parameters"] == 0) == classical and (m["paper"] == "") == classical
        assert m["modes"] and set(m["modes"]) <= {"slice", "volume"}
        assert isinstance(m["min_inputs"], int) and m["min_inputs"] >= 2
        assert m["max_inputs"] is None or (isinstance(m["max_inputs"], int) and m["max_inputs"] >= m["min_inputs"])
    assert any(m["max_inputs"] is None for m in methods)  # the multi-input methods


def test_methods_json_paper_parameters_and_published_claims(capsys):
    """``paper_parameters`` is printed where a published network is reproduced, and "published architecture" is
    claimed only where the shipped network has exactly the paper's count (else the paper field says "after")."""
    _, out, _ = run(capsys, "methods", "--json")
    rows = {m["name"]: m for m in json.loads(out)}
    counted = {n for n, m in rows.items() if m["paper_parameters"] is not None}
    assert counted == {"ifcnn", "densefuse", "ddcgan", "liu-cnn", "chartsias"}
    for name, m in rows.items():
        claims = "published architecture" in m["paper"]
        assert claims == (m["parameters"] == m["paper_parameters"]), name
        if m["paper"] and not claims:
            assert m["paper"].startswith(("after ", "our own design, after ")), name
    assert rows["liu-cnn"]["paper_parameters"] > rows["liu-cnn"]["parameters"]  # factorised first FC layer
    assert rows["chartsias"]["paper_parameters"] > rows["chartsias"]["parameters"]  # halved widths


def test_methods_table(capsys):
    code, out, _ = run(capsys, "methods")
    assert code == 0 and "guided-filter" in out and "* default method" in out


# ------------------------------------------------------------------------------------------------- fuse 2-D
def test_fuse_png_pair_writes_png_metrics_and_preview(capsys, slices, tmp_path):
    before = digest(slices["mr"]), digest(slices["pet"])
    out, metrics, preview = tmp_path / "fused.png", tmp_path / "m.json", tmp_path / "p.png"
    code, stdout, _ = run(
        capsys,
        "fuse",
        slices["mr"],
        slices["pet"],
        "-o",
        out,
        "--method",
        "max",
        "--metrics",
        metrics,
        "--preview",
        preview,
    )
    assert code == 0, stdout
    fused = sitk.ReadImage(str(out))
    assert fused.GetSize() == (112, 96) and fused.GetPixelID() == sitk.sitkUInt8
    mr = sitk.GetArrayFromImage(sitk.ReadImage(str(slices["mr"])))
    assert (sitk.GetArrayFromImage(fused) >= mr).all()  # max fusion keeps the MR everywhere
    values = json.loads(metrics.read_text(encoding="utf-8"))
    assert set(METRIC_KEYS) <= set(values) and all(np.isfinite(values[k]) for k in METRIC_KEYS)
    assert preview.stat().st_size > 0
    assert (digest(slices["mr"]), digest(slices["pet"])) == before  # inputs untouched


def test_fuse_png_of_different_sizes_needs_registration(capsys, slices, tmp_path):
    out = tmp_path / "fused.png"
    code, _, err = run(capsys, "fuse", slices["mr"], slices["small"], "-o", out)
    assert code == 2 and "different sizes" in err and "--register" in err
    assert not out.exists()


# ------------------------------------------------------------------------------------------- fuse/register 3-D
def test_fuse_volumes_with_rigid_registration(capsys, phantom, tmp_path):
    out, metrics = tmp_path / "fused.nii.gz", tmp_path / "m.json"
    code, stdout, _ = run(
        capsys,
        "fuse",
        phantom["ct"],
        phantom["mr"],
        "-o",
        out,
        "--register",
        "rigid",
        "--method",
        "laplacian",
        "--metrics",
        metrics,
    )
    assert code == 0, stdout
    fused, ct = sitk.ReadImage(str(out)), sitk.ReadImage(str(phantom["ct"]))
    assert fused.GetSize() == ct.GetSize()
    np.testing.assert_allclose(fused.GetOrigin(), ct.GetOrigin())
    np.testing.assert_allclose(fused.GetDirection(), ct.GetDirection())
    values = json.loads(metrics.read_text(encoding="utf-8"))
    assert set(METRIC_KEYS) <= set(values) and "protocol" in values
    assert any(key.endswith("3D") for key in values)


def test_fuse_volume_output_type_uint8(capsys, phantom, tmp_path):
    outs = {t: tmp_path / f"fused-{t}.nii.gz" for t in ("float32", "uint8")}
    for kind, out in outs.items():
        code, stdout, _ = run(
            capsys, "fuse", phantom["ct"], phantom["mr"], "-o", out, "--method", "max", "--output-type", kind
        )
        assert code == 0, stdout
    f32, u8 = (sitk.ReadImage(str(outs[k])) for k in ("float32", "uint8"))
    assert f32.GetPixelID() == sitk.sitkFloat32 and u8.GetPixelID() == sitk.sitkUInt8
    a32, a8 = sitk.GetArrayFromImage(f32), sitk.GetArrayFromImage(u8).astype(np.float32)
    assert np.abs(a32 - a8).max() <= 0.5 + 1e-4  # rounded, same 0..255 scale
    assert a8.max() > 0


def test_register_writes_transform_and_resampled(capsys, phantom, tmp_path):
    tfm, resampled = tmp_path / "t.tfm", tmp_path / "mr_on_ct.nrrd"
    code, stdout, _ = run(capsys, "register", phantom["ct"], phantom["mr"], "-o", tfm, "--resampled", resampled)
    assert code == 0, stdout
    transform = sitk.ReadTransform(str(tfm))
    from MedFusionLib.samples.phantom import mean_displacement_error

    pair = phantom["pair"]
    assert mean_displacement_error(transform, pair.true_transform, pair.brain_mask) < 1.5
    assert sitk.ReadImage(str(resampled)).GetSize() == pair.ct.GetSize()


def test_non_overlapping_fields_of_view_fail_registration(capsys, phantom, tmp_path):
    far = sitk.ReadImage(str(phantom["mr"]))
    far.SetOrigin(tuple(np.array(far.GetOrigin()) + 1000.0))
    path = tmp_path / "far.nii.gz"
    sitk.WriteImage(far, str(path))
    out = tmp_path / "fused.nii.gz"
    code, _, err = run(capsys, "fuse", phantom["ct"], path, "-o", out, "--register", "rigid")
    errors = [line for line in err.splitlines() if line.startswith("medfusion: error:")]  # decisions precede it
    assert code == 2 and len(errors) == 1 and "do not overlap" in errors[0]
    assert not out.exists()


# ------------------------------------------------------------------------------------------------- batch
def test_batch_fuses_good_rows_and_reports_bad_ones(capsys, slices, tmp_path):
    manifest = tmp_path / "cases.csv"
    manifest.write_text(
        f"a,b,name\n{slices['mr']},{slices['pet']},one\n"
        f"{slices['mr']},missing.png,broken\n{slices['pet']},{slices['mr']},two\n"
    )
    out_dir = tmp_path / "out"
    code, stdout, err = run(capsys, "batch", manifest, out_dir, "--method", "mean")
    assert code == 1  # one row failed
    assert (out_dir / "one.png").exists() and (out_dir / "two.png").exists()
    assert not (out_dir / "broken.png").exists()
    assert "row 2" in err and "missing.png" in err
    rows = list(csv.DictReader(open(out_dir / "metrics.csv")))
    assert [r["case"] for r in rows] == ["one", "two"]
    assert set(METRIC_KEYS) <= set(rows[0])


def test_batch_bad_manifest(capsys, tmp_path):
    manifest = tmp_path / "cases.csv"
    manifest.write_text("x,y\n1,2\n")
    code, _, err = run(capsys, "batch", manifest, tmp_path / "out")
    assert code == 2 and "columns a,b" in err


# ------------------------------------------------------------------------------------------------ metrics
def test_metrics_json_and_table(capsys, slices, tmp_path):
    fused = tmp_path / "f.png"
    assert run(capsys, "fuse", slices["mr"], slices["pet"], "-o", fused, "--method", "mean")[0] == 0
    code, out, _ = run(capsys, "metrics", slices["mr"], slices["pet"], fused, "--json")
    values = json.loads(out)
    assert code == 0 and set(METRIC_KEYS) <= set(values)
    code, out, _ = run(capsys, "metrics", slices["mr"], slices["pet"], fused)
    assert code == 0 and all(key in out for key in METRIC_KEYS)


def test_metrics_shape_mismatch(capsys, slices):
    code, _, err = run(capsys, "metrics", slices["mr"], slices["pet"], slices["small"])
    assert code == 2 and "same size" in err


# --------------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("problem", ["missing", "not-an-image", "constant", "inf", "vector"])
def test_bad_inputs_give_one_line_and_no_output(capsys, tmp_path, slices, problem):
    bad = tmp_path / "bad.nii.gz"
    if problem == "missing":
        bad = tmp_path / "missing.nii.gz"
    elif problem == "not-an-image":
        bad.write_text("hello")
    elif problem == "constant":
        sitk.WriteImage(sitk.Image(20, 20, 5, sitk.sitkFloat32) + 3.0, str(bad))
    elif problem == "inf":
        bad = tmp_path / "bad.nrrd"
        array = np.random.default_rng(0).random((5, 20, 20)).astype(np.float32)
        array[2, 3, 4] = np.inf
        sitk.WriteImage(sitk.GetImageFromArray(array), str(bad))
    elif problem == "vector":
        sitk.WriteImage(sitk.GetImageFromArray(np.ones((5, 20, 20, 3), np.float32), isVector=True), str(bad))
    out = tmp_path / "fused.nii.gz"
    code, _, err = run(capsys, "fuse", bad, bad, "-o", out)
    assert code == 2
    assert err.startswith("medfusion: error:") and str(bad.name) in err and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err and not out.exists()


def test_output_folder_missing(capsys, slices, tmp_path):
    code, _, err = run(capsys, "fuse", slices["mr"], slices["pet"], "-o", tmp_path / "no" / "f.png")
    assert code == 2 and "does not exist" in err


def test_interrupt_leaves_no_output(capsys, slices, tmp_path, monkeypatch):
    import MedFusionLib.pipeline as pipeline

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "fuse_images", interrupted)
    out = tmp_path / "f.png"
    code, _, err = run(capsys, "fuse", slices["mr"], slices["pet"], "-o", out)
    assert code == 130 and "interrupted" in err
    assert list(tmp_path.iterdir()) == []


def test_console_script_error_has_no_traceback(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "MedFusionLib",
            "fuse",
            str(tmp_path / "a.nii.gz"),
            str(tmp_path / "b.nii.gz"),
            "-o",
            str(tmp_path / "f.nii.gz"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == f"medfusion: error: {tmp_path / 'a.nii.gz'}: no such file or folder"


# -------------------------------------------------------------------------------------------------- demo
def test_demo_reports_registration_error_and_writes_outputs(capsys, tmp_path):
    code, out, _ = run(capsys, "demo", "--out", tmp_path / "demo")
    assert code == 0
    line = next(text for text in out.splitlines() if "registration error" in text)
    after = float(line.split("->")[1].split("mm")[0])
    assert after < 1.5  # the known misalignment (about 13 mm) is recovered
    assert "SSIM and VIF are summed over the 2 sources" in out  # why SSIM can exceed 1
    summary = next(text for text in out.splitlines() if "registration:" in text)
    assert "iterations in all" in summary and "last run:" in summary and "v4" not in summary
    for name in ("fused.nii.gz", "metrics.json", "preview.png"):
        assert (tmp_path / "demo" / name).stat().st_size > 0


# ---------------------------------------------------------------------------------------- real data (2-D)
def test_real_harvard_pair_with_colour_pet(capsys, shared_data, tmp_path):
    pet_dir = shared_data / "harvard/PET-MRI/PET"
    name = sorted(p.name for p in pet_dir.iterdir())[0]
    out, metrics = tmp_path / "fused.png", tmp_path / "m.json"
    code, _, _ = run(
        capsys, "fuse", shared_data / "harvard/PET-MRI/MRI" / name, pet_dir / name, "-o", out, "--metrics", metrics
    )
    assert code == 0
    assert sitk.ReadImage(str(out)).GetSize() == (256, 256)
    values = json.loads(metrics.read_text(encoding="utf-8"))
    assert 0 < values["QABF"] <= 1 and values["SSIM"] > 0.5
