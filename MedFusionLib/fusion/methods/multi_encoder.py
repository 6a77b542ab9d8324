"""Multi-encoder fusion (N >= 2 inputs, made for 3 or more): one encoder per input, latent fusion, one decoder.

Network: ``MedFusionLib/networks/multi_encoder.py``; model card ``weights/multi-encoder.md``. Trained on
randomly permuted Harvard pairs and SPM template triples (T1/T2/PD, T1/T2/PET, T1/PD/SPECT, T2/PD/PET), so
``medfusion fuse A B C -o OUT`` works for any order of the inputs.

* slice mode: the 2-D network on each slice;
* volume mode: tri-planar (2.5-D): the 2-D network along all three axes, results averaged.
"""

from __future__ import annotations

import numpy as np

from MedFusionLib.fusion.registry import FusionMethod, register_method, weight_parameters

NAME = "multi-encoder"
WEIGHTS = "multi-encoder"


def fuse(stack: np.ndarray, mode: str = "slice") -> np.ndarray:
    """Fuse ``stack``: (n_inputs, batch, H, W) in slice mode, (n_inputs, D, H, W) in volume mode; 0..1 float32."""
    from MedFusionLib.inference.runtime import fuse_with_2d_network  # torch is imported on first use only

    return fuse_with_2d_network(WEIGHTS, stack, mode)


register_method(
    FusionMethod(
        name=NAME,
        family="multi-encoder",
        description="Multi-encoder network: one encoder per input (any number, made for 3+), attention fusion in the shared latent space, one decoder; trained by MedFusion on pairs and triples.",
        fuse_slices=lambda stack: fuse(stack, "slice"),
        fuse_volume=lambda stack: fuse(stack, "volume"),
        inputs="n",
        volume_note="Tri-planar (2.5-D): the 2-D network along all three axes, results averaged.",
        paper="multi-branch encoder / shared decoder designs (Zhang et al., Inf. Fusion 76, 2021 survey)",
        parameters=weight_parameters(WEIGHTS),
        references=(
            "Zhang et al., Image fusion meets deep learning: a survey and perspective, Inf. Fusion 76, 2021 (multi-branch designs)",
        ),
    )
)
