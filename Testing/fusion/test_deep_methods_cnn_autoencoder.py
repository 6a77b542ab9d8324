"""Deep fusion methods: registry, shipped weights by name, both modes, tiling, determinism, consistency."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from synthetic import phantom_inputs

from MedFusionLib.fusion import available_methods, fuse_arrays
from MedFusionLib.fusion.consistency import through_plane_consistency
from MedFusionLib.fusion.methods import max_residual_cnn
from MedFusionLib.inference.runtime import load_network, run_tiled_3d, weight_path
from MedFusionLib.networks import DenseFuseLite, IFCNNReference, MaxResidualCNN

DEEP = ("max-residual-cnn",)


def _phantom(shape, seed=0):
    return phantom_inputs(shape, seed)[:2]


def test_registered_with_families_and_modes():
    names = {m.name: m for m in available_methods()}
    assert names["max-residual-cnn"].family == "cnn"
    assert "densefuse-lite" not in names  # retired (issue 10): its encoder serves deep-feature-weighting only
    for name in DEEP:
        assert names[name].modes == ["slice", "volume"] and names[name].volume_note


@pytest.mark.parametrize("name", ["max-residual-cnn", "max-residual-cnn-3d", "densefuse-lite"])
def test_shipped_weights_are_compact_and_load_by_name(name):
    path = weight_path(name)
    assert path.exists() and path.stat().st_size < 200_000
    assert path.with_suffix(".md").exists()  # model card
    net = load_network(name)
    assert load_network(name) is net  # loaded once
    assert not net.training and net.meta["method"] == name


@pytest.mark.parametrize("name", DEEP)
def test_slice_mode_shapes_range_and_black_background(name):
    a, b = _phantom((64, 64))
    fused = fuse_arrays([a, b], name)
    assert fused.shape == (64, 64) and fused.dtype == np.float32
    assert 0 <= fused.min() and fused.max() <= 1
    background = (a == 0) & (b == 0)
    assert fused[background].mean() < 0.02  # no grey veil
    inside = b > 0.8
    assert fused[inside].mean() > 0.6  # bright structure (e.g. PET uptake) kept
    assert np.array_equal(fused, fuse_arrays([a, b], name))  # deterministic


@pytest.mark.parametrize("name", DEEP)
@pytest.mark.parametrize("mode,axis", [("slice", 0), ("slice", 2), ("volume", 0)])
def test_volume_inputs_both_modes(name, mode, axis):
    a, b = _phantom((20, 40, 36))
    fused = fuse_arrays([a, b], name, mode=mode, axis=axis)
    assert fused.shape == a.shape and np.isfinite(fused).all()
    assert fused[(a == 0) & (b == 0)].mean() < 0.03
    assert np.array_equal(fused, fuse_arrays([a, b], name, mode=mode, axis=axis))


def test_tiled_3d_equals_whole_volume():
    net = load_network("max-residual-cnn-3d")
    a, b = _phantom((19, 23, 21))
    stack = np.stack([a, b])
    fwd = lambda x: net(x)  # noqa: E731
    whole = run_tiled_3d(fwd, stack, halo=net.receptive_radius + 1, tile=64)
    tiled = run_tiled_3d(fwd, stack, halo=net.receptive_radius + 1, tile=8)
    np.testing.assert_allclose(tiled, whole, atol=1e-5)


def test_selectable_rules_and_strategies():
    a, b = _phantom((32, 32))
    stack = np.stack([a, b])[:, None]
    outs = [max_residual_cnn.fuse(stack, rule=r) for r in ("max", "mean", "sum")]
    assert all(o.shape == (1, 32, 32) for o in outs) and not np.array_equal(outs[0], outs[1])


def test_networks_configurable_2d_3d_and_reference_cost():
    x2 = torch.rand(2, 3, 1, 16, 16)
    x3 = torch.rand(2, 1, 1, 8, 8, 8)
    for cls in (MaxResidualCNN, DenseFuseLite):
        assert cls(spatial_dims=2)(x2).shape == (3, 1, 16, 16)
        assert cls(spatial_dims=3)(x3).shape == (1, 1, 8, 8, 8)
    assert MaxResidualCNN(residual=True)(x2).allclose(x2.amax(0))  # untrained residual head = max fusion
    assert sum(p.numel() for p in IFCNNReference().parameters()) == 83_587  # the published IFCNN's size
    assert IFCNNReference().eval()(x2).shape == (3, 1, 16, 16)


def test_through_plane_consistency_sanity():
    a, b = _phantom((24, 32, 32))
    same = through_plane_consistency(a, [a])
    assert same["ratio"] == pytest.approx(1.0) and same["anisotropy"] == pytest.approx(1.0, abs=0.3)
    assert through_plane_consistency(np.maximum(a, b), [a, b])["ratio"] <= 1.0 + 1e-6
    rng = np.random.default_rng(0)
    a2, b2 = _phantom((32, 32))
    a, b = np.repeat(a2[None], 24, axis=0), np.repeat(b2[None], 24, axis=0)  # smooth along axis 0
    seams = np.maximum(a, b) * rng.uniform(0.6, 1.0, size=(24, 1, 1)).astype(np.float32)  # per-slice flicker
    res = through_plane_consistency(seams, [a, b], axis=0)
    assert res["ratio"] > 1.0 and res["anisotropy"] > 1.5
    with pytest.raises(ValueError):
        through_plane_consistency(a[0], [a[0]])
