"""Building blocks shared by the UNet and the ResNet34-UNet decoders.

Shapes use N (batch), C (channels), H x W (spatial size).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

UpsampleMode = Literal["transpose", "bilinear"]
UPSAMPLE_MODES: tuple[str, ...] = ("transpose", "bilinear")


class DoubleConv(nn.Sequential):
    """Two (3x3 conv -> BatchNorm -> ReLU) layers: (N, C_in, H, W) -> (N, C_out, H, W).

    The convs have no bias: the BatchNorm that follows each one makes a bias redundant.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class Down(nn.Sequential):
    """2x2 max pooling then a DoubleConv: (N, C_in, H, W) -> (N, C_out, floor(H/2), floor(W/2))."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(nn.MaxPool2d(2), DoubleConv(in_channels, out_channels))


def upsampler(in_channels: int, mode: UpsampleMode) -> nn.Module:
    """x2 upsampling that halves the channels: (N, C, H, W) -> (N, C // 2, 2H, 2W).

    - ``transpose``: a learned 2x2 transposed conv with stride 2 (with bias), as in the original UNet.
    - ``bilinear``: bilinear interpolation followed by a 1x1 conv (with bias) that halves the channels.
    """
    out_channels = in_channels // 2
    if mode == "transpose":
        return nn.ConvTranspose2d(in_channels, out_channels, kernel_size=2, stride=2)
    if mode == "bilinear":
        return nn.Sequential(
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
            nn.Conv2d(in_channels, out_channels, kernel_size=1),
        )
    raise ValueError(f"unknown upsample mode {mode!r}; expected one of {UPSAMPLE_MODES}")


def match_size(x: Tensor, size: tuple[int, int] | torch.Size) -> Tensor:
    """Zero-pad or crop the last two dims of ``x`` (N, C, h, w) to ``size`` (H, W), centred.

    After a x2 upsampling the decoder tensor can be one pixel off its skip (odd sizes are floored by
    max pooling and ceiled by strided convs); ``F.pad`` with negative amounts crops.
    """
    dh, dw = size[0] - x.shape[-2], size[1] - x.shape[-1]
    if dh == 0 and dw == 0:
        return x
    return F.pad(x, [dw // 2, dw - dw // 2, dh // 2, dh - dh // 2])


class UpBlock(nn.Module):
    """Decoder stage: upsample x2 (halving channels), align to the skip, concatenate, DoubleConv.

    forward(x: (N, C_in, h, w), skip: (N, C_skip, H, W)) -> (N, C_out, H, W). With ``skip_channels=0``
    there is no skip and ``size`` gives the output size instead.
    """

    def __init__(
        self, in_channels: int, skip_channels: int, out_channels: int, upsample: UpsampleMode
    ) -> None:
        super().__init__()
        self.up = upsampler(in_channels, upsample)
        self.conv = DoubleConv(in_channels // 2 + skip_channels, out_channels)

    def forward(self, x: Tensor, skip: Tensor | None = None, size: tuple[int, int] | None = None) -> Tensor:
        x = self.up(x)
        if skip is not None:
            x = torch.cat([match_size(x, skip.shape[-2:]), skip], dim=1)
        elif size is not None:
            x = match_size(x, size)
        return self.conv(x)
