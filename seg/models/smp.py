"""segmentation_models_pytorch (smp, the optional `[smp]` extra) as one seg model: `model=smp model.arch=fpn
model.encoder=resnet18`. Images (N, C, H, W) -> logits (N, 1, H, W); H and W must be multiples of 2**encoder_depth.

smp is imported only when an smp model is checked or built (its import, with timm's, takes seconds). Every
checkpoint of an smp model records the smp version it was trained with (the `smp_version` buffer).
"""

from __future__ import annotations

import difflib
from types import ModuleType
from typing import Any

import torch
from torch import Tensor, nn

from seg.errors import ConfigError, MissingWeightsError

INSTALL = "pip install -e '.[smp]'  (segmentation-models-pytorch 0.6)"
ARCHS: tuple[str, ...] = (
    "unet", "unetplusplus", "manet", "linknet", "fpn", "pspnet", "deeplabv3", "deeplabv3plus", "pan", "upernet",
    "segformer", "dpt",
)  # fmt: skip
"""smp 0.6's architectures, by the lower-case names of `smp.create_model`."""
VERSION_BYTES = 16


def _decoder_widths(arch: str, c: int, depth: int) -> dict[str, Any]:
    """smp's decoder-width arguments of `arch` at width scale c (c = 16 gives smp's own defaults)."""
    if arch in ("unet", "unetplusplus", "manet"):
        return {"decoder_channels": [16 * c, 8 * c, 4 * c, 2 * c, c][:depth]}
    if arch == "fpn":
        return {"decoder_pyramid_channels": 16 * c, "decoder_segmentation_channels": 8 * c}
    if arch in ("deeplabv3", "deeplabv3plus", "upernet"):
        return {"decoder_channels": 16 * c}
    if arch == "pan":
        return {"decoder_channels": 2 * c}
    if arch == "pspnet":
        return {"psp_out_channels": 32 * c}
    if arch == "segformer":
        return {"decoder_segmentation_channels": 16 * c}
    raise ConfigError(
        f"invalid config: model.base_channels={c} with model.arch={arch} (its decoder widths follow the encoder); "
        "set model.base_channels=null"
    )


def import_smp() -> ModuleType:
    """The segmentation_models_pytorch module, or a ConfigError saying how to install it."""
    try:
        import segmentation_models_pytorch
    except ImportError as e:
        raise ConfigError(f"model=smp needs segmentation-models-pytorch, which is not installed: {INSTALL}") from e
    return segmentation_models_pytorch


def _close(name: str, known: list[str] | tuple[str, ...], what: str, key: str) -> ConfigError:
    close = difflib.get_close_matches(name, known, n=5, cutoff=0.5)
    hint = f"close names: {', '.join(close)}" if close else f"known: {', '.join(list(known)[:12])}, ..."
    return ConfigError(f"invalid config: {key}={name!r} is not an smp {what}; {hint}")


def check_encoder(smp: ModuleType, encoder: str, weights: str | None) -> None:
    """ConfigError for an encoder smp does not know (`tu-<timm name>` included), or weights it does not have."""
    if encoder.startswith("tu-"):
        import timm

        if not timm.is_model(encoder[3:]):
            raise _close(encoder[3:], timm.list_models(), "timm model (for tu-<name>)", "model.encoder")
        return
    if encoder not in smp.encoders.encoders:
        raise _close(encoder, smp.encoders.get_encoder_names(), "encoder", "model.encoder")
    available = list(smp.encoders.encoders[encoder]["pretrained_settings"])
    if weights is not None and weights not in available:
        raise ConfigError(
            f"invalid config: model.encoder_weights={weights!r} for encoder {encoder}; "
            f"allowed: null{''.join(', ' + w for w in available)}"
        )


