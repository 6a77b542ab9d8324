"""Liu et al.'s CNN decision-map fusion (``liu-cnn``): a siamese patch classifier scores, fixed rules fuse.

Liu, Chen, Peng & Wang, "Multi-focus image fusion with a deep convolutional neural network", Information
Fusion 36 (2017) 191-207, and its medical follow-up Liu, Chen, Cheng & Peng, "A medical image fusion method based
on convolutional neural networks", FUSION 2017.

* learned: ``networks/liu_cnn.py`` (:class:`~MedFusionLib.networks.liu_cnn.LiuSiameseCNN`), trained by
  ``training/patch_classifier.py`` as a classifier of which of two 16 x 16 patches is the sharp one, run fully
  convolutionally over the two slices: a score map (one score per patch, stride 2);
* fixed post-processing (``inference/liu_cnn.py``): score map -> per-pixel weight map (overlapping patches
  averaged) -> with ``weights="decision"``, a binary decision map (threshold 0.5) with consistency verification
  (regions under 1 % of the image reversed) -> the medical paper's pyramid fusion: Laplacian pyramids of the
  sources, Gaussian pyramid of the weights, per coefficient "averaging" (by the weights) where the local
  similarity of the two sources is >= 0.6 and "selection" (larger local energy) elsewhere.

The shipped default, chosen on the model-selection cases among soft/decision weights with and without the
envelope (docs/methods/liu-cnn.md), is ``weights="decision"`` with ``envelope=True``: the verified binary map,
and the result clipped at each pixel to the range of the two sources (our addition: it removes the halo the
pyramid's selection mode leaves beside strong edges, and keeps the background black). Two inputs only (the method is pairwise). Volume mode:
tri-planar weight maps (the 2-D network along the three axes, averaged), verified in 3-D when ``decision``, and a
3-D pyramid: one decision per voxel.

Departures from the papers: the first fully connected layer is factorised (rank 16 over the channels: 640,786
parameters instead of 8,759,042); trained on our medical slices, not on ImageNet photographs; the score of
(A, B) is averaged with one minus the score of (B, A) (the result does not depend on the input order); the
multi-focus paper's guided filter and single-scale blend are replaced by the medical paper's pyramid for both
weight maps; the envelope clip.
"""

from __future__ import annotations

import numpy as np

from MedFusionLib.fusion.registry import declare_method

NAME = "liu-cnn"
DEFAULT_WEIGHTS = "decision"
DEFAULT_ENVELOPE = True


def fuse(
    stack: np.ndarray, mode: str = "slice", weights: str = DEFAULT_WEIGHTS, envelope: bool = DEFAULT_ENVELOPE
) -> np.ndarray:
    """Fuse ``stack``: (2, batch, H, W) in slice mode, (2, D, H, W) in volume mode; 0..1 float32.
    ``weights``: "soft" (the score map's weight map) or "decision" (binary, consistency-verified); ``envelope``:
    clip to the sources' range at each pixel (our addition)."""
    from MedFusionLib.inference import liu_onnx  # ONNX Runtime and numpy, no torch

    return liu_onnx.fuse(stack, mode, weights=weights, envelope=envelope)


declare_method(
    fuse,
    weights=NAME,
    name=NAME,
    family="decision-map",
    description="Liu et al.'s CNN fusion: a siamese patch classifier (trained to tell which of two patches is sharp) scores the two inputs fully convolutionally; the thresholded, consistency-verified decision map drives a Laplacian-pyramid blend choosing selection or averaging per coefficient by local similarity.",
    inputs=2,
    volume_note="Tri-planar weight maps (the 2-D network along all three axes, averaged), one 3-D Laplacian pyramid with the local-similarity rule.",
    paper="after the CNN decision map of Liu et al. (Information Fusion 36, 2017) with the medical pyramid fusion (Liu et al., FUSION 2017): first fully connected layer factorised at rank 16, symmetric score, trained on our medical slices",
    paper_parameters=8_759_042,  # the published layers at grey input (LiuSiameseCNN(rank=0))
    references=(
        "Liu, Chen, Peng & Wang, Multi-focus image fusion with a deep convolutional neural network, Information Fusion 36 (2017) 191-207",
        "Liu, Chen, Cheng & Peng, A medical image fusion method based on convolutional neural networks, FUSION 2017",
    ),
)
