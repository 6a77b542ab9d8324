"""fusion-unet's real-volume training: the brightness hinge, slices of volumes along three axes, the select/report
split of the real volume pairs, and a tiny run that mixes both kinds of data and validates saturation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from MedFusionLib.training import data as D
from MedFusionLib.training import train
from MedFusionLib.training.losses import FusionLoss, over_brightness


def test_brightness_hinge_counts_only_what_no_source_justifies():
    sources = torch.stack([torch.full((1, 1, 8, 8), 0.4), torch.full((1, 1, 8, 8), 0.6)])
    assert float(over_brightness(torch.full((1, 1, 8, 8), 0.5), sources.amax(0))) == 0.0
    assert float(over_brightness(torch.full((1, 1, 8, 8), 0.9), sources.amax(0))) == pytest.approx(0.3)
    bright = torch.full((1, 1, 8, 8), 0.9)
    plain, hinged = FusionLoss(), FusionLoss(w_over=8.0)
    assert float(hinged(bright, sources) - plain(bright, sources)) == pytest.approx(8 * 0.3, rel=1e-5)
    with pytest.raises(ValueError, match="w_over"):
        FusionLoss(w_over=-1.0)


def test_saturation_share_is_over_the_foreground_only():
    sources = np.zeros((2, 10, 10), np.float32)
    sources[0, :5] = 0.5  # half the image is foreground
    fused = np.zeros((10, 10), np.float32)
    fused[:1] = 1.0  # a fifth of the foreground saturated
    fused[9] = 1.0  # saturated background does not count
    assert D.saturation_share(fused, sources) == pytest.approx(0.2)


def _volumes(root: Path, case: str, names: tuple[str, ...], shape=(12, 16, 20)) -> None:
    rng = np.random.default_rng(1)
    (root / "volumes" / case).mkdir(parents=True, exist_ok=True)
    for name in names:
        vol = np.zeros(shape, np.float32)
        vol[2:-2, 3:-3, 4:-4] = rng.uniform(100, 900, size=(shape[0] - 4, shape[1] - 6, shape[2] - 8))
        sitk.WriteImage(sitk.GetImageFromArray(vol), str(root / "volumes" / case / f"{name}.nii.gz"))


def test_volume_slices_along_three_axes_on_the_first_grid(tmp_path):
    _volumes(tmp_path, "spm", ("T1", "PET"))
    slices = D.load_volume_slices(tmp_path, "select", step=1)
    shapes = {s.shape for s in slices}
    assert shapes == {(2, 16, 20), (2, 12, 20), (2, 12, 16)}  # axial, coronal, sagittal
    assert all(s.min() >= 0 and s.max() <= 1 for s in slices)
    padded = D.pad_to(slices[0], 32)
    assert padded.shape == (2, 32, 32) and padded.sum() == pytest.approx(slices[0].sum())
    with pytest.raises(Exception, match="none of the select volume pairs"):
        D.load_volume_slices(tmp_path / "nothing", "select")


@pytest.mark.real_data
def test_volume_split_is_by_subject_and_every_pair_exists(shared_data):
    select = {p.case for p in D.VOLUME_SELECT}
    report = {p.case for p in D.VOLUME_REPORT}
    assert select and report and not select & report
    for pair in D.VOLUME_SELECT + D.VOLUME_REPORT:
        for name in (pair.first, pair.second):
            assert (shared_data / "volumes" / pair.case / f"{name}.nii.gz").exists(), pair.name


@pytest.mark.parametrize("method", ["fusion-unet", "fusion-unet-v3"])
def test_tiny_fusion_unet_run_mixes_volume_slices_and_validates_saturation(method, tmp_path):
    from Testing.training.test_training import _blob  # the Harvard-like generator of the training tests

    rng = np.random.default_rng(0)
    for case in ("2", "16", "20", "25"):
        for d in ("CT", "MRI"):
            (tmp_path / "harvard" / "CT-MRI" / d).mkdir(parents=True, exist_ok=True)
            for s in range(2):
                sitk.WriteImage(
                    sitk.GetImageFromArray(_blob(rng)), str(tmp_path / "harvard" / "CT-MRI" / d / f"{case}{s:03d}.png")
                )
    _volumes(tmp_path, "spm", ("T1", "PET"), shape=(20, 24, 28))
    result = train(
        method,
        tmp_path,
        out=tmp_path / "fu.pt",
        epochs=1,
        steps_per_epoch=2,
        batch=2,
        checkpoint_dir=tmp_path / "ck",
        threads=1,
        validate_every=1,
        quiet=True,
        train_split="fit",
        config_overrides=dict(channels=(4, 4, 4, 4), decoder_channels=(4, 4, 4), full_res_channels=2),
    )
    final = result["final"]
    assert 0.0 <= final["SAT"] <= 1.0 and 0.0 <= final["SAT_max"] <= 1.0
    assert "slices of the select real volume pairs" in result["data"]


def _harvard_like_pair() -> np.ndarray:
    """A dim 8-bit-like pair on a black background: a disc at 0.2..0.6 and a ring at 0.3."""
    yy, xx = np.mgrid[:64, :64]
    r = np.hypot(yy - 32, xx - 32)
    first = np.where(r < 20, 0.2 + 0.4 * (xx / 63), 0.0)
    second = np.where((r > 10) & (r < 24), 0.3, 0.0)
    return np.stack([first, second]).astype(np.float32)


def test_volume_like_renormalises_the_foreground_and_keeps_the_background_below_it():
    pair = _harvard_like_pair()
    background = pair.max(axis=0) <= 0.05
    for seed in range(20):
        out = D.volume_like(pair, np.random.default_rng(seed))
        assert out.shape == pair.shape and out.dtype == np.float32
        assert out.min() >= 0.0 and out.max() <= 1.0
        # the percentile rule of the real volumes: the top of each foreground reaches the range's top
        for i in range(2):
            assert np.percentile(out[i][pair[i] > 0.05], 99.9) > 0.9
        # background offsets stay below the foreground threshold unless a blur carries the edge into it
        far = background & (np.hypot(*np.mgrid[:64, :64] - 32) > 30)
        assert out[:, far].max() <= 0.05
    # same seed, same pair: the augmentation is reproducible
    a = D.volume_like(pair, np.random.default_rng(3))
    b = D.volume_like(pair, np.random.default_rng(3))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, pair)


def test_fusion_unet_v3_recipe_keeps_fusion_unet_network_and_adds_vif_and_volume_like():
    from MedFusionLib.training.recipes import RECIPES

    v2, v3 = RECIPES["fusion-unet-v2"], RECIPES["fusion-unet-v3"]
    assert v3.network == v2.network and v3.config == v2.config == RECIPES["fusion-unet"].config
    assert v3.loss_args["w_vif"] > 0 and v3.loss_args["grad_gain"] == 1.0 and v3.loss_args["w_over"] > 0
    assert v3.volume_like > 0 and v2.volume_like == 0.0  # the recipe of the previous weights stays reproducible
    sources = torch.rand(2, 2, 1, 32, 32)
    fused = sources.amax(0)
    with_vif = FusionLoss(**v3.loss_args)(fused, sources)
    without = FusionLoss(**{**v3.loss_args, "w_vif": 0.0})(fused, sources)
    assert float(with_vif) > float(without)  # max keeps less than all of both sources' information


def test_default_recipe_is_round_4s_choice_and_the_evening_recipe_stays_reproducible():
    from MedFusionLib.training.recipes import RECIPES

    today, v9 = RECIPES["fusion-unet"], RECIPES["fusion-unet-v9"]
    assert today.network == v9.network and today.config == v9.config and today.data == v9.data
    assert today.loss_args == {**v9.loss_args, "vif_pool": "batch"}
    assert today.gamma_range == (0.5, 2.0) and v9.gamma_range == (0.8, 1.25)
    assert (today.epochs, v9.epochs) == (60, 20)
    assert "vif_pool" not in v9.loss_args  # the evening's weights used the per-crop VIF ratio
