"""Chartsias et al.'s multi-input network by modality (N >= 2 inputs): one encoder per modality, the
element-wise max of the latents, one decoder.

Paper: A. Chartsias, T. Joyce, M. V. Giuffrida, S. A. Tsaftaris, "Multimodal MR Synthesis via
Modality-Invariant Latent Representation", IEEE Trans. Med. Imaging 37(3), 803-814, 2018. Network:
``MedFusionLib/networks/chartsias.py`` (``ModalityEncoderMaxFusion``; its docstring lists where we depart from
the paper: half the encoder width, a decoder of 16 channels, the unsupervised fusion loss instead of a synthesis
target); model card ``weights/chartsias.md``; training ``training/chartsias.py``; docs ``docs/methods/chartsias.md``.

Each input goes through the encoder of **its modality** (``ct``, ``mr``, ``pet`` or ``spect``; every MR contrast
uses the ``mr`` encoder), never of its position: the engine passes ``modalities=`` (given with ``--modality``,
else detected by the pipeline; for bare arrays without modalities, detected from the arrays with a note). The
latents' max is symmetric, so the result does not depend on the order of the inputs.

* slice mode: the 2-D network on each slice;
* volume mode: tri-planar (2.5-D): the 2-D network along all three axes, results averaged.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from MedFusionLib.fusion.registry import declare_method

NAME = "chartsias"
WEIGHTS = "chartsias"


def fuse(stack: np.ndarray, modalities: Sequence[str], mode: str = "slice") -> np.ndarray:
    """Fuse ``stack``: (n_inputs, batch, H, W) in slice mode, (n_inputs, D, H, W) in volume mode; 0..1 float32.

    ``modalities``: one of ct, mr, pet, spect per input, in the inputs' order."""
    from MedFusionLib.inference.weight_map_onnx import chartsias_fuse  # ONNX Runtime, no torch

    return chartsias_fuse(stack, modalities, mode)  # one graph per modality's encoder, one for the decoder


declare_method(
    fuse,
    weights=WEIGHTS,
    name=NAME,
    family="multi-encoder",
    description="Chartsias et al. (IEEE TMI 2018): one U-Net-like encoder per modality (ct, mr, pet, spect), element-wise max of the latents over the inputs, one decoder; any number of inputs, independent of their order; trained by MedFusion with missing-input dropout.",
    inputs="n",
    volume_note="Tri-planar (2.5-D): the 2-D network along all three axes, results averaged.",
    paper="after Chartsias et al., Multimodal MR Synthesis via Modality-Invariant Latent Representation, IEEE TMI 37(3), 2018: encoder widths halved (16/32/64), one decoder of 16 channels for the fused image, unsupervised fusion loss instead of a synthesis target",
    paper_parameters=2_124_049,  # the paper's widths (32/64/128, decoder 32) in our layout: 4 encoders, 1 decoder
    references=(
        "A. Chartsias, T. Joyce, M. V. Giuffrida, S. A. Tsaftaris, Multimodal MR Synthesis via Modality-Invariant Latent Representation, IEEE Trans. Med. Imaging 37(3), 803-814, 2018",
        "T. Joyce, A. Chartsias, S. A. Tsaftaris, Robust Multi-Modal MR Image Synthesis, MICCAI 2017",
    ),
    uses_modalities=True,
)
