"""ResNet-34 encoder (BasicBlock 3-4-6-3) with a UNet decoder."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from seg.errors import ConfigError
from seg.models.blocks import UpBlock, UpsampleMode
from seg.models.weights import fetch_weights

ENCODER_WEIGHTS: tuple[str, ...] = ("imagenet",)
LAYERS: tuple[int, ...] = (3, 4, 6, 3)
"""BasicBlocks per stage of ResNet-34."""


def imagenet_url() -> str:
    """Download address of torchvision's ``ResNet34_Weights.IMAGENET1K_V1``.

    torchvision is imported here and in the encoder, not at module level: importing torchvision.models
    costs ~2 s, which every sweep job (UNet ones too, via config validation) would otherwise pay.
    """
    from torchvision.models.resnet import ResNet34_Weights

    return ResNet34_Weights.IMAGENET1K_V1.url


def load_imagenet_state_dict() -> dict[str, Tensor]:
    """The ImageNet ResNet-34 state dict, from the torch hub cache (downloaded there first when missing)."""
    path = fetch_weights(imagenet_url(), "ImageNet ResNet-34")
    return torch.load(path, map_location="cpu", weights_only=True)


class ResNetEncoder(nn.Module):
    """ResNet-34 feature extractor at stem width c = ``base_channels`` (torchvision's resnet34 at c = 64).

    Module names and shapes equal torchvision's ``resnet34`` (without ``avgpool``/``fc``) at c = 64, so
    its state dict loads; other widths scale every stage (c, 2c, 4c, 8c) with torchvision's BasicBlock.
    forward((N, C_in, H, W)) returns 5 features, each spatial size ceil-divided by 2 per stride:
    stem (N, c, H/2), layer1 (N, c, H/4), layer2 (N, 2c, H/8), layer3 (N, 4c, H/16), layer4 (N, 8c, H/32).
    """

    def __init__(self, in_channels: int, base_channels: int) -> None:
        from torchvision.models.resnet import BasicBlock, conv1x1

        super().__init__()
        widths = [base_channels * 2**i for i in range(len(LAYERS))]
        self.conv1 = nn.Conv2d(in_channels, base_channels, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(base_channels)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        in_width = base_channels
        for i, (width, blocks) in enumerate(zip(widths, LAYERS, strict=True)):
            stride = 1 if i == 0 else 2
            downsample = None
            if stride != 1 or in_width != width:
                downsample = nn.Sequential(conv1x1(in_width, width, stride), nn.BatchNorm2d(width))
            stage = [BasicBlock(in_width, width, stride, downsample)]
            stage += [BasicBlock(width, width) for _ in range(1, blocks)]
            self.add_module(f"layer{i + 1}", nn.Sequential(*stage))
            in_width = width
        for m in self.modules():  # torchvision's ResNet initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> list[Tensor]:
        """(N, C_in, H, W) -> [stem, layer1, layer2, layer3, layer4] features (shapes in the class doc)."""
        features = [self.relu(self.bn1(self.conv1(x)))]
        x = self.maxpool(features[0])
        for i in range(len(LAYERS)):
            x = getattr(self, f"layer{i + 1}")(x)
            features.append(x)
        return features


class ResNet34UNet(nn.Module):
    """ResNet-34 encoder + UNet decoder: images (N, C_in, H, W) -> logits (N, 1, H, W); no sigmoid inside.

    Decoder (c = ``base_channels``): layer4 (8c, H/32) is the bottleneck; 4 UpBlocks (x2 upsampling that
    halves the channels, concatenation with the skip, DoubleConv) use the skips layer3, layer2, layer1
    and the stem (conv1/bn1/relu at H/2) with output widths 4c, 2c, c, c/2; a last UpBlock without a
    skip goes from H/2 to H at width c/4, and a 1x1 conv head gives the logit. ``upsample`` is the
    decoder's x2 upsampling, as in :class:`~seg.models.unet.UNet`. 24,349,441 parameters at c = 64
    (transpose; 23,825,665 with bilinear). Any H, W >= ``min_input_size`` works (odd sizes are aligned
    by padding/cropping by one pixel in the decoder), the output has the input size.

    ``encoder_weights="imagenet"`` loads torchvision's ``ResNet34_Weights.IMAGENET1K_V1`` from the torch hub
    cache, downloading it there when missing (see :func:`load_imagenet_state_dict`); it needs
    ``base_channels=64, in_channels=3``.
    """

    min_input_size: int = 32

    def __init__(
        self,
        in_channels: int = 3,
        base_channels: int = 64,
        encoder_weights: str | None = None,
        upsample: UpsampleMode = "transpose",
    ) -> None:
        super().__init__()
        if base_channels < 4 or base_channels % 4:
            raise ConfigError(f"base_channels must be a positive multiple of 4, got {base_channels}")
        if encoder_weights is not None:
            if encoder_weights not in ENCODER_WEIGHTS:
                raise ConfigError(
                    f"unknown encoder_weights {encoder_weights!r}; expected null or one of {ENCODER_WEIGHTS}"
                )
            if base_channels != 64 or in_channels != 3:
                raise ConfigError(
                    "encoder_weights=imagenet needs the torchvision ResNet-34 shape (base_channels=64, "
                    f"in_channels=3), got base_channels={base_channels}, in_channels={in_channels}"
                )
        # read the checkpoint first: a missing file fails before any layer is built
        weights = load_imagenet_state_dict() if encoder_weights == "imagenet" else None
        self.encoder = ResNetEncoder(in_channels, base_channels)
        if weights is not None:
            self.encoder.load_state_dict({k: v for k, v in weights.items() if not k.startswith("fc.")})
        c = base_channels
        self.decoder = nn.ModuleList(
            UpBlock(in_ch, skip_ch, out_ch, upsample)
            for in_ch, skip_ch, out_ch in (
                (8 * c, 4 * c, 4 * c),
                (4 * c, 2 * c, 2 * c),
                (2 * c, c, c),
                (c, c, c // 2),
            )
        )
        self.final_up = UpBlock(c // 2, 0, c // 4, upsample)
        self.head = nn.Conv2d(c // 4, 1, kernel_size=1)

    @classmethod
    def check_args(cls, *, base_channels: int, encoder_weights: str | None, image_size: int, **_: object) -> None:
        """ImageNet weights need torchvision's width (ConfigError otherwise)."""
        if encoder_weights == "imagenet" and base_channels != 64:
            raise ConfigError(
                f"invalid config: model.base_channels={base_channels} with model.encoder_weights=imagenet; "
                "allowed: 64 (torchvision's ResNet-34 width), or model.encoder_weights=null"
            )

    @classmethod
    def prepare_weights(cls, *, encoder_weights: str | None = None, **_: object) -> None:
        """Fetch the ImageNet file now (before any data work) when the model will load it."""
        if encoder_weights == "imagenet":
            fetch_weights(imagenet_url(), "ImageNet ResNet-34")

    def forward(self, x: Tensor) -> Tensor:
        """(N, C_in, H, W) images -> (N, 1, H, W) logits."""
        size = (x.shape[-2], x.shape[-1])
        skips = self.encoder(x)
        x = skips.pop()
        for up in self.decoder:
            x = up(x, skips.pop())
        return self.head(self.final_up(x, size=size))
