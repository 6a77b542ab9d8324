"""DDcGAN (Ma et al., IEEE TIP 29, 2020) at its published architecture: GAN family, two sources.

Network: ``MedFusionLib/networks/ddcgan.py`` (the generator computes the fused image itself); training against the
two discriminators: ``MedFusionLib/training/adversarial.py``; model card ``weights/ddcgan.md`` (with the ablation
trained without the adversarial terms). Only the generator ships.

DDcGAN gives its two sources different roles: the intensities come from CT, PET or SPECT (the paper's PET), the
texture from the MRI, as in the Harvard pairs the network was trained on. The method receives the inputs'
modalities (``uses_modalities``: given with ``--modality`` or detected by the pipeline) and puts the MRI second
whatever the order the user gave, so ``fuse MR CT`` and ``fuse CT MR`` give the same image; with two MR or two
non-MR inputs the given order is kept.

* slice mode: the 2-D generator on each slice;
* volume mode: tri-planar (2.5-D): the 2-D generator along all three axes, results averaged.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from MedFusionLib.fusion.registry import declare_method

NAME = "ddcgan"
MAX_PIXELS = 1 << 18  # per input and forward pass: 240-channel full-resolution features (4 slices of 256 x 256)


def generator_order(modalities: Sequence[str] | None) -> tuple[int, int]:
    """The inputs' order for the generator: the MRI second (DDcGAN's texture source), else as given."""
    if modalities is not None and modalities[0] == "mr" and modalities[1] != "mr":
        return (1, 0)
    return (0, 1)


def fuse(stack: np.ndarray, mode: str = "slice", modalities: Sequence[str] | None = None) -> np.ndarray:
    """Fuse ``stack``: (2, batch, H, W) in slice mode, (2, D, H, W) in volume mode; 0..1 float32.

    ``modalities`` (one of ct, mr, pet, spect per input) put the MRI second; see the module docstring."""
    from MedFusionLib.inference.onnx_runtime import fuse_2d  # ONNX Runtime, no torch

    return fuse_2d(NAME, stack[list(generator_order(modalities))], mode, MAX_PIXELS)


declare_method(
    fuse,
    weights=NAME,
    name=NAME,
    family="gan",
    description="DDcGAN (Ma et al. 2020) at the published architecture: dense-block encoder (conv + 4 x 48) and 5-layer decoder on the two concatenated sources, trained against two discriminators (one per source) plus DDcGAN's content loss (intensities of the CT/PET/SPECT input, texture of the MRI, whatever their order); trained by MedFusion on CPU (briefly: see its model card).",
    inputs=2,
    volume_note="Tri-planar (2.5-D): the 2-D generator along all three axes, results averaged.",
    paper="DDcGAN (Ma et al., IEEE TIP 29, 2020), generator at its published architecture (widths of the authors' release), trained against two discriminators",
    paper_parameters=1_097_665,  # counted layer for layer (the paper states no total); same-resolution form
    references=(
        "Ma, Xu, Jiang, Mei & Zhang, DDcGAN: A dual-discriminator conditional generative adversarial network for multi-resolution image fusion, IEEE Transactions on Image Processing 29 (2020) 4980-4995",
    ),
    uses_modalities=True,
)
