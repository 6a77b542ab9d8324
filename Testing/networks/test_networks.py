"""Every network: builds in 2-D and 3-D, keeps the (batch, 1, *spatial) contract for any number of inputs, and
refuses bad arguments in ``__init__`` (not later, in ``forward``)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from MedFusionLib.networks import (  # noqa: E402
    NETWORKS,
    DDcGANGenerator,
    DecisionMapNet,
    DenseFuseLite,
    IFCNNReference,
    MaxResidualCNN,
    ModalityEncoderMaxFusion,
    build_network,
)

DIMENSION_GENERIC = [MaxResidualCNN, DenseFuseLite, DecisionMapNet]


@pytest.mark.parametrize("cls", DIMENSION_GENERIC, ids=lambda c: c.__name__)
@pytest.mark.parametrize("spatial_dims", [2, 3])
@pytest.mark.parametrize("n_inputs", [2, 3])
def test_output_shape(cls, spatial_dims, n_inputs):
    net = cls(spatial_dims=spatial_dims).eval()
    spatial = (16, 20) if spatial_dims == 2 else (8, 16, 12)
    with torch.no_grad():
        out = net(torch.rand(n_inputs, 2, 1, *spatial))
    assert out.shape == (2, 1, *spatial)


def test_reference_yardstick_shape():
    with torch.no_grad():
        assert IFCNNReference(channels=8)(torch.rand(2, 1, 1, 12, 12)).shape == (1, 1, 12, 12)


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (lambda: MaxResidualCNN(spatial_dims=4), "spatial_dims"),
        (lambda: MaxResidualCNN(rule="min"), "fusion rule"),
        (lambda: MaxResidualCNN(channels=0), "channels"),
        (lambda: DenseFuseLite(strategy="median"), "strategy"),
        (lambda: DenseFuseLite(l1_radius=-1), "l1_radius"),
        (lambda: DDcGANGenerator(dense_layers=0), "dense_layers"),
        (lambda: DecisionMapNet(dilations=(1, 0)), "dilation"),
        (lambda: DecisionMapNet(smooth_sigma=-1.0), "smooth_sigma"),
        (lambda: ModalityEncoderMaxFusion(width=0), "width"),
        (lambda: ModalityEncoderMaxFusion(modalities=("mr", "mr")), "modalities"),
        (lambda: IFCNNReference(channels=-3), "channels"),
    ],
)
def test_bad_arguments_fail_at_construction(factory, message):
    with pytest.raises(ValueError, match=message):
        factory()


def test_every_network_has_a_docstring_naming_its_arguments():
    import inspect

    for name, cls in NETWORKS.items():
        doc = inspect.getdoc(cls) or ""
        assert "Args:" in doc, name
        for parameter in list(inspect.signature(cls.__init__).parameters)[1:]:
            assert parameter in doc, f"{name} does not document {parameter}"


def test_build_network_rebuilds_by_name_and_refuses_unknown_names():
    assert isinstance(build_network("MaxResidualCNN", {"channels": 4}), MaxResidualCNN)
    with pytest.raises(ValueError, match="unknown network"):
        build_network("UNet", {})
