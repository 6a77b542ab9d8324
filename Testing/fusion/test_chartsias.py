"""chartsias: Chartsias et al.'s network by modality (one encoder per modality, max of the latents, one decoder):
the network, the modality plumbing of the registry / engine / pipeline, the shipped weights, and its training loop."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

torch = pytest.importorskip("torch")

from synthetic import phantom_inputs

from MedFusionLib.core.errors import MedFusionError  # noqa: E402
from MedFusionLib.fusion import fuse_arrays, get_method  # noqa: E402
from MedFusionLib.inference.runtime import load_network, weight_path  # noqa: E402
from MedFusionLib.networks import ModalityEncoderMaxFusion, build_network  # noqa: E402
from MedFusionLib.pipeline import fuse_images  # noqa: E402


def _phantom(shape, seed=0):
    return phantom_inputs(shape, seed)


# ------------------------------------------------------------------ network
def test_network_parameters_latent_and_contract():
    net = ModalityEncoderMaxFusion().eval()
    assert sorted(net.encoders) == ["ct", "mr", "pet", "spect"]
    # per encoder: the 16/32/64 U-Net (half the paper's 32/64/128) to a 16-channel latent; decoder of 16
    assert sum(p.numel() for p in net.encoders["mr"].parameters()) == 131_856
    assert sum(p.numel() for p in net.parameters()) == 4 * 131_856 + 11_633
    x = torch.rand(3, 2, 1, 30, 22)  # sizes not multiples of 4: padded and cropped back
    with torch.no_grad():
        z = net.encode(torch.rand(2, 2, 1, 32, 24), ["ct", "mr"])
        out = net(x, ["ct", "mr", "pet"])
    assert z.shape == (2, 2, 16, 32, 24)  # full-resolution latent of 16 channels
    assert out.shape == (2, 1, 30, 22)


def test_network_order_invariant_by_modality_and_any_number_of_inputs():
    torch.manual_seed(0)
    net = ModalityEncoderMaxFusion(width=4, latent_channels=4, decoder_width=4).eval()
    x = torch.rand(3, 1, 1, 24, 24)
    with torch.no_grad():
        ref = net(x, ["ct", "mr", "pet"])
        assert torch.equal(net(x[[2, 0, 1]], ["pet", "ct", "mr"]), ref)  # same inputs and modalities, other order
        assert not torch.allclose(net(x, ["mr", "ct", "pet"]), ref)  # encoders follow the modality, not the slot
        assert net(x[:1], ["spect"]).shape == (1, 1, 24, 24)  # one input (missing inputs)
        assert net(torch.rand(5, 1, 1, 8, 8), ["mr"] * 5).shape == (1, 1, 8, 8)  # N = 5, repeated modality


def test_network_refuses_bad_modalities_in_one_line():
    net = ModalityEncoderMaxFusion(width=2, latent_channels=2, decoder_width=2)
    x = torch.rand(2, 1, 1, 8, 8)
    with pytest.raises(ValueError, match=r"no encoder for modality xray") as err:
        net(x, ["mr", "xray"])
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="1 modalities given for 2 inputs"):
        net(x, ["mr"])
    with pytest.raises(ValueError, match="modalities"):
        ModalityEncoderMaxFusion(modalities=())


# ------------------------------------------------------------------ registry / engine / pipeline
def test_registered_as_a_modality_method_and_others_unchanged():
    m = get_method("chartsias")
    assert m.uses_modalities and m.family == "multi-encoder" and m.modes == ["slice", "volume"]
    assert m.accepts(2) and m.accepts(3) and m.accepts(4) and "Chartsias" in m.paper
    assert not get_method("max").uses_modalities and get_method("fusion-unet").uses_modalities  # read when aware
    with pytest.raises(MedFusionError, match="multi-encoder"):
        get_method("multi-encoder")  # retired: replaced by chartsias


def test_shipped_weights_float16_compact_and_card():
    path = weight_path("chartsias")
    assert path.exists() and path.stat().st_size < 2_000_000 and path.with_suffix(".md").exists()
    payload = torch.load(path, map_location="cpu", weights_only=True)
    assert payload["network"] == "ModalityEncoderMaxFusion"
    assert all(v.dtype == torch.float16 for v in payload["state_dict"].values())
    net = load_network("chartsias")
    assert not net.training and get_method("chartsias").parameter_count() == 539_057
    assert "per 256 x 256 slice" in path.with_suffix(".md").read_text(encoding="utf-8")


def test_slice_mode_order_swap_with_modalities_swapped_gives_the_same_result():
    a, b, c = _phantom((64, 64))
    fused = fuse_arrays([a, b], "chartsias", modalities=["mr", "pet"])
    assert fused.shape == (64, 64) and fused.dtype == np.float32 and 0 <= fused.min() and fused.max() <= 1
    assert np.array_equal(fused, fuse_arrays([b, a], "chartsias", modalities=["pet", "mr"]))
    assert np.array_equal(fused, fuse_arrays([a, b], "chartsias", modalities=("MR", "PET")))  # any case
    assert not np.array_equal(fused, fuse_arrays([a, b], "chartsias", modalities=["pet", "mr"]))
    three = fuse_arrays([a, b, c], "chartsias", modalities=["mr", "pet", "mr"])  # N = 3
    assert np.array_equal(three, fuse_arrays([c, a, b], "chartsias", modalities=["mr", "mr", "pet"]))
    assert not np.array_equal(three, fused)


def test_volume_mode_three_inputs_and_order():
    a, b, c = _phantom((12, 24, 20))
    fused = fuse_arrays([a, b, c], "chartsias", mode="volume", modalities=["mr", "spect", "ct"])
    assert fused.shape == a.shape and np.isfinite(fused).all()
    assert np.array_equal(fused, fuse_arrays([c, b, a], "chartsias", mode="volume", modalities=["ct", "spect", "mr"]))


def test_unknown_or_miscounted_modalities_are_one_line_errors():
    a, b, _ = _phantom((32, 32))
    with pytest.raises(MedFusionError, match=r"unknown modality 'xray' for input 2 \(known: ct, mr, pet, spect\)") as e:
        fuse_arrays([a, b], "chartsias", modalities=["mr", "xray"])
    assert "\n" not in str(e.value)
    with pytest.raises(MedFusionError, match="1 modalities given for 2 inputs"):
        fuse_arrays([a, b], "chartsias", modalities=["mr"])
    with pytest.raises(MedFusionError, match="unknown modality"):  # checked for every method when given
        fuse_arrays([a, b], "max", modalities=["mr", "auto"])


def test_no_modalities_given_means_detection_with_a_note(capsys, monkeypatch):
    from MedFusionLib.fusion import engine

    a, b, _ = _phantom((48, 48))
    seen = {}
    real = engine.detect_array_modalities
    monkeypatch.setattr(engine, "detect_array_modalities", lambda s: seen.setdefault("m", real(s)))
    fused = fuse_arrays([a, b], "chartsias")
    assert seen["m"] and all(m in ("mr", "pet") for m in seen["m"])  # detected, not taken from the position
    assert np.array_equal(fused, fuse_arrays([a, b], "chartsias", modalities=seen["m"]))
    fuse_arrays([a, b], "max")
    assert len(seen) == 1  # methods that do not use modalities are not slowed by detection


def test_pipeline_passes_the_given_or_detected_modalities():
    a, b, c = _phantom((6, 32, 28))
    images = [sitk.GetImageFromArray(v * 1000.0) for v in (a, b, c)]
    for im in images:
        im.SetSpacing((1.0, 1.0, 2.0))
    ab = fuse_images(images[:2], method="chartsias", modalities=["mr", "pet"])
    ba = fuse_images(images[1::-1], method="chartsias", modalities=["pet", "mr"])
    assert ab.kinds == ["mr", "pet"] and np.array_equal(ab.fused_array, ba.fused_array)
    other = fuse_images(images[:2], method="chartsias", modalities=["pet", "mr"])
    assert not np.array_equal(ab.fused_array, other.fused_array)  # the encoders follow the modalities
    three = fuse_images(images, method="chartsias", modalities=["mr", "pet", "ct"], mode="volume")
    assert three.fused_array.shape == a.shape and np.isfinite(three.fused_array).all()
    auto = fuse_images(images[:2], method="chartsias")  # detected by prepare_inputs, passed on
    assert len(auto.kinds) == 2 and auto.fused_array.shape == a.shape


def test_slicer_and_worker_job_path_reaches_the_same_modalities():
    from MedFusionLib.pipeline.job import compute  # what mrml.logic and the worker process call

    a, b, _ = _phantom((6, 32, 28))
    images = [sitk.GetImageFromArray(v * 1000.0) for v in (a, b)]
    direct = fuse_images(images, method="chartsias", modalities=["mr", "pet"])
    job = compute(images, method="chartsias", modalities=["mr", "pet"], computeMetrics=False)
    swapped = compute(images[::-1], method="chartsias", modalities=["pet", "mr"], computeMetrics=False)
    assert np.array_equal(sitk.GetArrayFromImage(job.fused), direct.fused_array)
    assert np.array_equal(sitk.GetArrayFromImage(swapped.fused), direct.fused_array)


# ------------------------------------------------------------------ training
def test_missing_input_dropout_keeps_labels_with_their_inputs():
    from MedFusionLib.training.chartsias import drop_inputs

    rng = np.random.default_rng(0)
    x = torch.arange(3.0).view(3, 1, 1, 1, 1).expand(3, 2, 1, 4, 4)
    sizes = set()
    for _ in range(200):
        kept, mods = drop_inputs(x, ("ct", "mr", "pet"), rng, fraction=0.5)
        assert 1 <= kept.shape[0] == len(mods) <= 3
        assert [("ct", "mr", "pet")[int(v)] for v in kept[:, 0, 0, 0, 0]] == list(mods)
        sizes.add(len(mods))
    assert sizes == {1, 2, 3}


def test_tiny_training_on_generated_labelled_pairs_and_triples(tmp_path):
    from MedFusionLib.training.chartsias import Group, drop_inputs, train_chartsias

    class Labelled:
        summary = "generated pairs and triples"

        def __init__(self):
            self.val_groups = [
                Group("pair", ("pet", "mr"), [np.stack(_phantom((32, 32), seed=9)[:2])]),
                Group("triple", ("mr", "pet", "mr"), [np.stack(_phantom((32, 32), seed=8))]),
            ]

        def batch(self, rng):
            items = [np.stack(_phantom((32, 32), seed=int(rng.integers(100)))) for _ in range(2)]
            x = torch.from_numpy(np.stack(items, axis=1)).unsqueeze(2)
            return drop_inputs(x, ("mr", "pet", "ct"), rng)

    def run(name):
        return train_chartsias(
            "chartsias",
            tmp_path,
            out=tmp_path / name,
            epochs=1,
            steps_per_epoch=2,
            checkpoint_dir=tmp_path / f"ck-{name}",
            quiet=True,
            data=Labelled(),
            config_overrides={"width": 2, "latent_channels": 2, "decoder_width": 2},
        )

    result = run("c.pt")
    assert (tmp_path / "c.pt").exists() and (tmp_path / "c.md").exists()
    assert np.isfinite(result["final"]["loss"]) and {"val_loss", "QABF", "QABF_3"} <= set(result["final"])
    assert run("again.pt")["final"]["loss"] == result["final"]["loss"]  # seeded, deterministic
    net = load_network("chartsias", str(tmp_path / "c.pt"))
    assert net(torch.rand(2, 1, 1, 16, 16), ["ct", "mr"]).shape == (1, 1, 16, 16)
    assert isinstance(build_network("ModalityEncoderMaxFusion", {"width": 2}), ModalityEncoderMaxFusion)


def test_real_training_data_carries_modality_labels(shared_data):
    from MedFusionLib.training.chartsias import RECIPE, VAL_Z, LabelledPairsAndTriples

    data = LabelledPairsAndTriples(RECIPE, shared_data, split_seed=2024, train_split="fit")
    pairs = {g.name: g.modalities for g in data.pair_groups}
    assert pairs == {"CT-MRI": ("ct", "mr"), "PET-MRI": ("pet", "mr"), "SPECT-MRI": ("spect", "mr")}
    assert {g.modalities for g in data.triple_groups} == {
        ("mr", "mr", "mr"),
        ("mr", "mr", "pet"),
        ("mr", "mr", "spect"),
    }
    assert len(data.val_groups) == 7 and len(VAL_Z) == 12
    rng = np.random.default_rng(1)
    for _ in range(20):
        x, mods = data.batch(rng)
        assert x.shape[0] == len(mods) >= 1 and x.shape[1:] == (RECIPE.batch, 1, RECIPE.crop, RECIPE.crop)
        assert set(mods) <= {"ct", "mr", "pet", "spect"}
