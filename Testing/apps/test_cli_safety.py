"""The CLI's safety contract, end to end in real subprocesses: inputs are never overwritten, Ctrl-C and
SIGTERM stop any stage within about 2 s leaving nothing behind, every user-facing failure (permissions,
disk full, memory, oversized headers) is one line with exit 2, and warnings/decisions are one line each."""

from __future__ import annotations

import hashlib
import os
import resource
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
from MedFusionLib.core import imageio as io
from MedFusionLib.samples.phantom import make_phantom_pair


def digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def run(capsys, *args) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str) -> str:
    """The single ``medfusion: error:`` line of stderr (warnings may precede it; no traceback)."""
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("medfusion: error:")]
    assert len(errors) == 1, err
    assert all(line.startswith("medfusion: ") for line in err.splitlines()), err
    return errors[0]


pytestmark = pytest.mark.usefixtures("quiet_progress")


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> dict:
    files = sample_pair_files(tmp_path_factory.mktemp("pair"))
    folder = files["folder"]
    y, x = np.mgrid[-1:1:64j, -1:1:64j]
    sitk.WriteImage(
        sitk.GetImageFromArray(((x**2 + y**2 < 0.7) * (100 + 80 * x)).astype(np.uint8)), str(folder / "a.png")
    )
    sitk.WriteImage(
        sitk.GetImageFromArray(((x**2 + y**2 < 0.5) * (60 + 90 * y**2)).astype(np.uint8)), str(folder / "b.png")
    )
    return {**files, "a": folder / "a.png", "b": folder / "b.png"}


# ------------------------------------------------------------------------------------------ output safety
def test_outputs_resolving_to_inputs_are_refused_and_inputs_kept(capsys, pair, tmp_path):
    a = tmp_path / "a.png"
    a.write_bytes(pair["a"].read_bytes())
    (tmp_path / "sub").mkdir()
    os.link(a, tmp_path / "hard.png")
    before = digest(a)
    for output in (a, tmp_path / "sub" / ".." / "a.png", tmp_path / "hard.png"):
        code, _, err = run(capsys, "fuse", a, pair["b"], "-o", output, "--method", "mean")
        assert code == 2 and "would overwrite the input" in one_error_line(err)
    for extra in ("--metrics", "--preview"):
        code, _, err = run(capsys, "fuse", a, pair["b"], "-o", tmp_path / "f.png", extra, a)
        assert code == 2 and "would overwrite the input" in one_error_line(err)
    code, _, err = run(capsys, "fuse", a, pair["b"], "-o", tmp_path / "f.png", "--preview", tmp_path / "f.png")
    assert code == 2 and "named twice" in one_error_line(err)
    code, _, err = run(capsys, "register", a, pair["b"], "-o", tmp_path / "t.tfm", "--resampled", a)
    assert code == 2 and "would overwrite the input" in one_error_line(err)
    assert digest(a) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "hard.png", "sub"]


def test_output_inside_a_dicom_input_folder_is_refused(capsys, pair, tmp_path):
    series = tmp_path / "ct_series"
    io.write_image(sitk.ReadImage(str(pair["ct"])), series)
    files = sorted(p.name for p in series.iterdir())
    for output in (series / "fused.nii.gz", series, tmp_path / "x" / ".." / "ct_series"):
        code, _, err = run(capsys, "fuse", series, pair["mr"], "-o", output, "--method", "mean")
        assert code == 2 and "would overwrite the input" in one_error_line(err)
    assert sorted(p.name for p in series.iterdir()) == files


