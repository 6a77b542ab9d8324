"""IFCNN and DenseFuse at their published architectures: sizes, layers, rules, argument checks, both modes,
shipped weights with model cards, and a tiny run of their training recipes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from synthetic import phantom_inputs, quick_train

from MedFusionLib.fusion import available_methods, fuse_arrays
from MedFusionLib.fusion.methods import densefuse, ifcnn
from MedFusionLib.inference.export_parts import deep_features_rule
from MedFusionLib.inference.runtime import load_network, weight_path
from MedFusionLib.networks import IFCNN, DenseFuse, build_network

PUBLISHED = ("ifcnn", "densefuse")


def _count(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def _pair(shape, seed=0):
    return phantom_inputs(shape, seed)[:2]


def test_ifcnn_layers_and_parameter_count_match_the_paper():
    net = IFCNN()
    assert net.conv1.kernel_size == (7, 7) and net.conv1.out_channels == 64 and net.conv1.bias is None
    assert [type(m).__name__ for m in net.conv2] == ["Conv2d", "BatchNorm2d", "ReLU"]
    assert net.conv4.kernel_size == (1, 1)
    assert _count(IFCNN(in_channels=3)) == 83_587  # the authors' RGB release, layer for layer
    assert _count(net) == 77_185 and abs(_count(net) / 83_587 - 1) < 0.2  # grey: within +-20 %


def test_densefuse_layers_and_parameter_count_match_the_paper():
    net = DenseFuse()
    assert _count(net) == 74_193  # the paper's ~74k
    assert [layer[0].in_channels for layer in net.dense] == [16, 32, 48]
    assert [m.out_channels for m in net.decoder if isinstance(m, torch.nn.Conv2d)] == [64, 32, 16, 1]
    assert net.encode(torch.rand(2, 1, 12, 12)).shape == (2, 64, 12, 12)


def test_paper_parameters_are_the_papers_networks_counted():
    """Each registered ``paper_parameters`` is the count of the paper's network built from our code, and no
    description claims the published architecture where the shipped count differs from it."""
    from MedFusionLib.networks import DDcGANGenerator, LiuSiameseCNN, ModalityEncoderMaxFusion

    methods = {m.name: m for m in available_methods()}
    papers = {
        "ifcnn": IFCNN(),
        "densefuse": DenseFuse(),
        "ddcgan": DDcGANGenerator(),
        "liu-cnn": LiuSiameseCNN(rank=0),
        "chartsias": ModalityEncoderMaxFusion(width=32, decoder_width=32),
    }
    for name, net in papers.items():
        assert methods[name].paper_parameters == _count(net), name
    for m in methods.values():
        if "published architecture" in m.description or "published architecture" in m.paper:
            assert m.paper_parameters == m.parameter_count(), m.name


def test_rules_strategies_and_spatial_dims():
    x2, x3 = torch.rand(2, 3, 1, 16, 16), torch.rand(3, 1, 1, 8, 8, 8)
    with torch.no_grad():
        for net in (IFCNN().eval(), DenseFuse().eval()):
            assert net(x2).shape == (3, 1, 16, 16)
        assert IFCNN(spatial_dims=3).eval()(x3).shape == (1, 1, 8, 8, 8)
        assert DenseFuse(spatial_dims=3).eval()(x3).shape == (1, 1, 8, 8, 8)
        outs = [IFCNN().eval()(x2, rule) for rule in ("max", "mean", "sum")]
        assert not torch.equal(outs[0], outs[1]) and not torch.equal(outs[1], outs[2])
        d = DenseFuse().eval()
        assert not torch.equal(d(x2, "addition"), d(x2, "l1"))
        feats = torch.rand(2, 1, 64, 4, 4)
        assert torch.allclose(d.fuse_features(feats, "addition"), feats.sum(0))
        same = torch.stack([feats[0], feats[0]])
        assert torch.allclose(d.fuse_features(same, "l1"), feats[0], atol=1e-6)  # equal activity: equal weights


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: IFCNN(spatial_dims=1), "spatial_dims"),
        (lambda: IFCNN(rule="median"), "fusion rule"),
        (lambda: IFCNN(channels=0), "positive integer"),
        (lambda: DenseFuse(strategy="max"), "strategy"),
        (lambda: DenseFuse(spatial_dims=4), "spatial_dims"),
        (lambda: DenseFuse(l1_radius=-1), "non-negative"),
    ],
)
def test_arguments_are_checked_in_init(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_registered_with_paper_references():
    methods = {m.name: m for m in available_methods()}
    assert (
        methods["deep-features"].family == "feature-extraction"
        and "ICPR 2018" in methods["deep-features"].references[0]
    )
    assert methods["ifcnn"].family == "cnn" and methods["densefuse"].family == "encoder-decoder"
    assert "Information Fusion 54" in methods["ifcnn"].references[0]
    assert "Image Processing 28" in methods["densefuse"].references[0]
    for name in PUBLISHED:
        assert methods[name].modes == ["slice", "volume"] and methods[name].inputs == "n"


@pytest.mark.parametrize("name", PUBLISHED)
def test_shipped_weights_load_with_a_model_card(name):
    path = weight_path(name)
    assert path.exists() and path.stat().st_size < 200_000  # float16: ~150 kB
    card = path.with_suffix(".md").read_text(encoding="utf-8")
    assert "CPU training time" in card and "reproduce" in card and "under-trained" in card.lower()
    net = load_network(name)
    assert not net.training and net.meta["method"] == name
    assert isinstance(net, IFCNN if name == "ifcnn" else DenseFuse)


@pytest.mark.parametrize("name", [*PUBLISHED, "deep-features"])
@pytest.mark.parametrize("shape, mode", [((48, 40), "slice"), ((10, 24, 20), "slice"), ((10, 24, 20), "volume")])
def test_both_modes_shapes_range_and_determinism(name, shape, mode):
    a, b = _pair(shape)
    fused = fuse_arrays([a, b], name, mode=mode)
    assert fused.shape == shape and fused.dtype == np.float32
    assert 0 <= fused.min() and fused.max() <= 1
    assert fused[b > 0.8].mean() > fused[(a == 0) & (b == 0)].mean() + 0.3  # bright structure kept over background
    assert np.array_equal(fused, fuse_arrays([a, b], name, mode=mode))


def test_selectable_rule_and_strategy_through_the_method():
    a, b = _pair((32, 32))
    stack = np.stack([a, b])[:, None]
    by_rule = [ifcnn.fuse(stack, rule=r) for r in ("max", "mean", "sum")]
    assert all(o.shape == (1, 32, 32) for o in by_rule) and not np.array_equal(by_rule[0], by_rule[1])
    assert not np.array_equal(densefuse.fuse(stack, strategy="addition"), densefuse.fuse(stack, strategy="l1"))


def test_deep_features_framework_on_hand_checkable_inputs():
    torch.manual_seed(0)
    net = DenseFuse().eval()
    x = torch.rand(1, 2, 1, 40, 40)
    with torch.no_grad():
        same = deep_features_rule(net, torch.cat([x, x]))  # equal weights, one detail: the input back
        assert torch.allclose(same, x[0], atol=1e-5)
        flat = torch.full((1, 2, 1, 40, 40), 0.3)
        mixed = deep_features_rule(net, torch.cat([x, flat]))
        base_x = torch.nn.functional.avg_pool2d(x[0], 31, 1, 15, count_include_pad=False)
        # the flat source has no detail: fused = mean of the bases + a convex share of x's detail
        detail_share = (mixed - (base_x + 0.3) / 2) / (x[0] - base_x)
        ok = (x[0] - base_x).abs() > 1e-3
        assert detail_share[ok].min() >= -1e-4 and detail_share[ok].max() <= 1 + 1e-4


def test_build_network_from_weight_config():
    net = build_network("IFCNN", {"spatial_dims": 2, "in_channels": 1, "channels": 64, "rule": "sum"})
    assert isinstance(net, IFCNN) and net.rule == "sum"


@pytest.mark.parametrize("method", PUBLISHED)
def test_tiny_training_of_the_published_recipes(method, shared_data, tmp_path):
    result = quick_train(method, shared_data, tmp_path, steps_per_epoch=1)
    assert np.isfinite(result["history"][-1]["loss"]) and "val_loss" in result["final"]
    assert load_network(method, str(tmp_path / f"{method}.pt")).meta["method"] == method
