"""The ONNX inference path: no torch in the fusion front-ends, the device choice and its fallback, and one clear
line (exit 2, nothing written) for bad weights, graphs and environment values."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import SimpleITK as sitk
from no_torch import no_torch_script
from synthetic import phantom_pair_files

from MedFusionLib.apps import cli
from MedFusionLib.core.errors import MedFusionError
from MedFusionLib.inference import devices, onnx_runtime
from MedFusionLib.inference.weights import weight_path

REPO = Path(__file__).resolve().parents[2]


pytestmark = pytest.mark.usefixtures("quiet_progress")


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> tuple[Path, Path]:
    return phantom_pair_files(tmp_path_factory.mktemp("pair"))


def run(capsys, *args) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


ONNX_METHODS = ["fusion-unet", "max-residual-cnn", "ifcnn", "densefuse", "ddcgan"]
PART_METHODS = ["decision-map-cnn", "deep-feature-weighting", "deep-features", "liu-cnn", "chartsias"]


def test_no_shipped_method_needs_torch():
    from MedFusionLib.fusion import describe_methods

    assert [m["name"] for m in describe_methods() if m["needs_torch"]] == []


@pytest.mark.parametrize("method", ONNX_METHODS + PART_METHODS)
def test_fuse_command_runs_onnx_methods_without_torch(pair, tmp_path, method):
    out = tmp_path / "fused.nii.gz"
    argv = ["fuse", str(pair[0]), str(pair[1]), "-o", str(out), "--method", method]
    body = f"from MedFusionLib.apps.cli import main\nassert main({argv!r}) == 0"
    res = subprocess.run([sys.executable, "-c", no_torch_script(body)], capture_output=True, text=True, cwd=REPO)
    assert "NO TORCH" in res.stdout, res.stderr[-2000:]
    assert out.is_file()


@pytest.mark.parametrize("method", ["fusion-unet", "chartsias"])
def test_worker_job_runs_without_torch(pair, tmp_path, method):
    """The worker process (``python -m MedFusionLib.apps.worker JOB``: Slicer's Apply and the web app's Apply run
    their jobs in it) needs no torch, also for a method whose encoders are picked by modality."""
    images = [sitk.ReadImage(str(p)) for p in pair]
    from MedFusionLib.pipeline import job

    job.write_job(tmp_path, images, method=method, mode="volume", computeMetrics=False, device="cpu")
    body = f"from MedFusionLib.apps.worker import main\nassert main([{str(tmp_path)!r}]) == 0"  # the worker's entry
    res = subprocess.run([sys.executable, "-c", no_torch_script(body)], capture_output=True, text=True, cwd=REPO)
    assert "NO TORCH" in res.stdout, res.stderr[-2000:] + res.stdout[-2000:]
    assert job.load_outcome(tmp_path).fused.GetSize() == images[0].GetSize()


def test_device_cuda_without_gpu_is_one_line_and_writes_nothing(pair, tmp_path, capsys):
    if devices.CUDA_PROVIDER in devices.available_providers():
        pytest.skip("this machine has ONNX Runtime's CUDA provider")
    out = tmp_path / "fused.nii.gz"
    code, _, err = run(capsys, "fuse", *pair, "-o", out, "--device", "cuda")
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("medfusion: error: --device cuda: no CUDA GPU")
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_device_auto_falls_back_to_the_cpu_with_one_line(pair, tmp_path, capsys):
    if devices.CUDA_PROVIDER in devices.available_providers():
        pytest.skip("this machine has ONNX Runtime's CUDA provider")
    devices._note_cpu_fallback.cache_clear()
    code, out, err = run(capsys, "fuse", *pair, "-o", tmp_path / "f.nii.gz", "--device", "auto")
    assert code == 0
    assert err.count("running on the CPU") == 1 and "running on the CPU" not in out  # a note: stderr
    assert devices.providers("auto") == (devices.CPU_PROVIDER,)
    assert devices.providers("cpu") == (devices.CPU_PROVIDER,)


def test_missing_onnxruntime_is_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if not installed
    with pytest.raises(MedFusionError, match="onnxruntime is not installed"):
        devices.available_providers()


@pytest.mark.parametrize("value", ["two", "0", "-1", "1.5"])
def test_bad_thread_count_is_one_line(pair, tmp_path, capsys, monkeypatch, value):
    monkeypatch.setenv("MEDFUSION_THREADS", value)
    out = tmp_path / "fused.nii.gz"
    code, _, err = run(capsys, "fuse", *pair, "-o", out)
    assert code == 2
    assert err == f"medfusion: error: MEDFUSION_THREADS={value!r} is not a positive whole number of threads\n"
    assert not out.exists()


def _weights_dir_with(tmp_path: Path, name: str, graph: bytes) -> Path:
    folder = tmp_path / "weights"
    folder.mkdir()
    shutil.copy(weight_path(name), folder / f"{name}.pt")
    (folder / f"{name}.onnx").write_bytes(graph)
    return folder


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_corrupted_onnx_graph_is_one_line(pair, tmp_path, capsys, monkeypatch, damage):
    good = weight_path("fusion-unet", ".onnx").read_bytes()
    graph = {"garbage": b"not an onnx graph" * 100, "truncated": good[: len(good) // 2], "empty": b""}[damage]
    monkeypatch.setenv("MEDFUSION_WEIGHTS_DIR", str(_weights_dir_with(tmp_path, "fusion-unet", graph)))
    out = tmp_path / "fused.nii.gz"
    code, _, err = run(capsys, "fuse", *pair, "-o", out)
    assert code == 2
    errors = [line for line in err.splitlines() if line.startswith("medfusion: error")]  # notes may precede it
    assert len(errors) == 1 and "not a readable ONNX graph" in errors[0] and "Traceback" not in err
    assert not out.exists()


def test_sessions_are_cached_by_resolved_path(tmp_path, monkeypatch):
    """Two folders holding a graph of the same name give two sessions; a link to the same file gives the same one."""
    other = _weights_dir_with(tmp_path, "max-residual-cnn", weight_path("fusion-unet", ".onnx").read_bytes())
    shipped = onnx_runtime.load_session("max-residual-cnn")
    monkeypatch.setenv("MEDFUSION_WEIGHTS_DIR", str(other))
    assert onnx_runtime.load_session("max-residual-cnn") is not shipped
    link = tmp_path / "link.onnx"
    os.symlink(other / "max-residual-cnn.onnx", link)
    assert onnx_runtime.load_session("x", link) is onnx_runtime.load_session("max-residual-cnn")


def test_truncated_weights_file_is_one_line(tmp_path):
    torch_runtime = pytest.importorskip("MedFusionLib.inference.runtime")
    path = tmp_path / "fusion-unet.pt"
    data = weight_path("fusion-unet").read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(MedFusionError, match="not a readable MedFusion weight file") as info:
        torch_runtime.load_network("fusion-unet", str(path))
    assert "\n" not in str(info.value)


def test_networks_are_cached_by_resolved_path(tmp_path):
    torch_runtime = pytest.importorskip("MedFusionLib.inference.runtime")
    copy = tmp_path / "fusion-unet.pt"
    shutil.copy(weight_path("max-residual-cnn"), copy)  # another network under the same name
    shipped = torch_runtime.load_network("fusion-unet")
    other = torch_runtime.load_network("fusion-unet", str(copy))
    assert type(other).__name__ == "MaxResidualCNN" and type(shipped).__name__ == "FusionUNet"
    assert torch_runtime.load_network("fusion-unet", str(weight_path("fusion-unet"))) is shipped


def test_onnxruntime_runs_without_telemetry_or_temporary_files(tmp_path):
    """ONNX Runtime's official wheels start a telemetry uploader on import (and leave a ``.ses`` file in the
    temporary folder) unless ``ORT_DISABLE_TELEMETRY=1`` is set first: the library sets it."""
    env = {k: v for k, v in os.environ.items() if k != "ORT_DISABLE_TELEMETRY"}
    env["TMPDIR"] = str(tmp_path)
    script = (
        "import os, numpy as np\nfrom MedFusionLib.inference import onnx_runtime\n"
        "onnx_runtime.fuse_2d('max-residual-cnn', np.random.rand(2, 1, 16, 16).astype(np.float32), 'slice')\n"
        "print(os.environ['ORT_DISABLE_TELEMETRY'])\n"
    )
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.split() == ["1"]
    assert list(tmp_path.iterdir()) == []