# --------------------------------------------------------------------------------------- interruptibility
@pytest.fixture(scope="module")
def big_pair(tmp_path_factory) -> dict:
    """The phantom on a 1.25 mm grid: slow enough to interrupt in every stage."""
    folder = tmp_path_factory.mktemp("big")
    phantom = make_phantom_pair()
    for name, image in (("ct", phantom.ct), ("mr", phantom.mr)):
        grid = sitk.Image([s * 2 for s in image.GetSize()], image.GetPixelID())
        grid.SetSpacing([s / 2 for s in image.GetSpacing()])
        grid.SetOrigin(image.GetOrigin())
        grid.SetDirection(image.GetDirection())
        sitk.WriteImage(sitk.Resample(image, grid, sitk.Transform(), sitk.sitkLinear), str(folder / f"{name}.nii.gz"))
    return {"ct": folder / "ct.nii.gz", "mr": folder / "mr.nii.gz"}


def _interrupt_when(args: list[str], marker: str, signum: int, workdir: Path) -> tuple[int, float, str]:
    """Run ``medfusion ARGS`` in a subprocess, send ``signum`` when stderr shows ``marker``; return the exit
    code, the seconds from the signal to the exit, and stderr."""
    tmp = workdir / "tmp"
    tmp.mkdir()
    env = dict(os.environ, MEDFUSION_PROGRESS_SECONDS="0", TMPDIR=str(tmp), PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "MedFusionLib", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=workdir,
    )
    lines = []
    deadline = time.monotonic() + 240
    assert proc.stderr is not None
    for line in proc.stderr:
        lines.append(line)
        if marker in line or time.monotonic() > deadline:
            break
    assert marker in lines[-1], "".join(lines[-5:])
    proc.send_signal(signum)
    sent = time.monotonic()
    try:
        rest = proc.stderr.read()
        code = proc.wait(timeout=30)
    finally:
        proc.kill()
    elapsed = time.monotonic() - sent
    assert list(tmp.iterdir()) == [], "temporary files left behind"
    return code, elapsed, "".join(lines) + rest


@pytest.mark.slow
@pytest.mark.parametrize(
    ("stage", "marker", "signum"),
    [
        ("registration", ": iteration ", signal.SIGINT),
        ("registration", ": iteration ", signal.SIGTERM),
        ("fusion", "max-residual-cnn: slice", signal.SIGINT),
        ("fusion", "max-residual-cnn: slice", signal.SIGTERM),
        ("metrics", "metrics: slice", signal.SIGINT),
    ],
)
def test_signal_stops_every_stage_within_two_seconds(big_pair, tmp_path, stage, marker, signum):
    register = "rigid" if stage == "registration" else "none"
    args = [str(big_pair["ct"]), str(big_pair["mr"]), "-o", "fused.nii.gz", "--register", register]
    args += ["--method", "max-residual-cnn", "--metrics", "m.json", "--preview", "p.png"]
    code, elapsed, err = _interrupt_when(["fuse", *args], marker, signum, tmp_path)
    assert code == 130, err[-2000:]
    assert elapsed < 2.0, f"{stage}: took {elapsed:.2f} s to stop"
    assert "Traceback" not in err and "interrupted; nothing was written" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tmp"]  # no output, no temporary file


@pytest.mark.slow
def test_signal_stops_register_command(big_pair, tmp_path):
    args = ["register", str(big_pair["ct"]), str(big_pair["mr"]), "-o", "t.tfm", "--resampled", "r.nii.gz"]
    code, elapsed, err = _interrupt_when(args, ": iteration ", signal.SIGINT, tmp_path)
    assert code == 130 and elapsed < 2.0 and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tmp"]


# ------------------------------------------------------------------------------- one-line failures, exit 2
NO_OVERRIDE = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--inh-caps=-dac_override,-dac_read_search"]


def _unprivileged() -> list[str]:
    """A command prefix under which file permissions apply (root keeps them only without CAP_DAC_OVERRIDE)."""
    if os.geteuid() != 0:
        return []
    if subprocess.run([*NO_OVERRIDE, "true"], capture_output=True).returncode != 0:
        pytest.skip("setpriv cannot drop CAP_DAC_OVERRIDE here")
    return NO_OVERRIDE


