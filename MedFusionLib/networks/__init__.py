"""Plain-PyTorch fusion networks, one per file.

Six take ``spatial_dims`` (2 or 3): :class:`IFCNN`, :class:`DenseFuse`, :class:`MaxResidualCNN`,
:class:`DenseFuseLite`, :class:`DDcGANGenerator` and :class:`DecisionMapNet`. Four are 2-D only and take no
``spatial_dims``: :class:`FusionUNet`, :class:`IFCNNReference`, :class:`ModalityEncoderMaxFusion` and
:class:`LiuSiameseCNN` (the methods built on them run the 2-D network along the three axes in volume mode;
``IFCNNReference`` is only a speed yardstick). ``Testing/test_architecture.py`` checks these two lists.

* :class:`FusionUNet` (``fusion_unet.py``): shared-encoder U-Net that computes the fused image (the default).
* :class:`IFCNN` (``ifcnn.py``): IFCNN at its published architecture (Zhang et al. 2020).
* :class:`DenseFuse` (``densefuse.py``): DenseFuse at its published architecture (Li & Wu 2019).
* :class:`MaxResidualCNN` (``max_residual_cnn.py``): pixel-wise max plus a small learned residual (formerly IFCNN-lite).
* :class:`DenseFuseLite` (``densefuse_lite.py``): dense-block encoder / decoder in the DenseFuse family.
* :class:`IFCNNReference` (``ifcnn_reference.py``): the published IFCNN architecture's cost, a speed yardstick.
* :class:`DDcGANGenerator` (``ddcgan.py``): DDcGAN's generator at its published architecture (Ma et al. 2020),
  trained against its two discriminators (:class:`DDcGANDiscriminator`, same file; training only).
* :class:`DecisionMapNet` (``decision_map.py``): per-pixel weight maps (blending ops in ``layers.py``).
* :class:`ModalityEncoderMaxFusion` (``chartsias.py``): one encoder per modality, max of the latents, one decoder
  (Chartsias et al. 2018).
* :class:`LiuSiameseCNN` (``liu_cnn.py``): Liu et al.'s siamese patch classifier (score maps for decision maps).

Weight files hold ``{"network": class name, "config": kwargs, "state_dict": ..., "meta": ...}``;
:func:`build_network` rebuilds a network from such a dict.
"""

from __future__ import annotations

from typing import Any

from MedFusionLib.networks.chartsias import ModalityEncoderMaxFusion
from MedFusionLib.networks.ddcgan import DDcGANGenerator
from MedFusionLib.networks.decision_map import DecisionMapNet
from MedFusionLib.networks.densefuse import DenseFuse
from MedFusionLib.networks.densefuse_lite import DenseFuseLite
from MedFusionLib.networks.fusion_unet import FusionUNet
from MedFusionLib.networks.ifcnn import IFCNN
from MedFusionLib.networks.ifcnn_reference import IFCNNReference
from MedFusionLib.networks.liu_cnn import LiuSiameseCNN
from MedFusionLib.networks.max_residual_cnn import MaxResidualCNN

NETWORKS = {
    cls.__name__: cls
    for cls in (
        FusionUNet,
        IFCNN,
        DenseFuse,
        MaxResidualCNN,
        DenseFuseLite,
        IFCNNReference,
        DDcGANGenerator,
        DecisionMapNet,
        ModalityEncoderMaxFusion,
        LiuSiameseCNN,
    )
}


def build_network(network: str, config: dict[str, Any]):
    """Instantiate network class ``network`` (a name from :data:`NETWORKS`) with keyword ``config``."""
    try:
        cls = NETWORKS[network]
    except KeyError:
        raise ValueError(f"unknown network {network!r} (known: {', '.join(NETWORKS)})") from None
    return cls(**config)


__all__ = [
    "DDcGANGenerator",
    "DecisionMapNet",
    "DenseFuse",
    "DenseFuseLite",
    "FusionUNet",
    "IFCNN",
    "IFCNNReference",
    "LiuSiameseCNN",
    "MaxResidualCNN",
    "ModalityEncoderMaxFusion",
    "NETWORKS",
    "build_network",
]
