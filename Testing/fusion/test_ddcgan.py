"""DDcGAN at its published architecture: generator, discriminators, content loss, the method in both modes, the
shipped weights with their model card (and its ablation), and a tiny adversarial training through ``train``."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from synthetic import phantom_inputs

from MedFusionLib.core.errors import MedFusionError
from MedFusionLib.fusion import fuse_arrays, get_method
from MedFusionLib.inference.runtime import load_network, weight_path
from MedFusionLib.networks import build_network
from MedFusionLib.networks.ddcgan import DDcGANDiscriminator, DDcGANGenerator
from MedFusionLib.training.losses import DDcGANContentLoss, ddcgan_gradient
from MedFusionLib.training.recipes import RECIPES

PUBLISHED_PARAMETERS = 1_097_665  # conv1 + dense block 4 x 48 + decoder 240-240-128-64-32-1, batch-norm included


def _phantom(shape, seed=0):
    """(PET-like, MR-like) in DDcGAN's order: the intensity source first, the texture source second."""
    anatomy, uptake, _ = phantom_inputs(shape, seed)
    return uptake, anatomy


# ------------------------------------------------------------------ networks
def test_generator_layers_and_parameter_count_as_published():
    net = DDcGANGenerator()
    assert sum(p.numel() for p in net.parameters()) == PUBLISHED_PARAMETERS
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [
        (2, 48),
        (48, 48),
        (96, 48),
        (144, 48),
        (192, 48),
        (240, 240),
        (240, 128),
        (128, 64),
        (64, 32),
        (32, 1),
    ]
    assert all(c.kernel_size == (3, 3) and c.padding_mode == "reflect" for c in convs)
    assert net.receptive_radius == 10


@pytest.mark.parametrize("spatial_dims,spatial", [(2, (20, 24)), (3, (8, 12, 10))])
def test_generator_shapes_and_range(spatial_dims, spatial):
    net = DDcGANGenerator(spatial_dims=spatial_dims, channels=4, dense_layers=2, decoder_channels=(8, 4)).eval()
    with torch.no_grad():
        out = net(torch.rand(2, 3, 1, *spatial))
    assert out.shape == (3, 1, *spatial) and (out > 0).all() and (out < 1).all()


def test_generator_takes_exactly_two_grey_sources():
    net = DDcGANGenerator(channels=4, dense_layers=1, decoder_channels=(4,)).eval()
    with pytest.raises(ValueError, match="two grey sources"):
        net(torch.rand(3, 1, 1, 16, 16))


def test_no_fixed_rule_bypass():
    """With every weight zero the output is 0.5 everywhere: nothing carries the sources (e.g. their max) through."""
    net = DDcGANGenerator(channels=8, dense_layers=2, decoder_channels=(8, 4)).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
        x = torch.rand(2, 2, 1, 24, 24)
        out = net(x)
    assert torch.allclose(out, torch.full_like(out, 0.5))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(spatial_dims=1), "spatial_dims"),
        (dict(channels=0), "channels"),
        (dict(dense_layers=0), "dense_layers"),
        (dict(decoder_channels=(32, 0)), "decoder_channels"),
    ],
)
def test_generator_argument_checks(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DDcGANGenerator(**kwargs)


def test_discriminator_three_strided_convolutions_and_fc():
    d = DDcGANDiscriminator(size=48).eval()
    convs = [m for m in d.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.out_channels, c.stride) for c in convs] == [(16, (2, 2)), (32, (2, 2)), (64, (2, 2))]
    assert d.fc.in_features == 64 * 6 * 6
    with torch.no_grad():
        p = d(torch.rand(5, 1, 48, 48))
    assert p.shape == (5, 1) and (p >= 0).all() and (p <= 1).all()
    with pytest.raises(ValueError, match="multiple of 8"):
        DDcGANDiscriminator(size=50)


def test_content_loss_intensity_of_first_source_texture_of_second():
    loss = DDcGANContentLoss()
    s1, s2 = torch.rand(1, 2, 1, 16, 16), torch.rand(1, 2, 1, 16, 16)
    same = torch.cat([s1, s1])
    assert float(loss(s1[0], same)) == pytest.approx(0.0, abs=1e-7)
    assert float(loss(s1[0], torch.cat([s1, s2]))) > 0  # s1's texture differs from s2's
    assert float(DDcGANContentLoss(eta=0.0)(s1[0], torch.cat([s1, s2]))) == pytest.approx(0.0, abs=1e-7)
    flat = torch.full((1, 1, 9, 9), 0.3)
    assert torch.allclose(ddcgan_gradient(flat)[..., 1:-1, 1:-1], torch.zeros(1, 1, 7, 7), atol=1e-6)
    with pytest.raises(ValueError):
        DDcGANContentLoss(w_int=-1)


# ------------------------------------------------------------------ the shipped method
def test_registered_as_two_source_gan_with_both_modes():
    m = get_method("ddcgan")
    assert m.family == "gan" and m.modes == ["slice", "volume"] and m.volume_note and "DDcGAN" in m.paper
    assert m.accepts(2) and not m.accepts(3)
    assert m.parameter_count() == PUBLISHED_PARAMETERS
    with pytest.raises(MedFusionError):
        fuse_arrays(list(_phantom((16, 16))) * 2, "ddcgan")


def test_weights_float16_with_model_card_and_ablation():
    path = weight_path("ddcgan")
    assert path.exists() and path.stat().st_size < 2_500_000  # 1.1 M float16 parameters
    payload = torch.load(path, map_location="cpu", weights_only=True)
    assert payload["network"] == "DDcGANGenerator"
    assert all(v.dtype == torch.float16 for v in payload["state_dict"].values() if v.is_floating_point())
    card = path.with_suffix(".md").read_text(encoding="utf-8")
    assert "medfusion train ddcgan" in card and "adv_weight=0" in card and "Ablation" in card
    net = load_network("ddcgan")
    assert isinstance(net, DDcGANGenerator) and not net.training and net.meta["method"] == "ddcgan"