def test_permission_denied_is_one_line_exit_2(pair, tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    os.chmod(folder, 0o555)
    try:
        args = ["fuse", str(pair["a"]), str(pair["b"]), "-o", str(folder / "f.png"), "--method", "mean"]
        result = subprocess.run(
            [*_unprivileged(), sys.executable, "-m", "MedFusionLib", *args], capture_output=True, text=True
        )
    finally:
        os.chmod(folder, 0o755)
    assert result.returncode == 2, result.stderr
    line = one_error_line(result.stderr)
    assert line == f"medfusion: error: {folder / 'f.png'}: permission denied (nothing was written)"
    assert list(folder.iterdir()) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="needs a private mount namespace (root)")
def test_read_only_file_system_is_one_line_exit_2(pair, tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    out = folder / "f.nii.gz"
    python = f"{sys.executable} -m MedFusionLib fuse {pair['ct']} {pair['mr']} -o {out} --method mean"
    script = f"mount --bind {folder} {folder} && mount -o remount,ro,bind {folder} && exec {python}"
    probe = subprocess.run(["unshare", "-m", "sh", "-c", f"mount --bind {folder} {folder}"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("no private mount namespace here")
    result = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True)
    assert result.returncode == 2, result.stderr
    assert one_error_line(result.stderr) == f"medfusion: error: {out}: read-only file system (nothing was written)"
    assert list(folder.iterdir()) == []


def _limit_file_size() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails with EFBIG instead of killing the process
    resource.setrlimit(resource.RLIMIT_FSIZE, (2000, 2000))


def test_disk_full_is_one_line_exit_2(pair, tmp_path):
    """A file-size limit makes the writer fail mid-file, as a full disk does (EFBIG/ENOSPC)."""
    args = ["fuse", str(pair["ct"]), str(pair["mr"]), "-o", str(tmp_path / "f.nii"), "--method", "mean"]
    result = subprocess.run(
        [sys.executable, "-m", "MedFusionLib", *args], capture_output=True, text=True, preexec_fn=_limit_file_size
    )
    assert result.returncode == 2, result.stderr
    line = one_error_line(result.stderr)
    assert line.startswith(f"medfusion: error: {tmp_path / 'f.nii'}: ") and "nothing was written" in line
    assert list(tmp_path.iterdir()) == []


def test_out_of_memory_is_one_line_exit_2(tmp_path):
    """Address space capped below what the run needs: numpy's MemoryError becomes one line."""
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        image = sitk.GetImageFromArray((rng.random((160, 160, 160)) * 1000).astype(np.float32))
        sitk.WriteImage(image, str(tmp_path / f"{name}.nrrd"))
    code = (
        "import resource, sys\n"
        "from MedFusionLib.apps.cli import main\n"
        "import MedFusionLib.pipeline, MedFusionLib.fusion, numpy, scipy.ndimage\n"
        "used = int(open('/proc/self/statm').read().split()[0]) * resource.getpagesize()\n"
        "resource.setrlimit(resource.RLIMIT_AS, (used + 120 * 2**20, resource.RLIM_INFINITY))\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    args = [
        "fuse",
        str(tmp_path / "a.nrrd"),
        str(tmp_path / "b.nrrd"),
        "-o",
        str(tmp_path / "f.nrrd"),
        "--method",
        "mean",
    ]
    result = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "out of memory" in one_error_line(result.stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.nrrd", "b.nrrd"]


def test_usage_errors_are_one_line(capsys, pair):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["fuse", str(pair["a"]), "--mode", "sideways", "-o", "x.png"])
    _, err = capsys.readouterr()
    assert exit_info.value.code == 2 and one_error_line(err).startswith("medfusion: error: argument --mode")


# ----------------------------------------------------------------------------------------- resource guard
def test_header_promising_more_than_memory_is_refused_before_reading(capsys, pair, tmp_path):
    raw = tmp_path / "huge.raw"
    with open(raw, "wb") as handle:
        handle.truncate(4000 * 4000 * 4000 * 4)  # sparse: 256 GB promised, no disk used
    (tmp_path / "huge.mhd").write_text(
        "ObjectType = Image\nNDims = 3\nDimSize = 4000 4000 4000\nElementType = MET_FLOAT\n"
        "ElementSpacing = 1 1 1\nElementDataFile = huge.raw\n"
    )
    started = time.monotonic()
    code, _, err = run(capsys, "fuse", tmp_path / "huge.mhd", pair["mr"], "-o", tmp_path / "f.nii.gz")
    line = one_error_line(err)
    assert code == 2 and time.monotonic() - started < 5
    assert "needs about" in line and "4000x4000x4000" in line and "available" in line and "nothing was read" in line
    code, _, err = run(capsys, "metrics", tmp_path / "huge.mhd", pair["mr"], pair["mr"])
    assert code == 2 and "needs about" in one_error_line(err)


def test_memory_estimate_is_compared_with_what_is_available(capsys, pair, tmp_path, monkeypatch):
    monkeypatch.setenv("MEDFUSION_MEMORY_AVAILABLE", str(10 * 2**20))  # 10 MB: less than the phantom run needs
    code, _, err = run(capsys, "fuse", pair["ct"], pair["mr"], "-o", tmp_path / "f.nii.gz")
    assert code == 2 and "but 10 MB is available" in one_error_line(err)
    monkeypatch.setenv("MEDFUSION_MEMORY_AVAILABLE", str(2**33))
    code, _, _ = run(capsys, "fuse", pair["ct"], pair["mr"], "-o", tmp_path / "f.nii.gz", "--method", "mean")
    assert code == 0


# peaks of `medfusion fuse` (default method) measured by benchmarks/memory_benchmark.py on 2026-12-07 (docs/runtime.md):
# (size, slice-mode MB, volume-mode MB) of the porcine int16 pair resampled to that size
MEASURED_FUSE_PEAKS_MB = (((512, 512, 400), 2723, 2435), ((256, 256, 205), 819, 980))


def test_fusing_estimate_is_within_a_quarter_of_the_measured_peaks_and_below_the_scoring_bound():
    """Fusing has its own estimate, within 25 % of each measured peak (both sizes, both modes); scoring keeps the
    larger bound of its copies."""
    from MedFusionLib.core.resources import ImageInfo, estimate_run_bytes

    for size, *peaks in MEASURED_FUSE_PEAKS_MB:
        pair = [ImageInfo("ct.nii", size, 2), ImageInfo("mr.nii", size, 2)]
        fuse = estimate_run_bytes(pair)
        for peak in peaks:
            assert 0.75 <= fuse / (peak * 1e6) <= 1.25, (size, fuse / 1e6, peak)
        assert fuse < estimate_run_bytes(pair, "score")
    with pytest.raises(ValueError, match="work must be one of"):
        estimate_run_bytes(pair, "train")


# ------------------------------------------------------------------------------ input fidelity, warnings
def test_nan_input_is_background_with_one_warning(capsys, pair, tmp_path):
    mr = sitk.ReadImage(str(pair["mr"]), sitk.sitkFloat32)
    array = sitk.GetArrayFromImage(mr)
    array[:, :4, :] = np.nan  # an SPM-style "outside the mask"
    nan = sitk.GetImageFromArray(array)
    nan.CopyInformation(mr)
    sitk.WriteImage(nan, str(tmp_path / "nan.nii.gz"))
    code, _, err = run(
        capsys, "fuse", pair["ct"], tmp_path / "nan.nii.gz", "-o", tmp_path / "f.nii.gz", "--method", "mean"
    )
    assert code == 0
    warnings = [line for line in err.splitlines() if "NaN" in line]
    count = int(np.isnan(array).sum())
    assert warnings == [
        f"medfusion: warning: input 2: {count} NaN voxel(s) of {array.size} treated as background (set to {np.nanmin(array):g})"
    ]
    assert np.isfinite(sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "f.nii.gz")))).all()


