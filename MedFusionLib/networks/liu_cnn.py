"""Liu et al.'s siamese patch classifier (Information Fusion 36, 2017), applied fully convolutionally.

Plain torch. The network only *scores*; the decision map, its consistency verification and the pyramid blend of
the source pixels are fixed post-processing in ``MedFusionLib/inference/liu_cnn.py``.
"""

from __future__ import annotations

import torch
from torch import nn

from MedFusionLib.networks.layers import check_positive


class LiuSiameseCNN(nn.Module):
    """Siamese CNN that tells which of two patches is the more informative (the sharper) one.

    Liu, Chen, Peng & Wang, "Multi-focus image fusion with a deep convolutional neural network", Information
    Fusion 36 (2017) 191-207; used for medical images by Liu, Chen, Cheng & Peng, "A medical image fusion method
    based on convolutional neural networks", FUSION 2017.

    As published, for ``patch`` x ``patch`` (16 x 16) grey patches: one branch per input, the two branches sharing
    their weights: conv 3x3 (64) + ReLU, conv 3x3 (128) + ReLU, 2x2 max pooling (stride 2), conv 3x3 (256) + ReLU,
    all convolutions stride 1 with zero 'same' padding; the two branches' 8 x 8 x 256 maps concatenated
    (8 x 8 x 512), a fully connected layer of 256 units + ReLU, a fully connected layer of 2 units (softmax: class 0
    = the first patch is the more informative one). The fully connected layers are written as convolutions (an
    8 x 8 'valid' convolution, then 1 x 1), so the same weights score 16 x 16 patches during training and a whole
    image at inference: a score map with one value per 16 x 16 patch, at a stride of 2 pixels.

    Departure (``rank``): the first fully connected layer is factorised. Published, it is one 8 x 8 x 512 -> 256
    map (8,388,864 parameters, ~17 MB in float16). With ``rank`` r > 0 it is a 1 x 1 convolution 512 -> r (no
    nonlinearity) followed by the 8 x 8 convolution r -> 256: a rank-r factorisation over the channels of the same
    linear layer (r = 16: 270,608 parameters), which also makes the whole-image score map about 30 times cheaper
    to compute. ``rank=0`` builds the published, unfactorised layer.

    Args:
        channels: widths of the three convolutions of a branch. Default (64, 128, 256), the paper's.
        patch: training patch edge in pixels (even). Default 16, the paper's.
        hidden: units of the first fully connected layer. Default 256, the paper's.
        rank: channel rank of the factorised first fully connected layer; 0 = published (unfactorised). Default 16.

    Input: two tensors (batch, 1, H, W) in 0..1 with H, W >= ``patch``. Output of ``forward``: logits
    (batch, 2, H // 2 - patch // 2 + 1, W // 2 - patch // 2 + 1); (batch, 2, 1, 1) for one patch pair.
    """

    def __init__(
        self, channels: tuple[int, int, int] = (64, 128, 256), patch: int = 16, hidden: int = 256, rank: int = 16
    ) -> None:
        super().__init__()
        channels = tuple(channels)  # type: ignore[assignment]
        if len(channels) != 3:
            raise ValueError(f"channels must give the three convolution widths, got {channels!r}")
        check_positive(**{f"channels[{i}]": c for i, c in enumerate(channels)}, patch=patch, hidden=hidden)
        if patch % 2 or patch < 4:
            raise ValueError(f"patch must be an even number >= 4, got {patch!r}")
        if not isinstance(rank, int) or rank < 0:
            raise ValueError(f"rank must be an integer >= 0 (0: the published fully connected layer), got {rank!r}")
        c1, c2, c3 = channels
        self.patch, self.rank = patch, rank
        self.branch = nn.Sequential(
            nn.Conv2d(1, c1, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(c1, c2, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(c2, c3, 3, padding=1),
            nn.ReLU(inplace=True),
        )
        k = patch // 2
        fc1: list[nn.Module] = [nn.Conv2d(2 * c3, rank, 1), nn.Conv2d(rank, hidden, k)] if rank else []
        self.fc1 = nn.Sequential(*(fc1 or [nn.Conv2d(2 * c3, hidden, k)]))
        self.fc2 = nn.Conv2d(hidden, 2, 1)

    @property
    def stride(self) -> int:
        """Pixels between neighbouring patches of the score map."""
        return 2

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """One branch: (batch, 1, H, W) -> (batch, C3, H // 2, W // 2)."""
        return self.branch(x)

    def classify(self, fa: torch.Tensor, fb: torch.Tensor) -> torch.Tensor:
        """Logits (batch, 2, h, w) from the two branches' feature maps (first input's first)."""
        return self.fc2(torch.relu(self.fc1(torch.cat([fa, fb], dim=1))))

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Logits (batch, 2, h, w): class 0 = ``a`` is the more informative input of the patch at that position."""
        return self.classify(self.features(a), self.features(b))

    def score_map(self, a: torch.Tensor, b: torch.Tensor, symmetric: bool = True) -> torch.Tensor:
        """Probability (batch, 1, h, w) that ``a``'s patch is the more informative one.

        ``symmetric`` (our addition) averages the score of (a, b) with one minus the score of (b, a), so that
        swapping the inputs swaps the weights exactly; the branch features are computed once either way.
        """
        fa, fb = self.features(a), self.features(b)
        p = torch.softmax(self.classify(fa, fb), dim=1)[:, :1]
        if symmetric:
            p = 0.5 * (p + torch.softmax(self.classify(fb, fa), dim=1)[:, 1:])
        return p
