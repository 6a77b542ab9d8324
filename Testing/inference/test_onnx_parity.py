"""Every exported network: ONNX Runtime's output equals torch's to 1e-4, in slice and volume mode, on real slices
and volumes (``../shared/data``) or, without them, on the synthetic phantom."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

torch = pytest.importorskip("torch")  # the parity tests need the torch weights (the 'train' extra)

from synthetic import phantom_inputs

from MedFusionLib.inference import batching, onnx_runtime, runtime
from MedFusionLib.inference.onnx_export import GRAPHS, PARITY_TOLERANCE

SHARED_DATA = Path(os.environ.get("MEDFUSION_SHARED", Path(__file__).resolve().parents[2].parent / "shared")) / "data"
NETWORKS_2D = [name for name, spec in GRAPHS.items() if spec.spatial_dims == 2 and spec.part is None]
PART_METHODS = ["decision-map-cnn", "deep-feature-weighting", "deep-features", "liu-cnn", "chartsias"]


@pytest.fixture(autouse=True)
def float32_torch(monkeypatch):
    """torch in float32 (bf16 autocast on CPUs with native bf16 would be compared, not the graph)."""
    monkeypatch.setenv("MEDFUSION_PRECISION", "float32")


def _slices() -> np.ndarray:
    """(2, 2, H, W): two real CT-MRI slice pairs (Harvard atlas, 256 x 256), else a phantom pair's middle slices."""
    pair_dir = SHARED_DATA / "harvard" / "CT-MRI"
    if pair_dir.is_dir():
        names = sorted(p.name for p in (pair_dir / "CT").glob("*.png"))[:2]
        read = lambda kind, name: sitk.GetArrayFromImage(sitk.ReadImage(str(pair_dir / kind / name), sitk.sitkFloat32))  # noqa: E731
        return np.stack([[read(kind, n)[..., :256, :256] / 255.0 for n in names] for kind in ("CT", "MRI")]).astype(
            np.float32
        )
    a, b = (v[3:5] for v in phantom_inputs((9, 96, 80))[:2])  # two slices through the middle of the ball
    return np.stack([a, b])


