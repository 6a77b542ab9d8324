"""Seeded fuzzing of the command line: random commands, options, option values and input/output paths over
a pool of tiny good and bad files. Every run exits 0 (its output written) or 2 with exactly one
``medfusion: error:`` line; never a traceback, an internal error (exit 1) or a hang."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from MedFusionLib.apps import cli
from MedFusionLib.core import imageio as io


@pytest.fixture(scope="module")
def pool(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("fuzzpool")
    rng = np.random.default_rng(0)
    y, x = np.mgrid[-1:1:16j, -1:1:16j]
    disc = (x**2 + y**2 < 0.6).astype(np.float64)
    files = {
        "a.png": sitk.GetImageFromArray((disc * 120 + rng.random((16, 16)) * 60).astype(np.uint8)),
        "b.png": sitk.GetImageFromArray((disc * (200 - 100 * x)).astype(np.uint8)),
        "small.png": sitk.GetImageFromArray((rng.random((12, 14)) * 255).astype(np.uint8)),
        "rgb.png": sitk.GetImageFromArray((rng.random((16, 16, 3)) * 255).astype(np.uint8), isVector=True),
        "flat.png": sitk.GetImageFromArray(np.full((16, 16), 7, np.uint8)),
        "ct.nii.gz": sitk.GetImageFromArray((rng.random((4, 14, 14)) * 2000 - 1000).astype(np.int16)),
        "mr.nrrd": sitk.GetImageFromArray((rng.random((4, 14, 14)) * 900).astype(np.float32)),
        "nan.nii": sitk.GetImageFromArray(np.where(rng.random((4, 14, 14)) < 0.2, np.nan, rng.random((4, 14, 14)))),
        "inf.mha": sitk.GetImageFromArray(np.where(rng.random((4, 14, 14)) < 0.1, np.inf, 1.0)),
    }
    for name, image in files.items():
        sitk.WriteImage(image, str(folder / name))
    (folder / "junk.nii.gz").write_bytes(b"\x1f\x8b not really gzip")
    (folder / "text.png").write_text("hello")
    (folder / "empty.mha").write_bytes(b"")
    io.write_image(sitk.GetImageFromArray((rng.random((3, 14, 14)) * 500).astype(np.int16)), folder / "dicom")
    (folder / "nodicom").mkdir()
    paths = {name: folder / name for name in list(files) + ["junk.nii.gz", "text.png", "empty.mha", "dicom", "nodicom"]}
    paths["missing.png"] = folder / "missing.png"
    return paths


GOOD_2D = ("a.png", "b.png", "rgb.png", "small.png")
GOOD_3D = ("ct.nii.gz", "mr.nrrd", "nan.nii", "dicom")
BAD = ("flat.png", "inf.mha", "junk.nii.gz", "text.png", "empty.mha", "nodicom", "missing.png")
INPUTS = GOOD_2D + GOOD_3D + BAD
OUTPUTS = ("f.png", "f.nii.gz", "f.nrrd", "f.mha", "f.tif", "dicom_out", "f.xyz", "no/such/dir/f.png", "INPUT")
OPTION_VALUES = {
    "--method": ("mean", "max", "max-residual-cnn", "laplacian", "guided-filter", "densefuse-lite", "nope", ""),
    "--mode": ("slice", "volume", "bogus"),
    "--axis": ("0", "1", "2", "3", "-1", "x"),
    "--register": ("none", "none", "none", "rigid", "sideways"),
    "--modality": ("auto", "ct", "mr", "pet", "spect", "8bit", "xray"),
    "--colour": ("none", "auto", "hot", "pet", "rainbow", "mauve"),
    "--colour-style": ("overlay", "ycbcr", "pastel"),
    "--functional": ("1", "2", "3", "0", "-4", "two"),
    "--series": ("1.2.3", ""),
}


@st.composite
def argvs(draw) -> tuple[str, list[str], int]:
    command = draw(st.sampled_from(("fuse", "fuse", "fuse", "fuse", "metrics", "methods", "register")))
    n_inputs = {"metrics": 3, "register": 2, "methods": 0}.get(command, draw(st.sampled_from((2, 2, 2, 3))))
    if draw(st.integers(0, 9)) == 9:
        n_inputs = draw(st.integers(0, 4))  # wrong counts too
    kind = draw(st.sampled_from(("2d", "2d", "3d", "3d", "any")))  # mostly consistent cases, so runs get far
    pick = {"2d": GOOD_2D, "3d": GOOD_3D, "any": INPUTS}[kind]
    inputs = [draw(st.sampled_from(pick if draw(st.integers(0, 5)) < 5 else INPUTS)) for _ in range(n_inputs)]
    options: list[str] = []
    if command == "fuse":
        for flag in draw(st.lists(st.sampled_from(sorted(OPTION_VALUES)), max_size=4)):
            values = OPTION_VALUES[flag]
            options += [flag, draw(st.sampled_from(values[:-1] if draw(st.integers(0, 4)) < 4 else values))]
        if draw(st.booleans()):
            options += ["--metrics", draw(st.sampled_from(("m.json", "INPUT", "no/dir/m.json")))]
        if draw(st.integers(0, 3)) == 3:
            options += ["--preview", draw(st.sampled_from(("p.png", "INPUT")))]
    if command in ("fuse", "register") and draw(st.integers(0, 19)) < 19:  # (hypothesis favours small draws)
        usual = {"2d": "f.png", "3d": "f.nii.gz"}.get(kind, "f.nrrd") if command == "fuse" else "t.tfm"
        unusual = OUTPUTS if command == "fuse" else ("INPUT", "no/t.tfm")
        options = ["-o", draw(st.sampled_from(unusual)) if draw(st.integers(0, 3)) == 3 else usual] + options
    if command == "register" and draw(st.booleans()):
        options += ["--mode", draw(st.sampled_from(("rigid", "affine", "warp")))]
    if command in ("metrics", "methods") and draw(st.booleans()):
        options.append("--json")
    if draw(st.integers(0, 19)) == 19:
        options.append(draw(st.sampled_from(("--bogus", "-x", "--", "--help"))))
    return command, inputs + options, draw(st.integers(0, 2**16))


@settings(
    max_examples=700,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(case=argvs())
def test_cli_exits_0_or_2_with_one_line(case, pool, capsys, monkeypatch):
    monkeypatch.setenv("MEDFUSION_PROGRESS_SECONDS", "1e9")
    command, words, _ = case
    with tempfile.TemporaryDirectory() as out:
        first_input = next((w for w in words if w in pool), None)
        argv = [command]
        for word in words:
            if word == "INPUT":
                argv.append(str(pool[first_input]) if first_input else str(pool["a.png"]))
            elif word in pool:
                argv.append(str(pool[word]))
            elif word in OUTPUTS or word.endswith((".json", ".tfm")) or word == "p.png":
                argv.append(str(Path(out) / word))
            else:
                argv.append(word)
        before = {name: path.read_bytes() for name, path in pool.items() if path.is_file()}
        try:
            code = cli.main(argv)
        except SystemExit as exit_info:  # argparse: usage errors (2) and --help (0)
            code = exit_info.code
        stdout, stderr = capsys.readouterr()
        event(f"{command}: exit {code}")
        assert code in (0, 2), f"{argv}: exit {code}\n{stderr[-1500:]}"
        assert "Traceback" not in stderr and "internal error" not in stderr, stderr[-1500:]
        lines = stderr.splitlines()
        assert all(line.startswith("medfusion: ") for line in lines), f"{argv}\n{stderr[-1500:]}"
        errors = [line for line in lines if line.startswith("medfusion: error:")]
        assert len(errors) == (1 if code == 2 else 0), f"{argv}\n{stderr[-1500:]}"
        if code == 0 and command == "fuse" and "-o" in argv and "--help" not in argv:
            assert Path(argv[argv.index("-o") + 1]).exists()
        assert not [p for p in Path(out).rglob("*") if ".part" in p.name]
    assert before == {name: path.read_bytes() for name, path in pool.items() if path.is_file()}
