"""FusionUNet: a shared-encoder U-Net that computes the fused image itself (2-D).

Design (our own; ideas from the papers below, no code taken from them):

* one **shared encoder** applied to every input (IFCNN / DenseFuse: the same feature extractor for each
  modality, so the network takes any number of inputs and is symmetric in their order);
* the encoder is **strided** (U-Net, Ronneberger et al. 2015): one cheap 3x3 layer at full resolution, then three
  stride-2 stages, so almost all parameters and multiply-adds sit at 1/4, 1/16 and 1/64 of the pixels;
* at every scale the inputs' feature maps are fused by their **element-wise max and mean**, concatenated (IFCNN's
  element-wise fusion rule, both of its common choices kept side by side for the decoder to weigh);
* a **decoder** with skip connections (U-Net) goes back up, and the last full-resolution layers turn the fused
  features into the fused image. There is no pixel-max (or other fixed-rule) path from the inputs to the output:
  with all weights zero the output is a constant.

Trained unsupervised (``MedFusionLib/training``): SSIM to every source, an intensity term towards the brighter
source and a gradient term towards the strongest source gradient (U2Fusion, SwinFusion, CDDFuse, EMMA use losses
of this kind), plus the differentiable QABF edge-preservation term of ``training/losses.py``.

Optionally **modality-aware** (``modality_classes > 0``): each input's features at every scale are scaled and
shifted by amounts learned per modality (feature-wise linear modulation, FiLM: Perez et al., AAAI 2018), so the
shared encoder can treat CT bone, MR soft tissue and a smooth PET or SPECT uptake differently while staying one
encoder for any number of inputs. The modulation starts at zero (the plain network) and a zero code means
"modality not known".

Volume mode is tri-planar (the 2-D network along the three axes, averaged: ``inference.run_triplanar``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def _conv(c_in: int, c_out: int, kernel: int = 3, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2)


class FusionUNet(nn.Module):
    """Shared-encoder U-Net fusion network (2-D).

    Args:
        channels: feature channels of the stem (at 1/``patch`` of the resolution) and after each of the three
            stride-2 stages. Default ``(16, 24, 32, 48)``.
        decoder_channels: channels of the decoder at the three coarser scales, coarsest first (the last is also
            the width of the head). Default ``(32, 24, 16)``.
        stage_depth: 3x3 convolutions after the stride-2 convolution of each of the three encoder stages.
            Default ``(0, 1, 1)``.
        patch: space-to-depth factor of the stem (``patch`` x ``patch`` pixels become channels of one position)
            and depth-to-space factor of the head, so no convolution runs at full resolution. Default ``2``.
        head_kernel: kernel (1 or 3) of the head's first convolution, which mixes the upsampled decoder with the
            fused stem features. Default ``1``.
        full_res_channels: when > 0, a light full-resolution refinement: one shared 3x3 layer of this many
            channels on every input at full resolution (fused by max and mean like the other scales) and two 3x3
            layers that correct the head's image from it, so edges sit where the sources put them rather than
            where the upsampled coarse features do. Default ``0`` (none).
        modality_classes: when > 0, the length of the inputs' modality codes (``inference/modality_codes.py``: one-hot
            over ct, mr, pet, spect), and one FiLM scale and shift per code entry and channel at each of the four
            encoder scales. Default ``0`` (modality-blind).

    Input ``(n_inputs, batch, 1, H, W)`` in 0..1 (any ``n_inputs >= 1``, any H, W) and, for a modality-aware network,
    ``modalities``: codes ``(n_inputs, modality_classes)`` for the whole batch or ``(n_inputs, batch,
    modality_classes)`` per image; output ``(batch, 1, H, W)`` (not clamped; the inference helpers clamp to 0..1).

    Reference ideas: Zhang et al., IFCNN, Information Fusion 54, 2020 (shared extractor, element-wise feature
    fusion); Ronneberger et al., U-Net, MICCAI 2015 (strided encoder, decoder with skips); Xu et al., U2Fusion,
    IEEE TPAMI 44, 2022 and Zhao et al., CDDFuse, CVPR 2023 (unsupervised SSIM / intensity / gradient losses).
    """

    def __init__(
        self,
        channels: Sequence[int] = (16, 24, 32, 48),
        decoder_channels: Sequence[int] = (32, 24, 16),
        stage_depth: Sequence[int] = (0, 1, 1),
        patch: int = 2,
        head_kernel: int = 1,
        full_res_channels: int = 0,
        modality_classes: int = 0,
    ) -> None:
        super().__init__()
        channels, decoder_channels = tuple(int(c) for c in channels), tuple(int(c) for c in decoder_channels)
        if len(channels) != 4 or len(decoder_channels) != 3:
            raise ValueError(f"channels needs 4 entries and decoder_channels 3, got {channels} and {decoder_channels}")
        if min(channels + decoder_channels) < 1:
            raise ValueError(f"channel counts must be positive, got {channels} and {decoder_channels}")
        stage_depth = tuple(int(d) for d in stage_depth)
        if len(stage_depth) != 3 or min(stage_depth) < 0:
            raise ValueError(f"stage_depth needs 3 entries >= 0, got {stage_depth}")
        if patch < 1:
            raise ValueError(f"patch must be >= 1, got {patch}")
        if head_kernel not in (1, 3):
            raise ValueError(f"head_kernel must be 1 or 3, got {head_kernel}")
        if full_res_channels < 0:
            raise ValueError(f"full_res_channels must be >= 0, got {full_res_channels}")
        if modality_classes < 0:
            raise ValueError(f"modality_classes must be >= 0, got {modality_classes}")
        self.full_res_channels = int(full_res_channels)
        self.modality_classes = int(modality_classes)
        self.channels, self.decoder_channels, self.stage_depth, self.patch = (
            channels,
            decoder_channels,
            stage_depth,
            patch,
        )
        act = lambda: nn.ReLU(inplace=True)  # noqa: E731
        # space-to-depth stem: each patch x patch block of pixels becomes patch^2 channels of one position
        self.stem = nn.Sequential(_conv(patch * patch, channels[0]), act())
        self.stages = nn.ModuleList()
        for c_in, c_out, depth in zip(channels[:-1], channels[1:], stage_depth):
            layers = [_conv(c_in, c_out, stride=2), act()]
            for _ in range(depth):
                layers += [_conv(c_out, c_out), act()]
            self.stages.append(nn.Sequential(*layers))
        d3, d2, d1 = decoder_channels
        # fused features at each scale have 2 * channels (max and mean over the inputs)
        self.bottom = nn.Sequential(_conv(2 * channels[3], d3), act())
        self.up2 = nn.Sequential(_conv(d3 + 2 * channels[2], d2), act())
        self.up1 = nn.Sequential(_conv(d2 + 2 * channels[1], d1), act())
        # depth-to-space head: patch^2 output channels at the stem's resolution become the full-resolution image
        self.head = nn.Sequential(_conv(d1 + 2 * channels[0], d1, kernel=head_kernel), act(), _conv(d1, patch * patch))
        if self.full_res_channels:
            fr = self.full_res_channels
            self.full = nn.Sequential(_conv(1, fr), act())
            self.refine = nn.Sequential(_conv(1 + 2 * fr, fr), act(), _conv(fr, 1))
        if self.modality_classes:
            # per scale: codes -> (scale, shift) for each channel; zero at the start, so training begins
            # modality-blind (made last: the other layers draw a modality-blind network's initial weights)
            self.film = nn.ModuleList(nn.Linear(self.modality_classes, 2 * c, bias=False) for c in channels)
            for layer in self.film:
                nn.init.zeros_(layer.weight)

    @staticmethod
    def _fuse(features: torch.Tensor) -> torch.Tensor:
        """(n_inputs, batch, C, ...) -> (batch, 2C, ...): element-wise max and mean over the inputs.

        Written as a running maximum and sum over the inputs: on channels-last CPU tensors torch's ``amax`` /
        ``mean`` reductions over the leading axis took a third of the network's time (0.8 of 2.4 s on the
        porcine volume), the element-wise form a small fraction of it. The ONNX export takes the reductions,
        which keep the graph's number of inputs dynamic (a Python loop would fix it at the traced one)."""
        if torch.compiler.is_exporting():
            return torch.cat([features.amax(dim=0), features.mean(dim=0)], dim=1)
        parts = features.unbind(0)
        top, total = parts[0], parts[0]
        for part in parts[1:]:
            top, total = torch.maximum(top, part), total + part
        return torch.cat([top, total / len(parts)], dim=1)

    @staticmethod
    def _up(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)

    def _codes(self, modalities: torch.Tensor | None, n: int, batch: int) -> torch.Tensor | None:
        """The codes as (n * batch, modality_classes), or None for a modality-blind network."""
        if not self.modality_classes:
            return None
        if modalities is None:
            raise ValueError("this FusionUNet is modality-aware: give the inputs' modality codes")
        if modalities.ndim == 2:
            modalities = modalities.unsqueeze(1).expand(-1, batch, -1)
        if modalities.ndim != 3 or modalities.shape[-1] != self.modality_classes:
            raise ValueError(
                f"expected modality codes (n_inputs[, batch], {self.modality_classes}), got {tuple(modalities.shape)}"
            )
        return modalities.reshape(n * batch, self.modality_classes)

    def _modulate(self, x: torch.Tensor, codes: torch.Tensor | None, scale: int) -> torch.Tensor:
        """FiLM of the (n * batch, C, h, w) features of encoder scale ``scale`` by each input's modality code."""
        if codes is None:
            return x
        gain, shift = self.film[scale](codes)[..., None, None].chunk(2, dim=1)
        return x * (1 + gain) + shift

    def forward(self, inputs: torch.Tensor, modalities: torch.Tensor | None = None) -> torch.Tensor:
        if inputs.ndim != 5 or inputs.shape[2] != 1:
            raise ValueError(f"expected (n_inputs, batch, 1, H, W), got {tuple(inputs.shape)}")
        n, batch, _, h, w = inputs.shape
        codes = self._codes(modalities, n, batch)
        p = self.patch
        x = inputs.flatten(0, 1)
        pad_h, pad_w = (-h) % p, (-w) % p
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h))
        full_res = x
        x = self._modulate(self.stem(F.pixel_unshuffle(x, p) if p > 1 else x), codes, 0)
        skips = [self._fuse(x.unflatten(0, (n, -1)))]
        for scale, stage in enumerate(self.stages, start=1):
            x = self._modulate(stage(x), codes, scale)
            skips.append(self._fuse(x.unflatten(0, (n, -1))))
        y = self.bottom(skips[3])
        y = self.up2(torch.cat([self._up(y, skips[2]), skips[2]], dim=1))
        y = self.up1(torch.cat([self._up(y, skips[1]), skips[1]], dim=1))
        y = self.head(torch.cat([self._up(y, skips[0]), skips[0]], dim=1))
        if p > 1:
            y = F.pixel_shuffle(y, p)
        if self.full_res_channels:
            detail = self._fuse(self.full(full_res).unflatten(0, (n, -1)))
            y = y + self.refine(torch.cat([y, detail], dim=1))
        return y[..., :h, :w]
