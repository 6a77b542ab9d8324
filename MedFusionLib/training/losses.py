"""Losses: unsupervised fusion (SSIM + gradient + intensity) and autoencoder reconstruction, in 2-D or 3-D.

All images are tensors (batch, 1, *spatial) in 0..1.

* ``FusionLoss``: ``w_ssim (1 - mean_i SSIM(F, S_i)) + w_grad |grad F - max_i |grad S_i| |_1
  + w_int |F - max_i S_i|_1``. The gradient term asks for each source's strongest edges, the intensity term
  for the brightest source (keeps PET uptake and a black background), the SSIM term for the structure of
  every source. ``grad_gain`` (default 1) scales the gradient target: above 1 it asks for edges somewhat
  stronger than the strongest source's. Optional ``+ w_edge (1 - Q)``: :func:`edge_preservation`, QABF written in torch, asks that
  each source's edges appear in F with similar strength and orientation (the gradient term only matches
  magnitudes). Optional ``+ w_vif (1 - mean_i VIF(S_i -> F))``: :func:`visual_information_fidelity`, the
  pixel-domain VIF of the metrics written in torch (rewards keeping each source's local variations); with
  ``vif_pool="batch"`` the ratio of the numerator and denominator summed over the batch instead of the mean of
  per-crop ratios (a nearly flat crop makes its own ratio unbounded).
  Optional ``+ w_scd (1 - SCD / 2)``: :func:`sum_of_correlation_differences`, the metric's SCD per crop (asks
  that what F adds to each source correlates with the other source). Optional ``+ w_mi (1 - sum MI / sum H)``:
  :func:`soft_mutual_information` of each source with F, pooled over the batch and divided by the sources'
  entropies (bounded by 1; a flat crop holds no information and cannot carry the term).
  Optional ``+ w_over mean(relu(F - max_i S_i))``: a one-sided hinge on brightness no source justifies (the
  gradient and edge terms reward contrast; on real volumes, whose foreground is bright after normalisation,
  that contrast otherwise comes out as saturated white).
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


def _band(n: int, g: torch.Tensor) -> torch.Tensor:
    """(n - k + 1, n) matrix whose product with a length-n signal is its 'valid' correlation with ``g`` (length k)."""
    k = g.numel()
    band = torch.zeros(n - k + 1, n, dtype=g.dtype, device=g.device)
    rows = torch.arange(n - k + 1, device=g.device)
    for j in range(k):
        band[rows, rows + j] = g[j]
    return band


def _blur(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Separable 'valid' Gaussian blur over all spatial axes.

    2-D: two matrix products with banded matrices (the same sums as two 1-D convolutions, about 20x faster on
    CPU than single-channel ``conv2d`` for the 11-17 tap windows of SSIM and VIF, backward included). 3-D: ``conv3d``.
    """
    dims = x.ndim - 2
    if dims == 2:
        return _band(x.shape[-2], g) @ x @ _band(x.shape[-1], g).t()
    for axis in range(dims):
        shape = [1, 1] + [1] * dims
        shape[2 + axis] = g.numel()
        x = F.conv3d(x, g.view(shape))
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


def _vif_window(size: int) -> torch.Tensor:
    g = _gaussian(size, size / 5.0)
    return g


def visual_information_fidelity(
    fused: torch.Tensor, source: torch.Tensor, sigma_nsq: float = 2.0, eps: float = 1e-10
) -> torch.Tensor:
    """Differentiable pixel-domain VIF(source -> fused) per batch item (the VIF of metrics-spec.md, 2-D).

    Same 4 scales, Gaussian windows (size 2^(5-s)+1, sigma size/5), "valid" filtering, subsampling and noise
    variance (2, on the 0..255 scale) as ``MedFusionLib.metrics``; the clamps are written with ``torch.where`` so
    the value matches the metric while gradients flow where ``g > 0``.
    """
    num, den = vif_terms(fused, source, sigma_nsq, eps)
    return num / (den + 1e-6)