def test_slice_mode_range_structure_determinism():
    pet, mr = _phantom((64, 64))
    fused = fuse_arrays([pet, mr], "ddcgan")
    assert fused.shape == (64, 64) and fused.dtype == np.float32 and 0 <= fused.min() and fused.max() <= 1
    assert fused[pet > 0.8].mean() > fused[(pet == 0) & (mr == 0)].mean() + 0.2  # uptake brighter than background
    assert np.abs(fused - np.maximum(pet, mr)).mean() * 255 > 1.0  # its own image, not max
    assert np.array_equal(fused, fuse_arrays([pet, mr], "ddcgan"))


def test_the_mri_goes_second_whatever_the_order_given():
    """DDcGAN's roles follow the modalities, not the position: ``fuse MR PET`` equals ``fuse PET MR``."""
    pet, mr = _phantom((48, 48))
    given = fuse_arrays([pet, mr], "ddcgan", modalities=["pet", "mr"])
    swapped = fuse_arrays([mr, pet], "ddcgan", modalities=["mr", "pet"])
    assert np.array_equal(given, swapped)
    assert not np.array_equal(given, fuse_arrays([mr, pet], "ddcgan", modalities=["mr", "mr"]))  # order kept


@pytest.mark.parametrize("mode,axis", [("slice", 2), ("volume", 0)])
def test_both_modes_on_volumes(mode, axis):
    pet, mr = _phantom((10, 24, 20))
    fused = fuse_arrays([pet, mr], "ddcgan", mode=mode, axis=axis)
    assert fused.shape == pet.shape and np.isfinite(fused).all() and 0 <= fused.min() and fused.max() <= 1


# ------------------------------------------------------------------ training: GAN and its content-only ablation
class _Pairs:
    summary = "generated pairs"

    def __init__(self):
        self.val_pairs = np.stack([np.stack(_phantom((32, 32), seed=s)) for s in (7, 8)])

    def batch(self, rng):
        crop = RECIPES["ddcgan"].crop  # the discriminators' fully connected layer is sized to it
        items = [np.stack(_phantom((crop, crop), seed=int(rng.integers(100)))) for _ in range(2)]
        return torch.from_numpy(np.stack(items, axis=1)).unsqueeze(2)


TINY = dict(channels=4, dense_layers=1, decoder_channels=[8, 4])


@pytest.mark.parametrize("adv_weight", [0.01, 0.0])
def test_tiny_adversarial_training_and_ablation(tmp_path, adv_weight):
    from MedFusionLib.training.adversarial import train_adversarial

    def run(name):
        return train_adversarial(
            "ddcgan",
            tmp_path,
            out=tmp_path / f"{name}.pt",
            epochs=1,
            steps_per_epoch=2,
            batch=2,
            checkpoint_dir=tmp_path / f"ck-{name}",
            validate_every=1,
            quiet=True,
            data=_Pairs(),
            config_overrides=TINY,
            loss_overrides={"adv_weight": adv_weight, "warmup_steps": 1},
        )

    result = run("a")
    final = result["final"]
    assert np.isfinite(final["loss"]) and "val_loss" in final and (tmp_path / "ck-a" / "last.pt").exists()
    assert ({"adv_g", "loss_d", "d_real", "d_fake"} <= set(final)) == (adv_weight > 0)
    card = (tmp_path / "a.md").read_text(encoding="utf-8")
    assert "DDcGAN discriminators" in card and ("not trained" in card) == (adv_weight == 0)
    net = load_network("ddcgan-tiny", str(tmp_path / "a.pt"))
    assert net(torch.rand(2, 1, 1, 24, 24)).shape == (1, 1, 24, 24)
    assert run("b")["final"]["loss"] == final["loss"]  # seeded, deterministic


def test_unknown_gan_or_content_loss_is_refused():
    from MedFusionLib.training.adversarial import content_loss, gan_losses

    with pytest.raises(MedFusionError, match="gan_loss"):
        gan_losses("hinge")
    with pytest.raises(MedFusionError, match="content loss"):
        content_loss({"content": "perceptual"})
    assert isinstance(content_loss({"content": "ddcgan", "eta": 2.0}), DDcGANContentLoss)


def test_recipe_builds_the_published_generator():
    recipe = RECIPES["ddcgan"]
    net = build_network(recipe.network, recipe.config)
    assert sum(p.numel() for p in net.parameters()) == PUBLISHED_PARAMETERS
    assert recipe.loss == "adversarial" and recipe.loss_args["adv_weight"] > 0 and recipe.crop % 8 == 0


def test_cli_overrides_split_into_config_and_loss_arguments():
    from MedFusionLib.apps.cli import build_parser
    from MedFusionLib.apps.cli.train import parse_overrides

    args = build_parser().parse_args(
        ["train", "ddcgan", "adv_weight=0", "channels=8", "gan_loss=lsgan", "--data", "d", "--train-split", "fit"]
    )
    assert args.overrides == ["adv_weight=0", "channels=8", "gan_loss=lsgan"] and args.train_split == "fit"
    config, loss = parse_overrides("ddcgan", args.overrides)
    assert config == {"channels": 8} and loss == {"adv_weight": 0, "gan_loss": "lsgan"}
    with pytest.raises(MedFusionError, match="KEY=VALUE"):
        parse_overrides("ddcgan", ["adv_weight"])
