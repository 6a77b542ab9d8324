"""The default deep method: FusionUNet (network) and fusion-unet (method glue, both modes, registry fields)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from synthetic import phantom_inputs

from MedFusionLib.fusion import describe_methods, fuse_arrays, get_method
from MedFusionLib.inference.runtime import load_network, weight_path
from MedFusionLib.networks import FusionUNet, build_network


def _phantom(shape, seed=0):
    return phantom_inputs(shape, seed)[:2]


@pytest.mark.parametrize("full_res_channels", [0, 4])
@pytest.mark.parametrize("n_inputs,h,w", [(2, 64, 64), (2, 37, 50), (3, 17, 9)])
def test_network_shapes_any_size_and_input_count(n_inputs, h, w, full_res_channels):
    net = FusionUNet(full_res_channels=full_res_channels).eval()
    out = net(torch.rand(n_inputs, 3, 1, h, w))
    assert out.shape == (3, 1, h, w)


def test_network_has_real_capacity():
    assert sum(p.numel() for p in FusionUNet().parameters() if p.requires_grad) >= 10_000
    shipped = load_network("fusion-unet")
    assert sum(p.numel() for p in shipped.parameters()) >= 10_000
    assert isinstance(shipped, FusionUNet)


@pytest.mark.parametrize("full_res_channels", [0, 4])
def test_no_fixed_rule_bypass(full_res_channels):
    """With every weight zero the output is a constant: nothing carries the inputs (e.g. their max) to the output."""
    net = FusionUNet(full_res_channels=full_res_channels).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
    x = torch.rand(2, 2, 1, 32, 32)
    out = net(x)
    assert torch.count_nonzero(out) == 0
    assert not torch.allclose(out, x.amax(0))


def test_shipped_network_is_not_max_plus_small_residual():
    a, b = _phantom((96, 96))
    fused = fuse_arrays([a, b], "fusion-unet")
    assert np.abs(fused - np.maximum(a, b)).mean() * 255 > 1.0  # its own image, not max with dithering


@pytest.mark.parametrize("full_res_channels", [0, 4])
def test_symmetric_in_input_order(full_res_channels):
    net = FusionUNet(full_res_channels=full_res_channels).eval()
    x = torch.rand(2, 1, 1, 24, 24)
    torch.testing.assert_close(net(x), net(x.flip(0)))


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(channels=(8, 16, 32)),
        dict(decoder_channels=(8, 8)),
        dict(channels=(8, 0, 16, 16)),
        dict(stage_depth=(0, 1)),
        dict(stage_depth=(0, -1, 1)),
        dict(patch=0),
        dict(full_res_channels=-1),
    ],
)
def test_argument_checks(kwargs):
    with pytest.raises(ValueError):
        FusionUNet(**kwargs)


def test_forward_checks_input_layout():
    with pytest.raises(ValueError):
        FusionUNet()(torch.rand(2, 1, 16, 16))


def test_build_network_by_name():
    net = build_network("FusionUNet", dict(channels=(8, 8, 8, 8), decoder_channels=(8, 8, 8)))
    assert isinstance(net, FusionUNet) and net.channels == (8, 8, 8, 8)


def test_weights_compact_with_model_card():
    path = weight_path("fusion-unet")
    assert path.exists() and path.stat().st_size < 300_000
    card = path.with_suffix(".md").read_text(encoding="utf-8")
    assert "medfusion train fusion-unet" in card and "FusionUNet" in card
    assert load_network("fusion-unet").meta["method"] == "fusion-unet"


def test_slice_mode_background_uptake_determinism():
    a, b = _phantom((64, 64))
    fused = fuse_arrays([a, b], "fusion-unet")
    assert fused.shape == (64, 64) and fused.dtype == np.float32 and 0 <= fused.min() and fused.max() <= 1
    assert fused[(a == 0) & (b == 0)].mean() < 0.02  # no grey veil
    assert fused[b > 0.8].mean() > 0.6  # bright (uptake-like) structure kept
    assert np.array_equal(fused, fuse_arrays([a, b], "fusion-unet"))


@pytest.mark.parametrize("mode,axis", [("slice", 0), ("slice", 2), ("volume", 0)])
def test_both_modes_on_volumes(mode, axis):
    a, b = _phantom((20, 40, 36))
    fused = fuse_arrays([a, b], "fusion-unet", mode=mode, axis=axis)
    assert fused.shape == a.shape and np.isfinite(fused).all()
    assert fused[(a == 0) & (b == 0)].mean() < 0.03
    assert fused[b > 0.8].mean() > 0.5


def test_three_inputs():
    a, b = _phantom((48, 48))
    c = np.rot90(a).copy()
    fused = fuse_arrays([a, b, c], "fusion-unet")
    assert fused.shape == a.shape and fused[b > 0.8].mean() > 0.5


def test_registry_paper_and_parameters():
    rows = {m["name"]: m for m in describe_methods(with_parameters=True)}
    assert rows["fusion-unet"]["parameters"] == sum(p.numel() for p in load_network("fusion-unet").parameters())
    assert "U-Net" in rows["fusion-unet"]["paper"]
    for classical in ("max", "mean", "guided-filter", "laplacian"):
        assert rows[classical]["parameters"] == 0 and rows[classical]["paper"] == ""
    for name, row in rows.items():
        if get_method(name).family != "classical":
            assert row["paper"], name
    assert "parameters" not in describe_methods()[0]  # listing without torch stays cheap


def test_differentiable_vif_matches_the_metric_and_loss_options():
    from MedFusionLib.metrics import compute_metrics
    from MedFusionLib.training.losses import FusionLoss, visual_information_fidelity

    a, b = _phantom((80, 72), seed=2)
    f = np.clip(0.6 * a + 0.6 * b, 0, 1).astype(np.float32)
    t = lambda x: torch.from_numpy(x)[None, None]  # noqa: E731
    ours = float(visual_information_fidelity(t(f), t(a)) + visual_information_fidelity(t(f), t(b)))
    metric = compute_metrics([a * 255.0, b * 255.0], f * 255.0, keys=["VIF"])["VIF"]
    assert ours == pytest.approx(metric, rel=1e-3)
    fused = torch.rand(2, 1, 32, 32, requires_grad=True)
    sources = torch.rand(2, 2, 1, 32, 32)
    FusionLoss(w_vif=1.0, grad_gain=1.25)(fused, sources).backward()
    assert torch.isfinite(fused.grad).all() and fused.grad.abs().sum() > 0
    with pytest.raises(ValueError):
        FusionLoss(grad_gain=0.0)


def test_batch_pooled_vif_is_not_carried_by_a_flat_crop():
    """Per-crop VIF ratios explode on a nearly flat crop (no source information); the batch-pooled term does not."""
    from MedFusionLib.training.losses import FusionLoss, vif_terms

    rng = np.random.default_rng(0)
    textured = torch.from_numpy(rng.random((1, 1, 48, 48), dtype=np.float32))
    flat = 0.002 + 0.0005 * torch.from_numpy(rng.random((1, 1, 48, 48), dtype=np.float32))
    source = torch.cat([textured, flat])
    fused = torch.cat([textured, 0.002 + 40 * (flat - 0.002)])  # the flat crop's faint noise amplified 40 times
    num, den = vif_terms(fused, source)
    per_crop = num / (den + 1e-6)
    assert float(per_crop[1]) > 10 * float(per_crop[0])  # the flat crop's ratio dominates a per-crop mean
    pooled = float(num.sum() / (den.sum() + 1e-6))
    assert pooled < 1.5 * float(per_crop[0])
    sources = source[None].expand(2, -1, -1, -1, -1)
    item, batch = FusionLoss(w_vif=1.0), FusionLoss(w_vif=1.0, vif_pool="batch")
    assert float(batch(fused, sources)) > float(item(fused, sources))  # the per-crop mean rewards the amplified noise
    with pytest.raises(ValueError):
        FusionLoss(vif_pool="pixel")
