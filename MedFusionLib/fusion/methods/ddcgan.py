"""DDcGAN (Ma et al., IEEE TIP 29, 2020) at its published architecture: GAN family, two sources.

Network: ``MedFusionLib/networks/ddcgan.py`` (the generator computes the fused image itself); training against the
two discriminators: ``MedFusionLib/training/adversarial.py``; model card ``weights/ddcgan.md`` (with the ablation
trained without the adversarial terms). Only the generator ships.

Input order matters (DDcGAN's roles): the first input gives the intensities (CT, PET or SPECT: the paper's PET),
the second the texture (MRI), as in the Harvard pairs the network was trained on.

* slice mode: the 2-D generator on each slice;
* volume mode: tri-planar (2.5-D): the 2-D generator along all three axes, results averaged.
"""

from __future__ import annotations

import numpy as np

from MedFusionLib.fusion.registry import FusionMethod, register_method, weight_parameters

NAME = "ddcgan"
MAX_PIXELS = 1 << 18  # per input and forward pass: 240-channel full-resolution features (4 slices of 256 x 256)


def fuse(stack: np.ndarray, mode: str = "slice") -> np.ndarray:
    """Fuse ``stack``: (2, batch, H, W) in slice mode, (2, D, H, W) in volume mode; 0..1 float32."""
    from MedFusionLib.inference.runtime import fuse_with_2d_network  # torch is imported on first use only

    return fuse_with_2d_network(NAME, stack, mode, MAX_PIXELS)


register_method(
    FusionMethod(
        name=NAME,
        family="gan",
        description="DDcGAN (Ma et al. 2020) at the published architecture: dense-block encoder (conv + 4 x 48) and 5-layer decoder on the two concatenated sources, trained against two discriminators (one per source) plus DDcGAN's content loss (intensities of the first input: CT/PET/SPECT; texture of the second: MRI); trained by MedFusion on CPU (briefly: see its model card).",
        fuse_slices=lambda stack: fuse(stack, "slice"),
        fuse_volume=lambda stack: fuse(stack, "volume"),
        inputs=2,
        volume_note="Tri-planar (2.5-D): the 2-D generator along all three axes, results averaged.",
        paper="DDcGAN (Ma et al., IEEE TIP 29, 2020), generator at its published architecture, trained against two discriminators",
        parameters=weight_parameters(NAME),
        references=(
            "Ma, Xu, Jiang, Mei & Zhang, DDcGAN: A dual-discriminator conditional generative adversarial network for multi-resolution image fusion, IEEE Transactions on Image Processing 29 (2020) 4980-4995",
        ),
    )
)
