"""Losses: unsupervised fusion (SSIM + gradient + intensity) and autoencoder reconstruction, in 2-D or 3-D.

All images are tensors (batch, 1, *spatial) in 0..1.

* ``FusionLoss``: ``w_ssim (1 - mean_i SSIM(F, S_i)) + w_grad |grad F - max_i |grad S_i| |_1
  + w_int |F - max_i S_i|_1``. The gradient term asks for each source's strongest edges, the intensity term
  for the brightest source (keeps PET uptake and a black background), the SSIM term for the structure of
  every source. Optional ``+ w_edge (1 - Q)``: :func:`edge_preservation`, QABF written in torch, asks that
  each source's edges appear in F with similar strength and orientation (the gradient term only matches
  magnitudes).
* ``ReconstructionLoss``: ``|X' - X|_1 + w_ssim (1 - SSIM(X', X))`` (DenseFuse's pixel + SSIM loss, L1 for
  robustness).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from MedFusionLib.metrics.structural import QABF_DA, QABF_DG, QABF_KA, QABF_KG, QABF_TA, QABF_TG


def _gaussian(size: int, sigma: float) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def _blur(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Separable 'valid' Gaussian blur over all spatial axes."""
    dims = x.ndim - 2
    conv = F.conv2d if dims == 2 else F.conv3d
    for axis in range(dims):
        shape = [1, 1] + [1] * dims
        shape[2 + axis] = g.numel()
        x = conv(x, g.view(shape))
    return x


def ssim(x: torch.Tensor, y: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Mean SSIM (Wang et al. 2004, data range 1) per batch item."""
    window = min(window, *x.shape[2:])
    g = _gaussian(window, sigma).to(x)
    c1, c2 = 0.01**2, 0.03**2
    mx, my = _blur(x, g), _blur(y, g)
    sxx = _blur(x * x, g) - mx * mx
    syy = _blur(y * y, g) - my * my
    sxy = _blur(x * y, g) - mx * my
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return s.flatten(1).mean(dim=1)


def gradient_magnitude(x: torch.Tensor) -> torch.Tensor:
    """Sobel-like gradient magnitude (2-D Sobel; 3-D central differences), zero padding, same shape."""
    dims = x.ndim - 2
    if dims == 2:
        k = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], device=x.device, dtype=x.dtype) / 4
        gx = F.conv2d(x, k.view(1, 1, 3, 3), padding=1)
        gy = F.conv2d(x, k.t().reshape(1, 1, 3, 3), padding=1)
        return torch.sqrt(gx * gx + gy * gy + 1e-8)
    k = torch.tensor([-0.5, 0.0, 0.5], device=x.device, dtype=x.dtype)
    total = 0
    for axis in range(3):
        shape = [1, 1, 1, 1, 1]
        shape[2 + axis] = 3
        pad = [0, 0, 0]
        pad[axis] = 1
        g = F.conv3d(x, k.view(shape), padding=tuple(pad))
        total = total + g * g
    return torch.sqrt(total + 1e-8)


_SOBEL_X = ((-1.0, 0.0, 1.0), (-2.0, 0.0, 2.0), (-1.0, 0.0, 1.0))
_SOBEL_Y = ((1.0, 2.0, 1.0), (0.0, 0.0, 0.0), (-1.0, -2.0, -1.0))


def _sobel_strength_orientation(x: torch.Tensor, eps: float = 1e-6):
    """Sobel strength and atan orientation as Xydeas-Petrovic define them (2-D, zero padding, 0..255 scale)."""
    kx = torch.tensor(_SOBEL_X, device=x.device, dtype=x.dtype).view(1, 1, 3, 3)
    ky = torch.tensor(_SOBEL_Y, device=x.device, dtype=x.dtype).view(1, 1, 3, 3)
    gx = F.conv2d(x * 255.0, kx, padding=1)
    gy = F.conv2d(x * 255.0, ky, padding=1)
    strength = torch.sqrt(gx * gx + gy * gy + eps)
    orientation = torch.atan(gy / (gx + torch.where(gx >= 0, eps, -eps)))
    return strength, orientation


def edge_preservation(fused: torch.Tensor, sources: torch.Tensor) -> torch.Tensor:
    """Differentiable Xydeas-Petrovic edge preservation (the QABF of metrics-spec.md, N sources) per batch item.

    Same Sobel operator, atan orientation and sigmoid constants as ``MedFusionLib.metrics``; the relative
    strength is min/max (the metric's two cases), smooth except where strengths are equal. 2-D only.
    """
    if fused.ndim != 4:
        raise ValueError("edge_preservation is defined for 2-D images (batch, 1, H, W)")
    g_f, a_f = _sobel_strength_orientation(fused)
    num = 0.0
    den = 0.0
    for src in sources:
        g_s, a_s = _sobel_strength_orientation(src)
        rel = torch.minimum(g_s, g_f) / torch.maximum(g_s, g_f).clamp_min(1e-6)
        orient = 1 - torch.abs(a_s - a_f) / (math.pi / 2)
        q = (
            QABF_TG
            / (1 + torch.exp(QABF_KG * (rel - QABF_DG)))
            * QABF_TA
            / (1 + torch.exp(QABF_KA * (orient - QABF_DA)))
        )
        num = num + (q * g_s).flatten(1).sum(1)
        den = den + g_s.flatten(1).sum(1)
    return num / den.clamp_min(1e-6)


class FusionLoss(nn.Module):
    def __init__(
        self, w_ssim: float = 1.0, w_grad: float = 4.0, w_int: float = 1.0, ssim_window: int = 11, w_edge: float = 0.0
    ) -> None:
        super().__init__()
        self.w_ssim, self.w_grad, self.w_int, self.ssim_window = w_ssim, w_grad, w_int, ssim_window
        self.w_edge = w_edge

    def forward(self, fused: torch.Tensor, sources: torch.Tensor) -> torch.Tensor:
        """``fused`` (batch, 1, *s); ``sources`` (n_inputs, batch, 1, *s)."""
        s = sum(ssim(fused, src, self.ssim_window) for src in sources) / sources.shape[0]
        grad_target = torch.stack([gradient_magnitude(src) for src in sources]).amax(dim=0)
        grad = F.l1_loss(gradient_magnitude(fused), grad_target)
        inten = F.l1_loss(fused, sources.amax(dim=0))
        loss = self.w_ssim * (1 - s.mean()) + self.w_grad * grad + self.w_int * inten
        if self.w_edge:
            loss = loss + self.w_edge * (1 - edge_preservation(fused, sources).mean())
        return loss


class ReconstructionLoss(nn.Module):
    def __init__(self, w_ssim: float = 1.0, ssim_window: int = 11) -> None:
        super().__init__()
        self.w_ssim, self.ssim_window = w_ssim, ssim_window

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.l1_loss(output, target) + self.w_ssim * (1 - ssim(output, target, self.ssim_window).mean())
