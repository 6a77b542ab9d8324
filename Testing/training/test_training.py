"""Training pipeline: by-case split, losses, a tiny model trained a few steps on generated data, resume, CLI."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from MedFusionLib.apps.cli.train import add_parser as register_cli
from MedFusionLib.core.errors import MedFusionError
from MedFusionLib.inference.runtime import load_network
from MedFusionLib.training import RECIPES, train
from MedFusionLib.training import data as D
from MedFusionLib.training.losses import FusionLoss, ReconstructionLoss, ssim

SIZE = 48


def _blob(rng, size=SIZE):
    yy, xx = np.mgrid[:size, :size]
    img = np.zeros((size, size))
    for _ in range(3):
        cy, cx, r = rng.uniform(12, size - 12), rng.uniform(12, size - 12), rng.uniform(4, 10)
        img += rng.uniform(80, 250) * ((yy - cy) ** 2 + (xx - cx) ** 2 < r * r)
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """A Harvard-like tree: CT-MRI (grey) and PET-MRI (pseudo-colour RGB), 3 cases each, plus two volumes."""
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    for pair, cases in (("CT-MRI", ("2", "16", "20")), ("PET-MRI", ("25", "30", "41"))):
        a, b = pair.split("-")
        for d in (a, b):
            (root / "harvard" / pair / d).mkdir(parents=True)
        for case in cases:
            for s in range(3):
                fid = f"{case}{s:03d}"
                first = _blob(rng)
                if a == "PET":
                    rgb = np.stack([first, first // 2, first // 4], axis=-1).astype(np.uint8)
                    sitk.WriteImage(
                        sitk.GetImageFromArray(rgb, isVector=True), str(root / "harvard" / pair / a / f"{fid}.png")
                    )
                else:
                    sitk.WriteImage(sitk.GetImageFromArray(first), str(root / "harvard" / pair / a / f"{fid}.png"))
                sitk.WriteImage(sitk.GetImageFromArray(_blob(rng)), str(root / "harvard" / pair / b / f"{fid}.png"))
    for case, names in (("spm", ("T1", "PET")), ("sirf", ("mr_t1_64", "mr_t2_64"))):
        (root / "volumes" / case).mkdir(parents=True)
        for name in names:
            vol = np.stack([_blob(rng, 24) for _ in range(20)]).astype(np.float32)
            sitk.WriteImage(sitk.GetImageFromArray(vol), str(root / "volumes" / case / f"{name}.nii.gz"))
    return root


def test_case_id_and_split_by_case(data_dir):
    assert D.case_id("16003") == "16" and D.case_id("2004") == "2"
    listing = D.list_pairs(data_dir)
    split = D.split_cases([(p, f) for p, f, _, _ in listing], seed=1)
    assert not split["train"] & split["val"]
    for pair in ("CT-MRI", "PET-MRI"):
        cases = {D.case_id(f) for p, f, _, _ in listing if p == pair}
        assert cases & split["val"] and cases & split["train"]
    assert split == D.split_cases([(p, f) for p, f, _, _ in listing], seed=1)  # reproducible
    val = D.load_pairs(data_dir, "val", seed=1)
    assert val.images.dtype == np.uint8 and val.images.shape[1:] == (2, SIZE, SIZE)
    assert {D.case_id(i) for i in val.ids} <= split["val"]


def test_model_selection_cases_come_from_the_training_cases(data_dir):
    listing = D.list_pairs(data_dir)
    split = D.split_cases([(p, f) for p, f, _, _ in listing], seed=1)
    assert split["fit"] | split["select"] == split["train"]
    assert not split["fit"] & split["select"] and split["select"]
    select = D.load_pairs(data_dir, "select", seed=1)
    assert {D.case_id(i) for i in select.ids} <= split["select"]
    with pytest.raises(MedFusionError, match="unknown split 'test'"):
        D.load_pairs(data_dir, "test", seed=1)


def test_luma_of_pseudo_colour(tmp_path):
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 200, 100, 50
    sitk.WriteImage(sitk.GetImageFromArray(rgb, isVector=True), str(tmp_path / "x.png"))
    assert D.read_gray(tmp_path / "x.png")[0, 0] == round(0.299 * 200 + 0.587 * 100 + 0.114 * 50)


def test_augmentation_keeps_shape_and_black_background():
    rng = np.random.default_rng(0)
    pair = np.zeros((2, 64, 64), np.float32)
    pair[:, 20:40, 20:40] = 0.7
    out = D.augment_pair(pair, rng, 32)
    assert out.shape == (2, 32, 32) and out.min() >= 0 and out.max() <= 1
    assert (out == 0).any()  # 32-pixel crop of a 20-pixel square: background present and still black


def test_augmentation_gamma_follows_the_recipe_range():
    """A recipe's gamma_range reaches the augmentation: a flat 0.5 source comes out within gain x 0.5**gamma."""
    pair = np.full((2, 32, 32), 0.5, np.float32)
    for low, high in ((0.8, 1.25), (0.5, 2.0)):
        rng = np.random.default_rng(1)
        levels = np.array([D.augment_pair(pair, rng, 32, (low, high))[:, 0, 0] for _ in range(300)]).ravel()
        assert levels.min() >= 0.8 * 0.5**high - 1e-6 and levels.max() <= 1.2 * 0.5**low + 1e-6
        assert levels.min() < 0.8 * 0.5 ** (high**0.5) and levels.max() > 1.2 * 0.5 ** (low**0.5)


