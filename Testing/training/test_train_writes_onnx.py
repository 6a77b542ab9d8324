"""``medfusion train`` writes the ONNX graphs of what it trained beside the weights in ``--out``, and they run in
ONNX Runtime with the trained network's numbers (the fusion methods run these graphs, not the ``.pt``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from synthetic import SHORT_TRAIN

torch = pytest.importorskip("torch")  # training needs the 'train' extra

from MedFusionLib.apps.cli import main
from MedFusionLib.inference import onnx_runtime, runtime
from MedFusionLib.inference.onnx_export import GRAPHS, PARITY_TOLERANCE, graphs_of


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
def test_train_writes_graphs_that_run_in_onnxruntime(method, expected, grey_pairs, tmp_path, capsys):
    out = tmp_path / "w.pt"
    argv = ["train", method, "--data", str(grey_pairs), "--out", str(out), "--json", *SHORT_TRAIN]
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
