"""DDcGAN-lite: GAN family. A generator trained against two discriminators (one per source) plus a content loss.

Network: ``MedFusionLib/networks/ddcgan_lite.py``; training and its stability measures:
``MedFusionLib/training/adversarial.py``; model card ``weights/ddcgan-lite.md``. Only the generator ships.

* slice mode: the 2-D generator on each slice;
* volume mode: tri-planar (2.5-D): the 2-D generator along all three axes, results averaged.
"""

from __future__ import annotations

import numpy as np

from MedFusionLib.fusion.registry import FusionMethod, register_method, weight_parameters

NAME = "ddcgan-lite"
WEIGHTS = "ddcgan-lite"


def fuse(stack: np.ndarray, mode: str = "slice") -> np.ndarray:
    """Fuse ``stack``: (2, batch, H, W) in slice mode, (2, D, H, W) in volume mode; 0..1 float32."""
    from MedFusionLib.inference.runtime import fuse_with_2d_network  # torch is imported on first use only

    return fuse_with_2d_network(WEIGHTS, stack, mode)


register_method(
    FusionMethod(
        name=NAME,
        family="gan",
        description="DDcGAN-lite: fusion generator trained adversarially against two patch discriminators (one per source) plus an SSIM/gradient/intensity content loss.",
        fuse_slices=lambda stack: fuse(stack, "slice"),
        fuse_volume=lambda stack: fuse(stack, "volume"),
        inputs=2,
        volume_note="Tri-planar (2.5-D): the 2-D generator along all three axes, results averaged.",
        paper="DDcGAN (Ma et al., IEEE TIP 29, 2020): dense-block generator trained against two discriminators",
        parameters=weight_parameters(WEIGHTS),
        references=(
            "Ma et al., DDcGAN, IEEE TIP 29, 2020",
            "Huang et al., MGMDcGAN, IEEE Access 8, 2020",
        ),
    )
)