def _volume(shape=(40, 48, 44)) -> np.ndarray:
    """(2, D, H, W): a centre block of the SPM T1 and PET templates scaled to 0..1, else the phantom."""
    spm = SHARED_DATA / "volumes" / "spm"
    if (spm / "T1.nii.gz").is_file():
        arrays = [
            sitk.GetArrayFromImage(sitk.ReadImage(str(spm / f), sitk.sitkFloat32)) for f in ("T1.nii.gz", "PET.nii.gz")
        ]
        out = []
        for a in arrays:
            start = [(n - s) // 2 for n, s in zip(a.shape, shape)]
            block = a[tuple(slice(b, b + s) for b, s in zip(start, shape))]
            out.append(np.clip(np.nan_to_num(block) / max(float(np.nanmax(a)), 1e-6), 0, 1))
        return np.stack(out).astype(np.float32)
    return np.stack(phantom_inputs(shape)[:2])


def _torch_2d(name: str, stack: np.ndarray, mode: str) -> np.ndarray:
    return runtime.fuse_with_2d_network(name, stack, mode)


@pytest.mark.parametrize("mode", ["slice", "volume"])
@pytest.mark.parametrize("name", NETWORKS_2D)
def test_onnx_equals_torch_for_2d_networks(name, mode):
    stack = _slices() if mode == "slice" else _volume((24, 40, 36))
    expected = _torch_2d(name, stack, mode)
    got = onnx_runtime.fuse_2d(name, stack, mode)
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() <= PARITY_TOLERANCE
    assert expected.std() > 0.01  # a real image, not a constant that any graph would match


def test_onnx_equals_torch_for_the_3d_network():
    stack = _volume()
    net = runtime.load_network("max-residual-cnn-3d")
    halo = net.receptive_radius + 1
    expected = runtime.run_tiled_3d(net, stack, halo=halo, tile=24)
    got = batching.run_tiled_3d(onnx_runtime.network_forward("max-residual-cnn-3d"), stack, halo=halo, tile=24)
    assert np.abs(got - expected).max() <= PARITY_TOLERANCE
    assert expected.std() > 0.01


def test_graphs_take_any_number_of_inputs_and_odd_sides():
    """FusionUNet's graph keeps the number of inputs dynamic, and odd sides are padded as torch pads them."""
    three = np.stack(phantom_inputs((3, 67, 51)))
    expected = _torch_2d("fusion-unet", three, "slice")
    assert np.abs(onnx_runtime.fuse_2d("fusion-unet", three, "slice") - expected).max() <= PARITY_TOLERANCE


def test_every_exported_graph_is_shipped_and_matches_its_weights():
    """Each graph's metadata names the sha256 of the weights it was exported from: a retrained ``.pt`` without
    ``medfusion export`` fails here."""
    import hashlib

    for name, spec in GRAPHS.items():
        meta = onnx_runtime.graph_metadata(name)
        weights = runtime.weight_path(spec.source(name)).read_bytes()
        assert meta["medfusion.weights_sha256"] == hashlib.sha256(weights).hexdigest(), name


def _torch_method(name: str, stack: np.ndarray, mode: str) -> np.ndarray:
    """The torch computation each ONNX method replaced (networks in torch, post-processing in torch)."""
    from MedFusionLib.inference import liu_cnn, weight_blending
    from MedFusionLib.inference.export_parts import deep_features_rule
    from MedFusionLib.networks import layers

    if name == "decision-map-cnn":
        net = runtime.load_network(name)
        if mode == "slice":
            return runtime.run_slices(net, stack)
        weights = weight_blending.triplanar_weights(lambda x: net.weight_maps(x, smooth=False), stack)
        return weight_blending.blend_volume(stack, weights, net.smooth_sigma, net.levels)
    if name == "deep-feature-weighting":
        weight_fn = weight_blending.activity_weight_fn(runtime.load_network("densefuse-lite"))
        if mode == "slice":
            blend = lambda x: layers.laplacian_blend(x, layers.smooth_weights(weight_fn(x), 1.0), 4)  # noqa: E731
            return runtime.run_slices(blend, stack)
        return weight_blending.blend_volume(stack, weight_blending.triplanar_weights(weight_fn, stack), 1.0, 4)
    if name == "deep-features":
        net = runtime.load_network("densefuse")
        with runtime.torch_context():
            forward = runtime.numpy_forward(lambda x: deep_features_rule(net, x))
            return batching.run_2d(forward, stack, mode, 1 << 18)
    if name == "liu-cnn":
        return liu_cnn.fuse(stack, mode, name, weights="decision", envelope=True)
    return runtime.fuse_with_2d_network("chartsias", stack, mode, modalities=_modalities(stack))


def _modalities(stack: np.ndarray) -> tuple[str, ...]:
    return ("ct", "mr", "pet")[: stack.shape[0]]


def _onnx_method(name: str, stack: np.ndarray, mode: str) -> np.ndarray:
    """The method as ``medfusion fuse`` runs it (its ``fuse``: graphs in ONNX Runtime, numpy around them)."""
    from MedFusionLib.fusion.registry import get_method

    method = get_method(name)
    run = method.fuse_slices if mode == "slice" else method.fuse_volume
    assert run is not None
    return run(stack, _modalities(stack)) if method.uses_modalities else run(stack)


@pytest.mark.parametrize("mode", ["slice", "volume"])
@pytest.mark.parametrize("name", PART_METHODS)
def test_onnx_methods_equal_their_torch_computation(name, mode):
    """The five methods whose network parts are graphs and whose post-processing moved to numpy."""
    stack = _slices() if mode == "slice" else _volume((24, 40, 36))
    expected = _torch_method(name, stack, mode)
    got = _onnx_method(name, stack, mode)
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() <= PARITY_TOLERANCE
    assert expected.std() > 0.01


@pytest.mark.parametrize("name", PART_METHODS)
def test_onnx_methods_on_generated_inputs_with_odd_sides(name):
    """Without ../shared: phantom inputs with odd sides (padding, pyramid levels), three inputs where the method
    takes any number, two for liu-cnn."""
    n = 2 if name == "liu-cnn" else 3
    stack = np.stack(phantom_inputs((3, 67, 51))[:n])
    expected = _torch_method(name, stack, "slice")
    assert np.abs(_onnx_method(name, stack, "slice") - expected).max() <= PARITY_TOLERANCE
    assert expected.std() > 0.01