def test_multi_series_folder_lists_series_or_takes_series_option(capsys, pair, tmp_path):
    folder = tmp_path / "two"
    io.write_image(sitk.ReadImage(str(pair["ct"])), tmp_path / "s1")
    io.write_image(sitk.ReadImage(str(pair["ct"]))[:, :, :20], tmp_path / "s2")
    folder.mkdir()
    for series in ("s1", "s2"):
        for path in (tmp_path / series).iterdir():
            path.rename(folder / f"{series}_{path.name}")
    uids = sorted(io.dicom_series(folder))
    code, _, err = run(capsys, "fuse", folder, pair["mr"], "-o", tmp_path / "f.nii.gz", "--method", "mean")
    line = one_error_line(err)
    assert code == 2 and "2 DICOM series" in line and all(uid in line for uid in uids)
    short = next(uid for uid, files in io.dicom_series(folder).items() if len(files) == 20)
    code, _, _ = run(
        capsys, "fuse", folder, pair["mr"], "-o", tmp_path / "f.nii.gz", "--method", "mean", "--series", short
    )
    assert code == 0 and sitk.ReadImage(str(tmp_path / "f.nii.gz")).GetSize()[2] == 20


def test_modality_decisions_and_misalignment_warning(capsys, pair, tmp_path):
    ct = sitk.ReadImage(str(pair["ct"]), sitk.sitkFloat32)
    soft = sitk.Sqrt(sitk.Clamp(ct + 1000.0, lowerBound=0.0))  # same grid and content, other contrast
    sitk.WriteImage(soft, str(tmp_path / "soft.nii.gz"))
    code, out, err = run(
        capsys, "fuse", pair["ct"], tmp_path / "soft.nii.gz", "-o", tmp_path / "g.nii.gz", "--method", "mean"
    )
    assert code == 0 and "trusts the headers" not in err  # aligned: no warning
    assert "medfusion: input 1: modality ct (auto-detected: Hounsfield units (air <= -850, soft tissue near 0))" in (
        err.splitlines()
    )
    assert any(line.startswith("medfusion: input 2: modality mr (auto-detected") for line in err.splitlines())
    assert not [line for line in out.splitlines() if line.startswith("medfusion: input")]  # decisions: stderr
    moved = sitk.Image(soft)
    moved.SetOrigin(tuple(np.array(soft.GetOrigin()) + np.array([30.0, 0.0, 0.0])))
    sitk.WriteImage(moved, str(tmp_path / "moved.nii.gz"))
    code, _, err = run(
        capsys, "fuse", pair["ct"], tmp_path / "moved.nii.gz", "-o", tmp_path / "f.nii.gz", "--method", "mean"
    )
    warning = [line for line in err.splitlines() if "--register none trusts the headers" in line]
    assert code == 0 and len(warning) == 1
    assert warning[0].startswith("medfusion: warning: input 2: header geometry puts it 30 mm (box centres) and 30 mm")