def test_losses():
    x = torch.rand(2, 1, 32, 32)
    assert torch.allclose(ssim(x, x), torch.ones(2), atol=1e-5)
    assert float(ReconstructionLoss()(x, x)) < 1e-4
    sources = torch.stack([x, torch.zeros_like(x)])
    assert float(FusionLoss()(x, sources)) < float(FusionLoss()(torch.zeros_like(x), sources))
    x3 = torch.rand(1, 1, 12, 12, 12)
    assert torch.allclose(ssim(x3, x3, 7), torch.ones(1), atol=1e-5)


def test_edge_preservation_loss_follows_the_qabf_metric():
    from MedFusionLib.metrics import compute_metrics
    from MedFusionLib.training.losses import edge_preservation

    rng = np.random.default_rng(3)
    a, b = _blob(rng, 48).astype(np.float64), _blob(rng, 48).astype(np.float64)
    t = lambda z: torch.tensor(z / 255.0, dtype=torch.float64)[None, None]  # noqa: E731
    for fused in (np.maximum(a, b), np.floor((a + b) / 2), a):
        expected = compute_metrics([a, b], fused, keys=["QABF"])["QABF"]
        assert float(edge_preservation(t(fused), torch.stack([t(a), t(b)]))) == pytest.approx(expected, abs=5e-3)


def test_scd_loss_follows_the_scd_metric():
    from MedFusionLib.metrics import compute_metrics
    from MedFusionLib.training.losses import sum_of_correlation_differences

    rng = np.random.default_rng(4)
    a, b = _blob(rng, 48).astype(np.float64), _blob(rng, 48).astype(np.float64)
    t = lambda z: torch.tensor(z / 255.0, dtype=torch.float64)[None, None]  # noqa: E731
    for fused in (np.maximum(a, b), (a + b) / 2, 0.7 * a + 0.1 * b):
        expected = compute_metrics([a, b], fused, keys=["SCD"])["SCD"]
        assert float(sum_of_correlation_differences(t(fused), torch.stack([t(a), t(b)]))) == pytest.approx(expected)
    with pytest.raises(ValueError):
        sum_of_correlation_differences(t(a), torch.stack([t(a), t(b), t(a)]))


def test_soft_mutual_information_ranks_like_mi_and_is_bounded():
    from MedFusionLib.training.losses import FusionLoss, soft_joint_histogram, soft_mutual_information

    rng = np.random.default_rng(5)
    source = torch.from_numpy(rng.random((1, 1, 48, 48)))
    unrelated = torch.from_numpy(rng.random((1, 1, 48, 48)))
    p = soft_joint_histogram(source, unrelated, 16)
    assert p.shape == (1, 16, 16) and float(p.sum()) == pytest.approx(1.0)
    kept, entropy = soft_mutual_information(source**2, source)  # an invertible function of the source
    lost, _ = soft_mutual_information(unrelated, source)
    assert float(lost) < 0.3 * float(kept) and float(kept) <= float(entropy)
    fused = unrelated.clone().requires_grad_(True)
    loss = FusionLoss(w_ssim=0, w_grad=0, w_int=0, w_mi=1.0)(fused, torch.stack([source, source]))
    assert 0 < float(loss) <= 1
    loss.backward()
    assert float(fused.grad.abs().sum()) > 0  # the histogram is differentiable in the fused image
    with pytest.raises(ValueError):
        FusionLoss(w_mi=-1.0)


