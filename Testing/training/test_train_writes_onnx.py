"""``medfusion train`` writes the ONNX graphs of what it trained beside the weights in ``--out``, and they run in
ONNX Runtime with the trained network's numbers (the fusion methods run these graphs, not the ``.pt``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

torch = pytest.importorskip("torch")  # training needs the 'train' extra

from MedFusionLib.apps.cli import main
from MedFusionLib.inference import onnx_runtime, runtime
from MedFusionLib.inference.onnx_export import GRAPHS, PARITY_TOLERANCE, graphs_of

SHORT = ["--epochs", "1", "--steps-per-epoch", "1", "--batch", "2", "--threads", "1", "--validate-every", "9"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """A Harvard-like tree of grey CT-MRI slices (3 cases x 2 slices): enough for a one-step 2-D run."""
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(1)
    for modality in ("CT", "MRI"):
        (root / "harvard" / "CT-MRI" / modality).mkdir(parents=True)
    for case in ("2", "16", "20"):
        for s in range(2):
            for modality in ("CT", "MRI"):
                img = (rng.random((40, 40)) * 255).astype(np.uint8)
                sitk.WriteImage(
                    sitk.GetImageFromArray(img), str(root / "harvard" / "CT-MRI" / modality / f"{case}{s:03d}.png")
                )
    return root


def _input(graph: str) -> np.ndarray:
    spec = GRAPHS[graph]
    rng = np.random.default_rng(0)
    shape = (2, spec.channels, 32, 48) if spec.channels else (spec.inputs or 2, 2, 1, 32, 48)
    return rng.random(shape, dtype=np.float32)


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        ("decision-map-cnn", ["w.onnx"]),
        ("densefuse", ["w-deep-features.onnx", "w.onnx"]),  # its own graph and deep-features' rule
    ],
)
def test_train_writes_graphs_that_run_in_onnxruntime(method, expected, data_dir, tmp_path, capsys):
    out = tmp_path / "w.pt"
    argv = ["train", method, "--data", str(data_dir), "--out", str(out), "--json", *SHORT]
    argv += ["--checkpoint-dir", str(tmp_path / "ck")]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    graphs = sorted(Path(p).name for p in result["onnx"])
    assert graphs == expected
    assert all((tmp_path / name).is_file() for name in graphs)
    net = runtime.load_network(method, str(out))
    for graph in graphs_of(method):
        path = tmp_path / ("w" + graph[len(method) :] + ".onnx" if graph.startswith(method) else f"w-{graph}.onnx")
        session = onnx_runtime.load_session(graph, path)
        x = _input(graph)
        got = session.run([onnx_runtime.OUTPUT_NAME], {onnx_runtime.INPUT_NAME: x})[0]
        spec = GRAPHS[graph]
        module = spec.part(net) if spec.part else net
        with torch.no_grad():
            want = module(torch.from_numpy(x)).numpy()
        assert got.shape == want.shape and np.isfinite(got).all()
        assert np.abs(got - want).max() <= PARITY_TOLERANCE, graph
        assert float(np.abs(want).max()) > 0  # the trained network's output, not an empty graph's