def test_progress_lines_when_not_a_terminal(capsys, pair, tmp_path, monkeypatch):
    monkeypatch.setenv("MEDFUSION_PROGRESS_SECONDS", "0")
    code, _, err = run(
        capsys, "fuse", pair["ct"], pair["mr"], "-o", tmp_path / "f.nii.gz", "--metrics", tmp_path / "m.json"
    )
    lines = [line for line in err.splitlines() if line.startswith("medfusion: fuse ")]
    assert code == 0 and len(lines) > 10
    assert any("metrics: slice" in line for line in lines) and any("slice" in line for line in lines)


def test_allocation_failures_of_torch_and_itk_are_one_line_exit_2(capsys, pair, tmp_path, monkeypatch):
    import MedFusionLib.pipeline as pipeline

    def torch_out_of_memory(*args, **kwargs):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory: you tried")

    monkeypatch.setattr(pipeline, "fuse_images", torch_out_of_memory)
    code, _, err = run(capsys, "fuse", pair["a"], pair["b"], "-o", tmp_path / "f.png")
    assert code == 2 and "out of memory" in one_error_line(err) and list(tmp_path.iterdir()) == []


def test_unreadable_dicom_folder_is_permission_denied(pair, tmp_path):
    series = tmp_path / "series"
    io.write_image(sitk.ReadImage(str(pair["ct"])), series)
    os.chmod(series, 0o000)
    try:
        args = ["fuse", str(series), str(pair["mr"]), "-o", str(tmp_path / "f.nii.gz")]
        result = subprocess.run(
            [*_unprivileged(), sys.executable, "-m", "MedFusionLib", *args], capture_output=True, text=True
        )
    finally:
        os.chmod(series, 0o755)
    assert result.returncode == 2 and one_error_line(result.stderr) == f"medfusion: error: {series}: permission denied"