def _tiny(method, data_dir, tmp_path, **kw):
    args = dict(
        epochs=2,
        steps_per_epoch=2,
        batch=2,
        checkpoint_dir=tmp_path / f"ck-{method}",
        threads=1,
        validate_every=1,
        quiet=True,
    )
    args.update(kw)
    return train(method, data_dir, out=tmp_path / f"{method}.pt", **args)


@pytest.mark.parametrize("method", ["densefuse-lite", "max-residual-cnn", "max-residual-cnn-3d"])  # part 1 recipes
def test_tiny_training_writes_loadable_compact_weights(method, data_dir, tmp_path):
    assert method in RECIPES
    result = _tiny(method, data_dir, tmp_path)
    path = Path(result["weights"])
    assert path.stat().st_size < 100_000
    assert len(result["history"]) == 2 and np.isfinite(result["history"][-1]["loss"])
    assert "val_loss" in result["final"]
    net = load_network(method, str(path))
    payload = torch.load(path, weights_only=True)
    assert all(v.dtype == torch.float16 for v in payload["state_dict"].values())
    assert net.meta["method"] == method and net.meta["train_seconds"] >= 0


def test_training_is_deterministic_and_resumes(data_dir, tmp_path):
    a = _tiny("max-residual-cnn", data_dir, tmp_path / "a")
    b = _tiny("max-residual-cnn", data_dir, tmp_path / "b")
    assert [r["loss"] for r in a["history"]] == [r["loss"] for r in b["history"]]

    # stop after one epoch, resume for the second: same losses as the straight run
    class Stop(Exception):
        pass

    def interrupt(fraction, message):
        raise Stop(message)

    with pytest.raises(Stop):
        _tiny("max-residual-cnn", data_dir, tmp_path / "c", checkpoint_dir=tmp_path / "ck-c", progress=interrupt)
    c = _tiny(
        "max-residual-cnn",
        data_dir,
        tmp_path / "c",
        resume=tmp_path / "ck-c" / "last.pt",
        checkpoint_dir=tmp_path / "ck-c",
    )
    assert [r["loss"] for r in c["history"]] == pytest.approx([r["loss"] for r in a["history"]], rel=1e-5)


def test_fit_split_trains_without_the_selection_cases_and_validates_on_them(data_dir, tmp_path):
    result = _tiny("max-residual-cnn", data_dir, tmp_path, train_split="fit")
    split = D.split_cases([(p, f) for p, f, _, _ in D.list_pairs(data_dir)])
    assert result["data"].startswith("model-selection cases " + ", ".join(sorted(split["select"], key=int)) + ";")
    assert "Validation (model-selection cases" in (tmp_path / "max-residual-cnn.md").read_text(encoding="utf-8")
    with pytest.raises(MedFusionError, match="train_split must be one of"):
        _tiny("max-residual-cnn", data_dir, tmp_path, train_split="val")


def test_cli_registration_and_errors(data_dir, tmp_path):
    parser = argparse.ArgumentParser(prog="medfusion")
    register_cli(parser.add_subparsers(dest="command"))
    out, checkpoints = str(tmp_path / "w.pt"), str(tmp_path / "ck")
    words = ["train", "max-residual-cnn", "--data", str(data_dir), "--out", out, "--checkpoint-dir", checkpoints]
    args = parser.parse_args(words + ["--epochs", "1", "--steps-per-epoch", "1", "--batch", "2", "--threads", "1"])
    assert args.func(args) == 0 and (tmp_path / "w.pt").exists()
    with pytest.raises(MedFusionError):
        train("max-residual-cnn", tmp_path / "missing")
    with pytest.raises(MedFusionError):
        train("no-such-method", data_dir)
