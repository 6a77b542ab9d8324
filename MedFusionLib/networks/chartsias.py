"""Modality-encoder max-fusion network after Chartsias et al. (2-D): one U-Net-like encoder per imaging
modality, the latents fused by their element-wise maximum over the available inputs, one decoder.

Paper: A. Chartsias, T. Joyce, M. V. Giuffrida, S. A. Tsaftaris, "Multimodal MR Synthesis via
Modality-Invariant Latent Representation", IEEE Trans. Med. Imaging 37(3), 803-814, 2018 (and Joyce,
Chartsias, Tsaftaris, MICCAI 2017). Their model, as we read it (our own code, written from the description):

* **one encoder per input modality** (separate weights): a small U-Net, two 3x3 convolutions per level at
  widths 32 / 64 / 128 (LeakyReLU), two 2x2 max-poolings, upsampling with skip concatenations back to full
  resolution, and a last 3x3 convolution to a **full-resolution latent of 16 channels** (LeakyReLU);
* **fusion**: the element-wise **max** of the latents of the inputs that are present (any subset), so the
  network takes any number of inputs and its result does not depend on their order;
* **one decoder** per output modality (we have one output, the fused image): two 3x3 convolutions of 32
  channels, concatenated with the latent (dense skip), two more, concatenated again, and a 1x1 convolution
  to one channel;
* training with inputs left out (every single latent decoded as well as the fused one) and a term pulling the
  latents of the different modalities together (the "modality-invariant" latent).

Where we depart:

* widths: encoder ``width`` / 2 ``width`` / 4 ``width`` with ``width = 16`` shipped (theirs 32: a quarter of
  the parameters and multiply-adds, for a CPU training budget of minutes) and decoder width 16 (theirs 32); the
  latent keeps their 16 channels;
* the output layer has no ReLU (the inference helpers clamp to 0..1; a ReLU there can leave the output stuck
  at zero early in training); a LeakyReLU also follows the convolution after each upsampling;
* inputs whose height or width is not a multiple of 4 are zero-padded at the bottom/right and cropped back;
* encoders are keyed by our modality names (``ct``, ``mr``, ``pet``, ``spect``; all MR contrasts share the
  ``mr`` encoder) instead of one per MR sequence;
* the training target is not a synthesised modality (there is no fusion ground truth) but the unsupervised
  fusion loss of ``training/losses.py``; see ``training/chartsias.py``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

MODALITIES = ("ct", "mr", "pet", "spect")


def _conv(c_in: int, c_out: int, kernel: int = 3) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2)


def _pair(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(_conv(c_in, c_out), nn.LeakyReLU(0.2), _conv(c_out, c_out), nn.LeakyReLU(0.2))


class _Encoder(nn.Module):
    """U-Net-like encoder to a full-resolution latent (two poolings, skips by concatenation)."""

    def __init__(self, width: int, latent: int) -> None:
        super().__init__()
        w = width
        self.level1 = _pair(1, w)
        self.level2 = _pair(w, 2 * w)
        self.level3 = _pair(2 * w, 4 * w)
        self.up2 = nn.Sequential(_conv(4 * w, 2 * w), nn.LeakyReLU(0.2))
        self.dec2 = _pair(4 * w, 2 * w)
        self.up1 = nn.Sequential(_conv(2 * w, w), nn.LeakyReLU(0.2))
        self.dec1 = _pair(2 * w, w)
        self.latent = nn.Sequential(_conv(w, latent), nn.LeakyReLU(0.2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a1 = self.level1(x)
        a2 = self.level2(F.max_pool2d(a1, 2))
        a3 = self.level3(F.max_pool2d(a2, 2))
        u2 = self.up2(F.interpolate(a3, scale_factor=2.0, mode="nearest"))
        d2 = self.dec2(torch.cat([a2, u2], dim=1))
        u1 = self.up1(F.interpolate(d2, scale_factor=2.0, mode="nearest"))
        d1 = self.dec1(torch.cat([a1, u1], dim=1))
        return self.latent(d1)


class _Decoder(nn.Module):
    """Small dense decoder: latent -> two convolutions -> concat -> two convolutions -> concat -> 1x1."""

    def __init__(self, latent: int, width: int) -> None:
        super().__init__()
        d = width
        self.block1 = nn.Sequential(_conv(latent, d), nn.ReLU(), _conv(d, d), nn.ReLU())
        self.block2 = nn.Sequential(_conv(latent + d, d), nn.ReLU(), _conv(d, d), nn.ReLU())
        self.out = _conv(latent + 2 * d, 1, 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        skip = torch.cat([z, self.block1(z)], dim=1)
        skip = torch.cat([skip, self.block2(skip)], dim=1)
        return self.out(skip)


class ModalityEncoderMaxFusion(nn.Module):
    """One U-Net-like encoder per modality, element-wise max of the latents, one decoder (Chartsias et al.,
    IEEE TMI 2018; see the module docstring for the design and where we depart). 2-D.

    Args:
        modalities: the modalities with an encoder of their own (each input picks its encoder by its modality).
            Default ``("ct", "mr", "pet", "spect")``.
        width: channels of the encoders' first level (then 2x and 4x after each pooling). Default 16 (paper 32).
        latent_channels: channels of the full-resolution latent. Default 16 (as the paper).
        decoder_width: channels of the decoder's convolutions. Default 16 (paper 32).

    ``forward(inputs, modalities)``: ``inputs`` (n_inputs >= 1, batch, 1, H, W) in 0..1, ``modalities`` one name
    per input (any subset of ``modalities``, repeats allowed); returns (batch, 1, H, W), not clamped.
    """

    def __init__(
        self,
        modalities: Sequence[str] = MODALITIES,
        width: int = 16,
        latent_channels: int = 16,
        decoder_width: int = 16,
    ) -> None:
        super().__init__()
        modalities = tuple(modalities)
        if (
            not modalities
            or len(set(modalities)) != len(modalities)
            or not all(isinstance(m, str) and m for m in modalities)
        ):
            raise ValueError(f"modalities must be distinct non-empty names, got {modalities!r}")
        for name, value in (("width", width), ("latent_channels", latent_channels), ("decoder_width", decoder_width)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self.modalities = modalities
        self.encoders = nn.ModuleDict({m: _Encoder(width, latent_channels) for m in modalities})
        self.decoder = _Decoder(latent_channels, decoder_width)

    def check_modalities(self, modalities: Sequence[str], n_inputs: int) -> list[str]:
        """``modalities`` as a list, or a one-line ValueError (wrong count, or a modality without an encoder)."""
        modalities = [str(m).lower() for m in modalities]
        if len(modalities) != n_inputs:
            raise ValueError(f"{len(modalities)} modalities given for {n_inputs} inputs")
        unknown = sorted({m for m in modalities if m not in self.encoders})
        if unknown:
            raise ValueError(
                f"no encoder for modality {', '.join(unknown)} (this network has: {', '.join(self.modalities)})"
            )
        return modalities

    def encode(self, inputs: torch.Tensor, modalities: Sequence[str]) -> torch.Tensor:
        """(n, batch, 1, H, W) -> latents (n, batch, latent_channels, H, W); input i through its modality's encoder.

        H and W must be multiples of 4 (``forward`` pads)."""
        modalities = self.check_modalities(modalities, inputs.shape[0])
        return torch.stack([self.encoders[m](x) for m, x in zip(modalities, inputs)])

    def forward(self, inputs: torch.Tensor, modalities: Sequence[str]) -> torch.Tensor:
        if inputs.dim() != 5 or inputs.shape[2] != 1:
            raise ValueError(f"inputs must be (n_inputs, batch, 1, H, W), got {tuple(inputs.shape)}")
        h, w = inputs.shape[-2:]
        pad_h, pad_w = (-h) % 4, (-w) % 4
        if pad_h or pad_w:
            inputs = F.pad(inputs.flatten(0, 1), (0, pad_w, 0, pad_h)).unflatten(0, inputs.shape[:2])
        fused = self.encode(inputs, modalities).amax(dim=0)
        return self.decoder(fused)[..., :h, :w]
