"""liu-cnn: Liu et al.'s siamese patch classifier (network), its fixed post-processing (focus map, decision map,
consistency verification, local-similarity pyramid), the method in both modes, and its classifier training loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from synthetic import phantom_inputs

from MedFusionLib.core.errors import MedFusionError
from MedFusionLib.fusion import fuse_arrays, get_method
from MedFusionLib.inference import liu_cnn as post
from MedFusionLib.inference.runtime import load_network, weight_path
from MedFusionLib.networks import build_network
from MedFusionLib.networks.liu_cnn import LiuSiameseCNN
from MedFusionLib.training import patch_classifier as P

OURS = 640_786  # rank-16 factorised first fully connected layer
PUBLISHED = 8_759_042  # the paper's layers with grey input (the first fully connected layer alone: 8,388,864)


def _phantom(shape, seed=0):
    return phantom_inputs(shape, seed, step=0.3, noise=0.05)[:2]


# ---------------------------------------------------------------- network
def test_parameters_published_and_factorised():
    net = LiuSiameseCNN()
    assert sum(p.numel() for p in net.parameters()) == OURS
    published = LiuSiameseCNN(rank=0)
    assert sum(p.numel() for p in published.parameters()) == PUBLISHED == P.published_parameters(net)
    assert sum(p.numel() for p in published.fc1.parameters()) == 8 * 8 * 512 * 256 + 256


def test_patch_logits_and_fully_convolutional_score_map():
    net = LiuSiameseCNN(channels=(8, 8, 8), hidden=16, rank=4).eval()
    a, b = torch.rand(3, 1, 16, 16), torch.rand(3, 1, 16, 16)
    with torch.no_grad():
        assert net(a, b).shape == (3, 2, 1, 1)
        big_a, big_b = torch.rand(1, 1, 40, 36), torch.rand(1, 1, 40, 36)
        assert net(big_a, big_b).shape == (1, 2, 40 // 2 - 7, 36 // 2 - 7)
        s = net.score_map(big_a, big_b, symmetric=False)
        assert s.shape == (1, 1, 13, 11) and float(s.min()) >= 0 and float(s.max()) <= 1
        sym = net.score_map(big_a, big_b)
        torch.testing.assert_close(sym, 1 - net.score_map(big_b, big_a), atol=1e-6, rtol=0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(channels=(64, 128)), "three convolution widths"),
        (dict(channels=(64, 0, 256)), "channels"),
        (dict(patch=15), "patch"),
        (dict(hidden=0), "hidden"),
        (dict(rank=-1), "rank"),
    ],
)
def test_bad_arguments_fail_at_construction(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LiuSiameseCNN(**kwargs)


# ---------------------------------------------------------------- fixed post-processing
def test_focus_map_averages_overlapping_patches():
    scores = torch.zeros(1, 1, 5, 5)
    scores[0, 0, 2, 2] = 1.0
    w = post.focus_map(scores, patch=16, stride=2)
    assert w.shape == (1, 1, 24, 24)
    assert float(w[0, 0, 0, 0]) == 0.0  # covered by one patch only, scored 0
    assert 0 < float(w[0, 0, 12, 12]) < 1  # covered by all 25 patches: the mean, 1/25
    assert float(w[0, 0, 12, 12]) == pytest.approx(1 / 25)
    assert float(post.focus_map(torch.full((2, 1, 3, 4), 0.3), 16, 2).std()) < 1e-6


def test_consistency_verification_reverses_small_regions_only():
    binary = np.zeros((100, 100), bool)
    binary[:, 50:] = True  # two halves: kept
    binary[10:14, 10:14] = True  # 16 px island of ones in the zeros: < 1 % of 10,000 px -> reversed
    binary[80:85, 80:85] = False  # 25 px hole in the ones -> reversed
    out = post.remove_small_regions(binary, 0.01)
    expected = np.zeros((100, 100), bool)
    expected[:, 50:] = True
    np.testing.assert_array_equal(out, expected)
    d = post.decision_map(np.where(binary, 0.9, 0.1)[None].astype(np.float32))
    np.testing.assert_array_equal(d[0], expected.astype(np.float32))


def test_local_similarity_chooses_averaging_or_selection():
    la = torch.rand(1, 1, 8, 8) + 0.1
    w = torch.full_like(la, 0.25)
    # similar coefficients (b = a / 2: similarity 0.8 >= 0.6): averaging by the weights
    torch.testing.assert_close(post.fuse_level(la, la / 2, w), 0.25 * la + 0.75 * la / 2)
    # opposite coefficients (similarity -1): selection of the larger local energy, whatever the weights
    torch.testing.assert_close(post.fuse_level(la, -2 * la, w), -2 * la)
    torch.testing.assert_close(post.fuse_level(-la / 3, la, w), la)


@pytest.mark.parametrize("shape", [(1, 1, 37, 50), (1, 1, 9, 12, 10)])
def test_pyramid_reproduces_one_input_where_its_weight_is_one(shape):
    a = torch.rand(shape)
    fused = post.similarity_pyramid_fuse(a, a / 2, torch.ones(shape))  # similar everywhere: averaging, w = 1
    torch.testing.assert_close(fused, a, atol=1e-5, rtol=0)
    torch.testing.assert_close(post.similarity_pyramid_fuse(a, a, torch.rand(shape)), a, atol=1e-5, rtol=0)


# ---------------------------------------------------------------- the method (shipped weights)
def test_registered_pairwise_decision_map_method():
    m = get_method("liu-cnn")
    assert m.family == "decision-map" and m.modes == ["slice", "volume"] and m.volume_note
    assert m.accepts(2) and not m.accepts(3)
    assert "Liu" in m.paper and m.parameter_count() == OURS
    with pytest.raises(MedFusionError, match="takes 2 inputs"):
        a, b = _phantom((32, 32))
        fuse_arrays([a, b, a], "liu-cnn")


def test_weights_compact_with_model_card():
    path = weight_path("liu-cnn")
    assert path.exists() and path.stat().st_size < 2_000_000 and path.with_suffix(".md").exists()
    net = load_network("liu-cnn")
    assert isinstance(net, LiuSiameseCNN) and not net.training and net.rank == 16


@pytest.mark.parametrize("weights", ["soft", "decision"])
def test_slice_mode_order_free_deterministic_background_black(weights):
    from MedFusionLib.fusion.methods import liu_cnn

    a, b = _phantom((64, 72))
    stack = np.stack([a, b])[:, None]
    fused = liu_cnn.fuse(stack, "slice", weights)[0]
    assert fused.shape == a.shape and fused.dtype == np.float32
    np.testing.assert_array_equal(fused, liu_cnn.fuse(stack, "slice", weights)[0])
    np.testing.assert_allclose(fused, liu_cnn.fuse(stack[::-1].copy(), "slice", weights)[0], atol=1e-5)
    outside = (a == 0) & (b == 0)
    assert fused[outside].mean() < 0.02  # the black background stays nearly black (a pyramid halo at edges)
    assert fused[b > 0.8].mean() > 0.6  # the hot spot of b survives
    clipped = liu_cnn.fuse(stack, "slice", weights, envelope=True)[0]
    assert clipped[outside].max() == 0 and np.all(clipped <= np.maximum(a, b) + 1e-6)


def test_identical_inputs_reproduced_in_both_modes():
    a, _ = _phantom((12, 30, 26))
    np.testing.assert_allclose(fuse_arrays([a, a], "liu-cnn", "slice"), a, atol=1e-4)
    np.testing.assert_allclose(fuse_arrays([a, a], "liu-cnn", "volume"), a, atol=1e-4)


@pytest.mark.parametrize("weights", ["soft", "decision"])
def test_volume_mode_shapes_and_content(weights):
    from MedFusionLib.fusion.methods import liu_cnn

    a, b = _phantom((18, 28, 24))
    fused = liu_cnn.fuse(np.stack([a, b]), "volume", weights)
    assert fused.shape == a.shape and 0 <= fused.min() and fused.max() <= 1
    assert fused[b > 0.8].mean() > 0.6
    with pytest.raises(ValueError, match="weights"):
        liu_cnn.fuse(np.stack([a, b]), "volume", "hard")


def test_shipped_classifier_tells_sharp_from_blurred():
    """On patches it never saw (a generated texture), the shipped classifier names the sharp patch."""
    rng = np.random.default_rng(3)
    texture = torch.from_numpy(rng.random((1, 1, 200, 200)).astype(np.float32))
    texture = P.blur_levels(texture, 1)[0][0, 0].numpy()  # a smooth-ish texture (one blur pass), 0..1
    pairs = P.PatchPairs(texture[None], 16)
    sharp, blurred, _ = pairs.batch(rng, 200)
    with torch.no_grad():
        _, ok = P.pair_loss(load_network("liu-cnn"), sharp, blurred)
    assert float(ok.float().mean()) > 0.9


# ---------------------------------------------------------------- training
def test_blur_levels_blur_more_and_exact_in_the_centre():
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.random((2, 1, 46, 46)).astype(np.float32))
    levels = P.blur_levels(x)
    grads = [float((y[..., 1:] - y[..., :-1]).abs().mean()) for y in [x, *levels]]
    assert all(g1 > g2 for g1, g2 in zip(grads, grads[1:]))
    wide = torch.nn.functional.pad(x, (10, 10, 10, 10), mode="reflect")  # other surroundings: same centre
    centre = P.blur_levels(wide)[-1][..., 25:41, 25:41]
    torch.testing.assert_close(centre, levels[-1][..., 15:31, 15:31])


def test_patch_pairs_have_detail_and_labels_both_orders():
    rng = np.random.default_rng(1)
    img = np.zeros((2, 64, 64), np.float32)
    img[:, 20:44, 20:44] = rng.random((2, 24, 24))  # detail only in the middle
    pairs = P.PatchPairs(img, 16)
    sharp, blurred, levels = pairs.batch(rng, 32)
    assert sharp.shape == blurred.shape == (32, 1, 16, 16) and set(levels) <= {1, 2, 3, 4, 5}
    assert float(sharp.flatten(1).std(dim=1).min()) >= P.MIN_STD - 1e-6
    net = LiuSiameseCNN(channels=(4, 4, 4), hidden=8, rank=2)
    loss, ok = P.pair_loss(net, sharp, blurred)
    assert ok.shape == (64,) and float(loss.detach()) > 0


def test_training_loop_writes_loadable_weights_and_card_and_resumes(tmp_path):
    rng = np.random.default_rng(0)
    images = np.clip(rng.random((4, 48, 48)), 0, 1).astype(np.float32)
    common = dict(
        data=(images[:3], images[3:]),
        epochs=2,
        steps_per_epoch=3,
        batch=8,
        config_overrides={"channels": (4, 8, 8), "hidden": 8, "rank": 2},
        checkpoint_dir=tmp_path / "ckpt",
        quiet=True,
    )
    out = tmp_path / "liu.pt"
    result = P.train_patch_classifier("liu-cnn", tmp_path, out=out, **common)
    assert [h["epoch"] for h in result["history"]] == [1, 2] and "val_accuracy" in result["final"]
    payload = torch.load(out, weights_only=True)
    net = build_network(payload["network"], payload["config"])
    net.load_state_dict({k: v.float() for k, v in payload["state_dict"].items()})
    assert all(v.dtype == torch.float16 for v in payload["state_dict"].values())
    card = out.with_suffix(".md").read_text(encoding="utf-8")
    assert "published-equivalent" in card and "val_accuracy" in card
    again = P.train_patch_classifier(
        "liu-cnn", tmp_path, out=tmp_path / "again.pt", resume=tmp_path / "ckpt" / "last.pt", **common
    )
    assert [h["epoch"] for h in again["history"]] == [1, 2]  # nothing left to train: the checkpoint's history


def test_train_dispatches_to_the_classifier_loop(monkeypatch, tmp_path):
    from MedFusionLib import training

    seen = {}
    monkeypatch.setattr(P, "train_patch_classifier", lambda method, data_dir, opts: seen.update(m=method) or "ok")
    assert training.train("liu-cnn", tmp_path, epochs=1) == "ok" and seen == {"m": "liu-cnn"}
