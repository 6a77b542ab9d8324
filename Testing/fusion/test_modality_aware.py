"""A modality-aware FusionUNet (``modality_classes``): FiLM by each input's modality, through training batches,
the ONNX graph (a second input) and the fusion-unet method."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from synthetic import phantom_inputs

from MedFusionLib.fusion import fuse_arrays
from MedFusionLib.inference.modality_codes import CODE_MODALITIES, modality_codes
from MedFusionLib.inference.onnx_export import export_graph
from MedFusionLib.inference.onnx_runtime import load_session, session_forward
from MedFusionLib.inference.runtime import load_network
from MedFusionLib.networks import FusionUNet
from MedFusionLib.training import trainer as T
from MedFusionLib.training.recipes import RECIPES


def _aware(seed: int = 0) -> FusionUNet:
    """A modality-aware network whose modulation is not zero (as after training)."""
    torch.manual_seed(seed)
    net = FusionUNet(full_res_channels=4, modality_classes=len(CODE_MODALITIES)).eval()
    with torch.no_grad():
        for layer in net.film:
            layer.weight.normal_(std=0.5)
    return net


def test_codes_are_one_hot_with_a_zero_row_for_not_known():
    codes = modality_codes(["CT", None, "spect"])
    assert codes.shape == (3, len(CODE_MODALITIES)) and codes.dtype == np.float32
    assert codes[0, CODE_MODALITIES.index("ct")] == 1 and codes[2, CODE_MODALITIES.index("spect")] == 1
    assert codes.sum() == 2 and not codes[1].any()
    with pytest.raises(ValueError, match="unknown modality 'xray'"):
        modality_codes(["xray"])


def test_modulation_starts_as_the_modality_blind_network_and_then_tells_modalities_apart():
    x = torch.rand(2, 3, 1, 40, 36)
    torch.manual_seed(0)
    blind = FusionUNet(full_res_channels=4)
    torch.manual_seed(0)
    fresh = FusionUNet(full_res_channels=4, modality_classes=4)
    ct_mr = torch.from_numpy(modality_codes(["ct", "mr"]))
    assert torch.equal(blind(x), fresh(x, ct_mr))  # zero FiLM, same initial weights
    net = _aware()
    pet_mr = torch.from_numpy(modality_codes(["pet", "mr"]))
    assert (net(x, ct_mr) - net(x, pet_mr)).abs().max() > 1e-3
    per_image = ct_mr[:, None].expand(-1, 3, -1)
    assert torch.allclose(net(x, ct_mr), net(x, per_image))  # one code per input, or one per input and image
    with pytest.raises(ValueError, match="modality-aware"):
        net(x)
    with pytest.raises(ValueError, match="modality codes"):
        net(x, torch.zeros(2, 3))


def test_training_batches_carry_each_images_modalities_with_some_not_known():
    data = object.__new__(T._Data)  # the batch logic alone, on hand-made material
    data.recipe = RECIPES["fusion-unet-v25"]
    data.modality_aware, data.volume_slices, data.volume_modalities = True, [np.zeros((2, 20, 20))], [("pet", "mr")]
    data.train = np.random.default_rng(0).random((3, 2, 140, 140)).astype(np.float32)
    data.train_modalities = [("ct", "mr"), ("pet", "mr"), ("spect", "mr")]
    rng = np.random.default_rng(1)
    batches = [data.labelled_batch(rng) for _ in range(20)]
    x, codes = batches[0]
    assert x.shape[:3] == (2, data.recipe.batch, 1) and codes.shape == (2, data.recipe.batch, len(CODE_MODALITIES))
    codes = torch.cat([c for _, c in batches], dim=1)
    assert codes.sum(dim=-1).le(1).all()  # one-hot, or all zero: not known
    assert torch.equal(codes[1].sum(dim=-1), codes[1, :, CODE_MODALITIES.index("mr")])  # every known second input: MR
    assert codes[0, :, CODE_MODALITIES.index("mr")].sum() == 0 and codes[0].sum() > 0
    not_known = int((codes.sum(dim=-1) == 0).sum())
    assert 0.03 * codes[..., 0].numel() < not_known < 0.2 * codes[..., 0].numel()  # MODALITY_DROPOUT = 0.1


def test_graph_takes_the_modalities_as_a_second_input_and_the_method_passes_them(tmp_path, monkeypatch):
    net = _aware()
    weights = T.export_weights(net, RECIPES["fusion-unet-v25"], tmp_path / "fusion-unet.pt", {"test": True})
    graph = export_graph("fusion-unet", weights, tmp_path / "fusion-unet.onnx")  # checked against torch inside
    net = load_network("fusion-unet", str(weights))  # the weights as stored (float16)
    session = load_session("fusion-unet", graph)
    assert [i.name for i in session.get_inputs()] == ["inputs", "modalities"]
    x = np.random.default_rng(2).random((3, 2, 1, 45, 51), dtype=np.float32)
    for names in (["ct", "mr", "pet"], [None, "mr", "spect"]):
        got = session_forward(session, modalities=names)(x)
        with torch.no_grad():
            expected = net(torch.from_numpy(x), torch.from_numpy(modality_codes(names))).numpy()
        assert np.abs(got - expected).max() < 1e-4
    monkeypatch.setenv("MEDFUSION_WEIGHTS_DIR", str(tmp_path))
    a, b = (v / v.max() for v in phantom_inputs((6, 48, 40))[:2])
    as_ct = fuse_arrays([a, b], "fusion-unet", modalities=["ct", "mr"])
    as_pet = fuse_arrays([a, b], "fusion-unet", modalities=["pet", "mr"])
    assert as_ct.shape == a.shape and np.abs(as_ct - as_pet).max() > 1e-3


def test_the_shipped_modality_blind_graph_ignores_the_modalities():
    """The shipped fusion-unet weights (v12) are modality-blind: the method takes the modalities (a modality-aware
    candidate reads them), and the result does not depend on them."""
    session = load_session("fusion-unet")
    assert [i.name for i in session.get_inputs()] == ["inputs"]
    a, b = (v / v.max() for v in phantom_inputs((6, 48, 40))[:2])
    given = fuse_arrays([a, b], "fusion-unet", modalities=["spect", "mr"])
    assert np.array_equal(given, fuse_arrays([a, b], "fusion-unet", modalities=["ct", "mr"]))
