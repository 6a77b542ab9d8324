"""Deep fusion part 2: decision-map and deep-feature methods; N >= 3 fusion; part-2 training (the GAN family,
``ddcgan``, is tested in ``test_ddcgan.py``, the multi-encoder family's ``chartsias`` in ``test_chartsias.py``)."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from synthetic import phantom_inputs, quick_train

from MedFusionLib.core.errors import MedFusionError
from MedFusionLib.fusion import available_methods, fuse_arrays
from MedFusionLib.inference.runtime import load_network, weight_path
from MedFusionLib.networks import build_network
from MedFusionLib.networks.decision_map import DecisionMapNet
from MedFusionLib.networks.layers import laplacian_blend
from MedFusionLib.pipeline import fuse_images

FAMILIES = {
    "decision-map-cnn": "decision-map",
    "deep-feature-weighting": "feature-extraction",
}
N_INPUT = ("decision-map-cnn", "deep-feature-weighting")
SHIPPED = ("decision-map-cnn",)


def _phantom(shape, seed=0):
    return phantom_inputs(shape, seed)


def test_registered_with_families_modes_and_inputs():
    methods = {m.name: m for m in available_methods()}
    for name, family in FAMILIES.items():
        m = methods[name]
        assert m.family == family and m.modes == ["slice", "volume"] and m.volume_note
        assert m.accepts(2) and m.accepts(3) == (name in N_INPUT)


@pytest.mark.parametrize("name", SHIPPED + ("densefuse-lite",))
def test_weights_compact_with_model_card(name):
    path = weight_path(name)
    assert path.exists() and path.stat().st_size < 200_000 and path.with_suffix(".md").exists()
    net = load_network(name)
    assert load_network(name) is net and not net.training


@pytest.mark.parametrize("name", list(FAMILIES))
def test_slice_mode_shapes_background_uptake_determinism(name):
    a, b, _ = _phantom((64, 64))
    fused = fuse_arrays([a, b], name)
    assert fused.shape == (64, 64) and fused.dtype == np.float32 and 0 <= fused.min() and fused.max() <= 1
    assert fused[(a == 0) & (b == 0)].mean() < 0.02  # no grey veil
    assert fused[b > 0.8].mean() > 0.6  # hot spot (PET uptake) kept
    assert np.array_equal(fused, fuse_arrays([a, b], name))


@pytest.mark.parametrize("name", list(FAMILIES))
def test_volume_mode_and_slice_axes(name):
    a, b, _ = _phantom((16, 28, 24))
    for mode, axis in (("volume", 0), ("slice", 2)):
        fused = fuse_arrays([a, b], name, mode=mode, axis=axis)
        assert fused.shape == a.shape and np.isfinite(fused).all()
        assert fused[(a == 0) & (b == 0)].mean() < 0.03
    vol = fuse_arrays([a, b], name, mode="volume")
    assert np.array_equal(vol, fuse_arrays([a, b], name, mode="volume"))


@pytest.mark.parametrize("name", N_INPUT)
def test_three_inputs_through_the_pipeline(name):
    vols = _phantom((12, 24, 20))
    images = [sitk.GetImageFromArray(v * 1000.0) for v in vols]
    result = fuse_images(images, method=name)
    fused = result.fused_array
    assert fused.shape == vols[0].shape and np.isfinite(fused).all()
    assert len(result.sources) == 3
    with pytest.raises(MedFusionError):
        fuse_images(images, method="ddcgan")  # the GAN is a two-source design


def test_weight_map_methods_stay_inside_the_sources_envelope():
    vols = [v[None] for v in _phantom((48, 48))]  # 3 inputs, one slice each
    stack = np.stack(vols)
    for name in ("decision-map-cnn", "deep-feature-weighting"):
        fused = fuse_arrays([v[0] for v in vols], name)
        assert (fused >= stack.min(axis=0)[0] - 1e-6).all() and (fused <= stack.max(axis=0)[0] + 1e-6).all()


def test_networks_2d_3d_and_initial_behaviour():
    x2 = torch.rand(3, 2, 1, 32, 32)
    x3 = torch.rand(2, 1, 1, 16, 16, 16)
    assert DecisionMapNet(spatial_dims=2)(x2).shape == (2, 1, 32, 32)
    assert DecisionMapNet(spatial_dims=3)(x3).shape == (1, 1, 16, 16, 16)
    w = torch.softmax(torch.rand(3, 2, 1, 32, 32), dim=0)
    same = torch.rand(1, 2, 1, 32, 32).expand(3, -1, -1, -1, -1)
    assert laplacian_blend(same, w).allclose(same[0], atol=1e-6)  # blending identical sources returns them
    assert build_network("DecisionMapNet", {"channels": 4}).head[-1].out_channels == 1


# ------------------------------------------------------------------ tiny trainings on generated data
def _fake_harvard(root):
    from PIL import Image

    rng = np.random.default_rng(0)
    for pair in ("CT-MRI", "PET-MRI", "SPECT-MRI"):
        first, second = pair.split("-")
        for folder in (first, second):
            (root / "harvard" / pair / folder).mkdir(parents=True, exist_ok=True)
        for case in (1, 2, 3, 4):
            for sl in (1, 2):
                a, b, _ = _phantom((48, 48), seed=case * 10 + sl)
                shift = rng.integers(-3, 4)
                Image.fromarray((np.roll(b, shift, axis=1) * 255).astype(np.uint8)).save(
                    root / "harvard" / pair / first / f"{case}{sl:03d}.png"
                )
                Image.fromarray((a * 255).astype(np.uint8)).save(
                    root / "harvard" / pair / second / f"{case}{sl:03d}.png"
                )
    return root


def test_tiny_training_through_medfusion_train(tmp_path):
    method = "decision-map-cnn"
    data = _fake_harvard(tmp_path / "data")
    out = tmp_path / f"{method}.pt"
    result = quick_train(method, data, tmp_path, config_overrides={"channels": 4})
    assert out.exists() and out.with_suffix(".md").exists() and (tmp_path / f"ck-{method}" / "last.pt").exists()
    assert np.isfinite(result["final"]["loss"]) and "val_loss" in result["final"]
    net = load_network(method, str(out))
    assert net(torch.rand(2, 1, 1, 32, 32)).shape == (1, 1, 32, 32)
    again = quick_train(method, data, tmp_path, "again", config_overrides={"channels": 4})
    assert again["final"]["loss"] == result["final"]["loss"]  # seeded, deterministic
