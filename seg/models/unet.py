"""Classic UNet (Ronneberger et al. 2015) with BatchNorm, as in the reference reports."""

from __future__ import annotations

from torch import Tensor, nn

from seg.models.blocks import DoubleConv, Down, UpBlock, UpsampleMode

DEPTH = 4
"""Number of 2x2 max-pool downsamplings (widths c, 2c, 4c, 8c, 16c)."""


class UNet(nn.Module):
    """UNet mapping images (N, C_in, H, W) to one logit channel (N, 1, H, W); no sigmoid inside.

    Encoder: a DoubleConv (3x3 conv, BN, ReLU, twice; bias-free convs) at width c = ``base_channels``,
    then 4 x (2x2 max pool, DoubleConv) at widths 2c, 4c, 8c, 16c (64..1024 at c = 64).
    Decoder: 4 x (x2 upsampling that halves the channels, concatenation with the encoder skip of the
    same level, DoubleConv), then a 1x1 conv head. ``upsample="transpose"`` uses a 2x2 stride-2
    transposed conv (the reports' UNet, 31,037,633 parameters at c = 64 with 3 input channels);
    ``"bilinear"`` uses bilinear interpolation then a 1x1 conv (fewer parameters).

    Any H, W >= ``min_input_size`` works: where max pooling floors an odd size, the upsampled tensor is
    zero-padded by one pixel to its skip's size, so the output always has the input size.
    """

    min_input_size: int = 2**DEPTH

    def __init__(
        self, in_channels: int = 3, base_channels: int = 64, upsample: UpsampleMode = "transpose"
    ) -> None:
        super().__init__()
        if base_channels < 1:
            raise ValueError(f"base_channels must be >= 1, got {base_channels}")
        widths = [base_channels * 2**i for i in range(DEPTH + 1)]
        self.stem = DoubleConv(in_channels, widths[0])
        self.downs = nn.ModuleList(Down(widths[i], widths[i + 1]) for i in range(DEPTH))
        self.ups = nn.ModuleList(
            UpBlock(widths[i + 1], widths[i], widths[i], upsample) for i in reversed(range(DEPTH))
        )
        self.head = nn.Conv2d(widths[0], 1, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        """(N, C_in, H, W) images -> (N, 1, H, W) logits."""
        skips = [self.stem(x)]
        for down in self.downs:
            skips.append(down(skips[-1]))
        x = skips.pop()
        for up in self.ups:
            x = up(x, skips.pop())
        return self.head(x)
