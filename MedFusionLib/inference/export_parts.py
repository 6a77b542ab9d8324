"""The network parts of the weight-map, feature and multi-encoder methods, as torch modules that ``torch.export``
traces into their ONNX graphs (``inference/onnx_export.py``) and that the parity tests run as the torch reference.

Each part ends where the shapes stop being fixed functions of the input's: what follows (Gaussian smoothing of
weight maps, Laplacian pyramids, consistency verification, the tri-planar average, the latents' max) runs in numpy
(``inference/weight_map_onnx.py``, ``inference/liu_onnx.py``, ``inference/pyramids.py``), whose levels and padding depend on the image
size. All parts take ``(n_inputs, batch, 1, H, W)`` like the other graphs, except chartsias's decoder (latents).
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from MedFusionLib.inference.weight_blending import RADIUS, SHARPNESS, activity_weights, feature_levels, level_activities
from MedFusionLib.networks.chartsias import ModalityEncoderMaxFusion
from MedFusionLib.networks.decision_map import DecisionMapNet
from MedFusionLib.networks.densefuse import DenseFuse
from MedFusionLib.networks.liu_cnn import LiuSiameseCNN

BASE_SIZE = 31  # deep-features: mean filter of the base part (Li, Wu & Kittler's base/detail split)


class DecisionWeights(nn.Module):
    """decision-map-cnn: raw weight maps (softmax of the scores across sources), (n, b, 1, H, W), unsmoothed."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = cast(DecisionMapNet, net)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.net.weight_maps(inputs, smooth=False)


class ActivityWeights(nn.Module):
    """deep-feature-weighting: DenseFuse-lite encoder features -> per-level windowed L1 activity -> softmax across
    sources, averaged over the levels: (n, b, 1, H, W). The scale normalisation is over the whole input batch, so
    the numpy side passes the same chunks torch did."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.encoder = net.encoder
        self.bounds = feature_levels(net)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return activity_weights(level_activities(self.encoder, inputs, self.bounds, RADIUS), SHARPNESS)


class DeepFeaturesRule(nn.Module):
    """deep-features: Li, Wu & Kittler's rule around our DenseFuse encoder, whole: base parts (31 x 31 mean)
    averaged, detail parts blended by each feature layer's L1 activity share, max over the layers. All its shapes
    follow the input's, so it is one graph: (n, b, 1, H, W) -> (b, 1, H, W)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = cast(DenseFuse, net)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return deep_features_rule(self.net, inputs)


def deep_features_rule(net: DenseFuse, x: torch.Tensor) -> torch.Tensor:
    """``x``: (n, b, 1, H, W) in 0..1 -> (b, 1, H, W), with ``net`` a :class:`DenseFuse`."""
    n = x.shape[0]
    flat = x.flatten(0, 1)
    base = F.avg_pool2d(flat, BASE_SIZE, stride=1, padding=BASE_SIZE // 2, count_include_pad=False)
    detail = (flat - base).unflatten(0, (n, -1))
    fused_base = base.unflatten(0, (n, -1)).mean(dim=0)
    feats = net.c1(flat)
    layers = [feats]
    for layer in net.dense:
        new = layer(feats)
        layers.append(new)
        feats = torch.cat([feats, new], dim=1)
    candidates = []
    for phi in layers:
        activity = F.avg_pool2d(phi.abs().sum(dim=1, keepdim=True), 3, stride=1, padding=1, count_include_pad=False)
        activity = activity.unflatten(0, (n, -1))  # (n, b, 1, H, W)
        total = activity.sum(dim=0, keepdim=True)
        weights = torch.where(total > 1e-6, activity / total.clamp_min(1e-6), torch.full_like(activity, 1.0 / n))
        candidates.append((weights * detail).sum(dim=0))
    return fused_base + torch.stack(candidates).amax(dim=0)


class LiuWeights(nn.Module):
    """liu-cnn: the symmetric score map of the two inputs spread over each 16 x 16 patch (overlaps averaged): the
    per-pixel weight of the first input, (b, 1, H, W). H and W must be even and at least one patch (numpy pads)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = cast(LiuSiameseCNN, net)
        self.register_buffer("ones", torch.ones(1, 1, self.net.patch, self.net.patch), persistent=False)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        scores = self.net.score_map(inputs[0], inputs[1])
        ones = cast(torch.Tensor, self.ones)
        total = F.conv_transpose2d(scores, ones, stride=self.net.stride)
        count = F.conv_transpose2d(torch.ones_like(scores), ones, stride=self.net.stride)
        return total / count


class ChartsiasEncoder(nn.Module):
    """chartsias: the encoder of one modality over every input given to it: (k, b, 1, H, W) -> latents
    (k, b, C, H, W); H and W multiples of 4 (numpy pads)."""

    def __init__(self, net: nn.Module, modality: str) -> None:
        super().__init__()
        self.encoder = cast(ModalityEncoderMaxFusion, net).encoders[modality]

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        k = inputs.shape[0]
        return self.encoder(inputs.flatten(0, 1)).unflatten(0, (k, -1))


class ChartsiasDecoder(nn.Module):
    """chartsias: the decoder of the fused latent, (b, C, H, W) -> (b, 1, H, W)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.decoder = cast(ModalityEncoderMaxFusion, net).decoder

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.decoder(inputs)
