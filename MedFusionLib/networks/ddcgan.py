"""DDcGAN at its published architecture (Ma, Xu, Jiang, Mei & Zhang, IEEE TIP 29, 2020), trained by MedFusion.

* :class:`DDcGANGenerator`: the fusion generator (the only part that ships);
* :class:`DDcGANDiscriminator`: one of the two discriminators (training only, ``training/adversarial.py``).
"""

from __future__ import annotations

import torch
from torch import nn

from MedFusionLib.networks.layers import CONV, check_positive, check_spatial_dims, receptive_radius

NORM = {2: nn.BatchNorm2d, 3: nn.BatchNorm3d}  # batch norm by spatial_dims


def _conv_bn_relu(spatial_dims: int, c_in: int, c_out: int, norm: bool = True) -> nn.Sequential:
    """3x3 convolution with reflection padding (as the authors' release), [batch norm], ReLU."""
    layers: list[nn.Module] = [CONV[spatial_dims](c_in, c_out, 3, padding=1, padding_mode="reflect")]
    if norm:
        layers.append(NORM[spatial_dims](c_out))
    layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class DDcGANGenerator(nn.Module):
    """The generator of DDcGAN: "A dual-discriminator conditional generative adversarial network for
    multi-resolution image fusion", Ma, Xu, Jiang, Mei & Zhang, IEEE TIP 29 (2020) 4980-4995.

    Layer for layer as the paper (widths as in the authors' release): the two sources are concatenated
    (2 channels) and encoded by one 3x3 convolution to 48 maps and a dense block of four 3x3 layers of 48 maps each
    (every layer sees the maps of all previous layers: inputs 48, 96, 144, 192; 240 maps out); the decoder is five
    3x3 convolutions of 240, 128, 64, 32 and 1 maps. Every layer but the last has batch normalisation and ReLU;
    the last ends in ``tanh(x) / 2 + 0.5`` (0..1). Reflection padding of one pixel before each convolution.
    1,097,665 parameters in 2-D (of which 1,408 batch-norm scales and shifts). The generator computes the fused
    image itself: there is no pixel-wise rule or skip from the sources to the output.

    Departures: our sources have the same resolution, so the deconvolution branch that upsamples the
    low-resolution source (and the downsampling operator of the loss) are left out, as in the authors'
    same-resolution release; batch normalisation uses running statistics at inference (the release normalises
    with the statistics of the test batch); the release applies its first decoder layer twice (a slip in its
    loop), here it runs once.

    Args:
        spatial_dims: 2 or 3 (default 2; 3 gives the same layers with cubic kernels).
        channels: width of the first convolution and of each dense layer (default 48, the paper's).
        dense_layers: layers of the dense block (default 4, the paper's).
        decoder_channels: widths of the decoder's hidden layers after its first (default (128, 64, 32), the
            paper's; the first decoder layer keeps the encoder's width).

    Input (2, batch, 1, *spatial) in 0..1 (source order matters: in DDcGAN the first source gives intensity, the
    second texture; see ``training/adversarial.py``); output (batch, 1, *spatial) in 0..1.
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        channels: int = 48,
        dense_layers: int = 4,
        decoder_channels: tuple[int, ...] = (128, 64, 32),
    ) -> None:
        super().__init__()
        check_spatial_dims(spatial_dims)
        check_positive(channels=channels, dense_layers=dense_layers)
        check_positive(**{f"decoder_channels[{i}]": c for i, c in enumerate(decoder_channels)})
        self.spatial_dims = spatial_dims
        self.conv1 = _conv_bn_relu(spatial_dims, 2, channels)
        self.dense = nn.ModuleList(
            _conv_bn_relu(spatial_dims, channels * (i + 1), channels) for i in range(dense_layers)
        )
        width = channels * (dense_layers + 1)
        widths = (width, width, *decoder_channels)
        self.decoder = nn.Sequential(
            *(_conv_bn_relu(spatial_dims, a, b) for a, b in zip(widths[:-1], widths[1:])),
            CONV[spatial_dims](widths[-1], 1, 3, padding=1, padding_mode="reflect"),
        )

    @property
    def receptive_radius(self) -> int:
        return receptive_radius(self)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, 2, *spatial) -> (batch, 240, *spatial): conv1 and the dense block."""
        x = self.conv1(x)
        for layer in self.dense:
            x = torch.cat([layer(x), x], dim=1)
        return x

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """``inputs``: (2, batch, 1, *spatial) in 0..1; returns (batch, 1, *spatial) in 0..1."""
        if inputs.shape[0] != 2 or inputs.shape[2] != 1:
            raise ValueError(f"DDcGANGenerator fuses two grey sources (2, batch, 1, ...), got {tuple(inputs.shape)}")
        x = torch.cat([inputs[0], inputs[1]], dim=1)
        return torch.tanh(self.decoder(self.encode(x))) / 2 + 0.5


class DDcGANDiscriminator(nn.Module):
    """A discriminator of DDcGAN (Ma et al., IEEE TIP 29, 2020): three 3x3 convolutions of stride 2 (16, 32 and
    64 maps; reflection padding; ReLU; batch normalisation after the second and third), then a fully connected
    layer to one value, ``tanh(x) / 2 + 0.5``: the probability that the image is a real source image.

    The fully connected layer sees all 64 maps of the last convolution, so its size depends on the crop the
    discriminator is trained on (``size``; 64 x (size / 8)^2 inputs). Used only in training; not shipped.

    Args:
        size: edge of the square training crops (default 64; a multiple of 8).
        channels: width of the first convolution (default 16, the paper's; then 2x and 4x).
    """

    def __init__(self, size: int = 64, channels: int = 16) -> None:
        super().__init__()
        check_positive(size=size, channels=channels)
        if size % 8:
            raise ValueError(f"size must be a multiple of 8, got {size}")
        c = channels
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(((1, c), (c, 2 * c), (2 * c, 4 * c))):
            layers.append(nn.Conv2d(a, b, 3, stride=2, padding=1, padding_mode="reflect"))
            if i:
                layers.append(nn.BatchNorm2d(b))
            layers.append(nn.ReLU(inplace=True))
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(4 * c * (size // 8) ** 2, 1)
        self.size = size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, 1, size, size) in 0..1 -> (batch, 1): probability of a real source image."""
        return torch.tanh(self.fc(self.features(x).flatten(1))) / 2 + 0.5