def vif_terms(
    fused: torch.Tensor, source: torch.Tensor, sigma_nsq: float = 2.0, eps: float = 1e-10
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per batch item, VIF's numerator (information of the source found in the fused image) and denominator
    (information in the source). Their per-item ratio is unbounded on a nearly flat crop (denominator near 0);
    the ratio of their sums over a batch weights each crop by the information it holds."""
    if fused.ndim != 4:
        raise ValueError("visual_information_fidelity is defined for 2-D images (batch, 1, H, W)")
    ref, dist = source * 255.0, fused * 255.0
    num = fused.new_zeros(fused.shape[0])
    den = fused.new_zeros(fused.shape[0])
    for s in range(1, 5):
        win = _vif_window(2 ** (5 - s) + 1).to(fused)
        if s > 1:
            ref, dist = _blur(torch.cat([ref, dist]), win)[..., ::2, ::2].split(ref.shape[0])
        if min(ref.shape[-2:]) < win.numel():
            break
        b = ref.shape[0]
        stats = _blur(
            torch.cat([ref, dist, ref * ref, dist * dist, ref * dist]), win
        )  # one filtering pass for all maps
        mu1, mu2, e11, e22, e12 = stats.split(b)
        s1 = (e11 - mu1 * mu1).clamp_min(0)
        s2 = (e22 - mu2 * mu2).clamp_min(0)
        s12 = e12 - mu1 * mu2
        g = s12 / (s1 + eps)
        sv = s2 - g * s12
        valid = (s1 >= eps) & (s2 >= eps) & (g >= 0)
        g = torch.where(valid, g, torch.zeros_like(g))
        sv = torch.where(valid, sv, s2).clamp_min(eps)
        num = num + torch.log10(1 + g * g * s1 / (sv + sigma_nsq)).flatten(1).sum(1)
        den = den + torch.log10(1 + s1 / sigma_nsq).flatten(1).sum(1)
    return num, den


def sum_of_correlation_differences(fused: torch.Tensor, sources: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Per batch item, SCD of metrics-spec.md for two sources: ``corr(A, F - B) + corr(B, F - A)`` (Pearson)."""
    if sources.shape[0] != 2:
        raise ValueError(f"SCD is defined for two sources, got {sources.shape[0]}")

    def corr(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1) - x.flatten(1).mean(1, keepdim=True)
        y = y.flatten(1) - y.flatten(1).mean(1, keepdim=True)
        return (x * y).sum(1) / torch.sqrt((x * x).sum(1) * (y * y).sum(1) + eps)

    a, b = sources
    return corr(a, fused - b) + corr(b, fused - a)


def soft_joint_histogram(x: torch.Tensor, y: torch.Tensor, bins: int = 64) -> torch.Tensor:
    """Per batch item, the joint histogram (probabilities, (batch, bins, bins)) of two images in 0..1.

    Each pixel pair is spread over the four nearest bin pairs with bilinear weights, so the histogram is
    differentiable in both images (MONAI's Gaussian Parzen MI took 2.7 s for one 16-crop batch at 64 bins here; this is O(pixels)).
    """
    x, y = x.flatten(1).clamp(0, 1) * (bins - 1), y.flatten(1).clamp(0, 1) * (bins - 1)
    ix, iy = x.detach().floor().clamp(max=bins - 2), y.detach().floor().clamp(max=bins - 2)
    fx, fy = x - ix, y - iy
    ix, iy = ix.long(), iy.long()
    hist = x.new_zeros(x.shape[0], bins * bins)
    for dx, wx in ((0, 1 - fx), (1, fx)):
        for dy, wy in ((0, 1 - fy), (1, fy)):
            hist = hist.scatter_add(1, (ix + dx) * bins + iy + dy, wx * wy)
    return hist.view(-1, bins, bins) / x.shape[1]


def soft_mutual_information(
    fused: torch.Tensor, source: torch.Tensor, bins: int = 64, eps: float = 1e-10
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per batch item, ``MI(source, F)`` and the source's entropy ``H(source)`` (nats) from a soft joint histogram."""
    p = soft_joint_histogram(source, fused, bins)
    ps, pf = p.sum(2, keepdim=True), p.sum(1, keepdim=True)
    mi = (p * (torch.log(p + eps) - torch.log(ps * pf + eps))).sum((1, 2))
    entropy = -(ps * torch.log(ps + eps)).sum((1, 2))
    return mi, entropy


def _pooled_ratio(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    """``sum(num) / sum(den)`` over the batch: each crop counts by the information it holds (its ``den``)."""
    return num.sum() / (den.sum() + 1e-6)


def over_brightness(fused: torch.Tensor, brightest: torch.Tensor) -> torch.Tensor:
    """Per batch item, the mean of ``relu(F - max_i S_i)``: how far the fused image is brighter than every source."""
    return F.relu(fused - brightest).flatten(1).mean(dim=1)


class FusionLoss(nn.Module):
    def __init__(
        self,
        w_ssim: float = 1.0,
        w_grad: float = 4.0,
        w_int: float = 1.0,
        ssim_window: int = 11,
        w_edge: float = 0.0,
        grad_gain: float = 1.0,
        w_vif: float = 0.0,
        w_over: float = 0.0,
        vif_pool: str = "item",
        w_scd: float = 0.0,
        w_mi: float = 0.0,
    ) -> None:
        super().__init__()
        if w_scd < 0 or w_mi < 0:
            raise ValueError(f"w_scd and w_mi must be >= 0, got {w_scd}, {w_mi}")
        self.w_scd, self.w_mi = w_scd, w_mi
        self.w_vif = w_vif
        if vif_pool not in ("item", "batch"):
            raise ValueError(f"vif_pool must be 'item' or 'batch', got {vif_pool!r}")
        self.vif_pool = vif_pool
        if w_over < 0:
            raise ValueError(f"w_over must be >= 0, got {w_over}")
        self.w_over = w_over
        if grad_gain <= 0:
            raise ValueError(f"grad_gain must be > 0, got {grad_gain}")
        self.grad_gain = grad_gain
        self.w_ssim, self.w_grad, self.w_int, self.ssim_window = w_ssim, w_grad, w_int, ssim_window
        self.w_edge = w_edge

    def forward(self, fused: torch.Tensor, sources: torch.Tensor) -> torch.Tensor:
        """``fused`` (batch, 1, *s); ``sources`` (n_inputs, batch, 1, *s)."""
        s = sum((ssim(fused, src, self.ssim_window) for src in sources), fused.new_zeros(())) / sources.shape[0]
        grad_target = torch.stack([gradient_magnitude(src) for src in sources]).amax(dim=0)
        if self.grad_gain != 1.0:
            grad_target = grad_target * self.grad_gain
        grad = F.l1_loss(gradient_magnitude(fused), grad_target)
        brightest = sources.amax(dim=0)
        inten = F.l1_loss(fused, brightest)
        loss = self.w_ssim * (1 - s.mean()) + self.w_grad * grad + self.w_int * inten
        if self.w_over:
            loss = loss + self.w_over * over_brightness(fused, brightest).mean()
        if self.w_edge:
            loss = loss + self.w_edge * (1 - edge_preservation(fused, sources).mean())
        if self.w_vif or self.w_mi:  # all sources in one batch: F against every S_i at once
            fused_each, source_each = fused.repeat(sources.shape[0], 1, 1, 1), sources.flatten(0, 1)
        if self.w_vif:
            num, den = vif_terms(fused_each, source_each)
            if self.vif_pool == "batch":  # a flat crop cannot carry the term
                fidelity = _pooled_ratio(num, den)
            else:  # the mean of per-crop ratios (the recipes up to fusion-unet-v10)
                fidelity = (num / (den + 1e-6)).mean()
            loss = loss + self.w_vif * (1 - fidelity)
        if self.w_scd:
            loss = loss + self.w_scd * (1 - sum_of_correlation_differences(fused, sources).mean() / 2)
        if self.w_mi:
            loss = loss + self.w_mi * (1 - _pooled_ratio(*soft_mutual_information(fused_each, source_each)))
        return loss


class ReconstructionLoss(nn.Module):
    def __init__(self, w_ssim: float = 1.0, ssim_window: int = 11) -> None:
        super().__init__()
        self.w_ssim, self.ssim_window = w_ssim, ssim_window

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.l1_loss(output, target) + self.w_ssim * (1 - ssim(output, target, self.ssim_window).mean())


# the 3x3 operator of the DDcGAN release's gradient term: the 8-neighbour mean minus the centre
_DDCGAN_LAPLACIAN = ((1 / 8, 1 / 8, 1 / 8), (1 / 8, -1.0, 1 / 8), (1 / 8, 1 / 8, 1 / 8))


def ddcgan_gradient(x: torch.Tensor) -> torch.Tensor:
    """DDcGAN's gradient operator (2-D, zero padding, same shape): 8-neighbour mean minus the centre pixel."""
    k = torch.tensor(_DDCGAN_LAPLACIAN, device=x.device, dtype=x.dtype).view(1, 1, 3, 3)
    return F.conv2d(x, k, padding=1)


class DDcGANContentLoss(nn.Module):
    """DDcGAN's content loss (Ma et al., IEEE TIP 29, 2020): ``w_int mean((F - S_1)^2) + eta mean|grad F - grad S_2|``.

    The fused image keeps the intensities of the first source (the paper's infrared / PET image: here CT, PET or
    SPECT) in the Frobenius (squared) norm and the texture of the second (the paper's visible / MRI image) in the
    L1 norm of the difference of gradients (the paper's TV norm); ``grad`` is :func:`ddcgan_gradient`. Means
    over pixels instead of the paper's sums; the defaults ``w_int = 1/16`` and ``eta = 1.2`` are the relative
    weights of the authors' release (``||F - S_1||_F^2 / 16 + 1.2 ||grad F - grad S_2||_1``). 2-D only.
    """

    def __init__(self, w_int: float = 1 / 16, eta: float = 1.2) -> None:
        super().__init__()
        if w_int < 0 or eta < 0:
            raise ValueError(f"w_int and eta must be >= 0, got {w_int}, {eta}")
        self.w_int, self.eta = w_int, eta

    def forward(self, fused: torch.Tensor, sources: torch.Tensor) -> torch.Tensor:
        """``fused`` (batch, 1, H, W); ``sources`` (2, batch, 1, H, W): intensity source first, texture second."""
        intensity = ((fused - sources[0]) ** 2).mean()
        texture = (ddcgan_gradient(fused) - ddcgan_gradient(sources[1])).abs().mean()
        return self.w_int * intensity + self.eta * texture