def test_fused_dicom_series_joins_the_reference_study(capsys, pair, tmp_path):
    io.write_image(sitk.ReadImage(str(pair["ct"])), tmp_path / "ct_dicom")
    code, _, _ = run(capsys, "fuse", tmp_path / "ct_dicom", pair["mr"], "-o", tmp_path / "fused", "--method", "mean")
    assert code == 0

    def tags(folder: Path) -> dict[str, str]:
        reader = sitk.ImageFileReader()
        reader.SetFileName(str(sorted(folder.iterdir())[0]))
        reader.ReadImageInformation()
        keys = ("0020|000d", "0020|0052", "0020|000e", "0008|103e", "0010|0020")
        return {k: reader.GetMetaData(k).strip() for k in keys if reader.HasMetaDataKey(k)}

    source, fused = tags(tmp_path / "ct_dicom"), tags(tmp_path / "fused")
    assert fused["0020|000d"] == source["0020|000d"] and fused["0020|0052"] == source["0020|0052"]
    assert fused["0020|000e"] != source["0020|000e"] and fused["0008|103e"] == "MedFusion mean (slice) fusion"


def test_register_prints_the_preset_it_chose(capsys, pair, tmp_path):
    code, _, err = run(capsys, "register", pair["ct"], pair["mr"], "-o", tmp_path / "t.tfm")
    assert code == 0
    assert "medfusion: registration preset ct-mr (auto: from the detected modalities" in err
    assert (tmp_path / "t.tfm").stat().st_mode & 0o777 == 0o666 & ~io.current_umask()


def test_missing_temporary_folder_does_not_stop_a_run(pair, tmp_path):
    args = ["fuse", str(pair["ct"]), str(pair["mr"]), "-o", str(tmp_path / "f.nii.gz"), "--method", "mean"]
    env = dict(os.environ, TMPDIR=str(tmp_path / "nowhere"))
    result = subprocess.run([sys.executable, "-m", "MedFusionLib", *args], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "f.nii.gz").is_file()


def test_functional_is_one_based_on_the_command_line(capsys, pair, tmp_path):
    for bad in ("0", "-1", "two"):
        with pytest.raises(SystemExit):
            cli.main(["fuse", str(pair["a"]), str(pair["b"]), "-o", str(tmp_path / "f.png"), "--functional", bad])
        assert "inputs are numbered from 1" in one_error_line(capsys.readouterr()[1]) or bad == "two"
    code, _, err = run(
        capsys, "fuse", pair["a"], pair["b"], "-o", tmp_path / "f.png", "--colour", "hot", "--functional", "3"
    )
    assert code == 2 and "functional input 3 does not exist (there are 2 inputs)" in one_error_line(err)
    code, _, _ = run(
        capsys, "fuse", pair["a"], pair["b"], "-o", tmp_path / "f.png", "--colour", "hot", "--functional", "1"
    )
    assert code == 0