class SmpModel(nn.Module):
    """An smp model (`arch` over `encoder`) with one output channel and no activation.

    ``base_channels`` c scales the decoder widths (Unet, Unet++, MAnet: 16c..c; FPN: 16c pyramid, 8c segmentation;
    DeepLabV3(+), UPerNet, Segformer: 16c; PAN: 2c; PSPNet: 32c); null keeps smp's defaults (those of c = 16).
    ``encoder_weights`` (e.g. imagenet) are fetched by smp from the Hugging Face hub into its cache (see
    :func:`seg.models.weights.prepare_weights`, run before any data work).
    """

    min_input_size: int = 32

    def __init__(
        self,
        arch: str = "unet",
        encoder: str = "resnet34",
        encoder_weights: str | None = None,
        encoder_depth: int = 5,
        base_channels: int | None = None,
        decoder_attention: str | None = None,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        smp = import_smp()
        self.check_args(arch=arch, encoder=encoder, encoder_weights=encoder_weights, encoder_depth=encoder_depth,
                        base_channels=base_channels, decoder_attention=decoder_attention)  # fmt: skip
        kwargs: dict[str, Any] = {"encoder_depth": encoder_depth}
        if base_channels is not None or arch in ("unet", "unetplusplus", "manet"):
            kwargs.update(_decoder_widths(arch, base_channels or 16, encoder_depth))
        if decoder_attention is not None:
            kwargs["decoder_attention_type"] = decoder_attention
        weights: Any = encoder_weights
        if encoder.startswith("tu-") and encoder_weights is not None:
            weights = True  # timm encoders take True; the pretrained tag is part of the name
        self.model = smp.create_model(arch, encoder_name=encoder, encoder_weights=weights,
                                      in_channels=in_channels, classes=1, **kwargs)  # fmt: skip
        version = smp.__version__.encode()[:VERSION_BYTES]
        # a buffer, hence in every checkpoint: the smp version the weights come from (zero-padded ASCII)
        self.register_buffer("smp_version", torch.tensor(list(version.ljust(VERSION_BYTES, b"\0")), dtype=torch.uint8))

    @classmethod
    def check_args(
        cls, *, arch: str, encoder: str, encoder_weights: str | None, encoder_depth: int,
        base_channels: int | None, decoder_attention: str | None, image_size: int | None = None,
    ) -> None:  # fmt: skip
        """ConfigError (one line) for an unknown arch or encoder (with close names), weights the encoder does not
        have, a decoder option the arch lacks, or an image size that is not a multiple of 2**encoder_depth."""
        smp = import_smp()
        if arch not in ARCHS:
            raise _close(arch, ARCHS, "architecture", "model.arch")
        check_encoder(smp, encoder, encoder_weights)
        if base_channels is not None:
            _decoder_widths(arch, base_channels, encoder_depth)
        if decoder_attention is not None and arch not in ("unet", "unetplusplus"):
            raise ConfigError(f"invalid config: model.decoder_attention={decoder_attention} needs model.arch=unet "
                              f"or unetplusplus, got {arch}")  # fmt: skip
        stride = 2**encoder_depth
        if image_size is not None and image_size % stride:
            raise ConfigError(
                f"invalid config: data.image_size={image_size} with model=smp encoder_depth={encoder_depth}; allowed: "
                f"a multiple of {stride}, e.g. data.image_size={max(stride, image_size // stride * stride)}"
            )

    @classmethod
    def prepare_weights(cls, *, encoder: str, encoder_weights: str | None, **_: Any) -> None:
        """Fetch the pretrained encoder file now (before any data work) when the model will load one."""
        if encoder_weights is not None:
            fetch_smp_weights(encoder, encoder_weights)

    def forward(self, x: Tensor) -> Tensor:
        """(N, C_in, H, W) images -> (N, 1, H, W) logits."""
        return self.model(x)

    @property
    def trained_with(self) -> str:
        """The smp version of these weights: the installed one, or the one of the checkpoint loaded into it."""
        return bytes(self.smp_version.tolist()).rstrip(b"\0").decode()


def smp_weights_file(encoder: str, weights: str) -> tuple[str, str, str]:
    """(Hugging Face repo, revision, file) of smp's pretrained `weights` for `encoder`."""
    settings = import_smp().encoders.encoders[encoder]["pretrained_settings"][weights]
    return settings["repo_id"], settings["revision"], "model.safetensors"


def fetch_smp_weights(encoder: str, weights: str) -> None:
    """Download smp's pretrained encoder file into the Hugging Face cache if it is not there (progress bar; the
    hub checks the file against its published sha256). MissingWeightsError (one line) when that fails.
    `tu-` (timm) encoders are downloaded by timm when the model is built."""
    if encoder.startswith("tu-"):
        return
    from huggingface_hub import hf_hub_download
    from huggingface_hub.constants import HF_HUB_CACHE

    repo, revision, filename = smp_weights_file(encoder, weights)
    try:
        for name in ("config.json", filename):
            hf_hub_download(repo, filename=name, revision=revision)
    except Exception as e:  # offline, refused, or a damaged download: the hub raises many types
        url = f"https://huggingface.co/{repo}/resolve/{revision}/{filename}"
        raise MissingWeightsError(
            f"smp {encoder} {weights} weights ({filename} of {repo}) could not be fetched from {url} "
            f"({type(e).__name__}); on a machine with internet run `hf download {repo} --revision {revision}` and "
            f"copy {HF_HUB_CACHE} here (or set HF_HOME), or use model.encoder_weights=null"
        ) from e
