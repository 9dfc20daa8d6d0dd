"""Models: parameter counts, output shapes, gradients, memory format, autocast, registry, ImageNet weights."""

from __future__ import annotations

from pathlib import Path
from urllib.error import URLError

import pytest
import torch
import torchvision
from configs import compose_config
from torch import nn

from seg.models import MODELS, ResNet34UNet, UNet, build_model
from seg.models.resnet_unet import imagenet_url
from seg.models.weights import cached_path
from seg.registry import option_args

torch.set_num_threads(1)
SMALL = {
    "unet": lambda: UNet(base_channels=4),
    "unet_bilinear": lambda: UNet(base_channels=4, upsample="bilinear"),
    "resnet34_unet": lambda: ResNet34UNet(base_channels=4),
}


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_unet_has_the_reports_31_04m_parameters():
    n = n_params(UNet())
    # bias-free 3x3 convs (BatchNorm follows), biased transposed convs and 1x1 head
    assert n == 31_037_633
    assert round(n / 1e6, 2) == 31.04


def test_resnet34_unet_parameter_count_in_the_reports_range():
    assert 24e6 <= n_params(ResNet34UNet()) <= 38e6


def test_resnet_encoder_has_torchvision_resnet34_layout():
    reference = torchvision.models.resnet34(weights=None).state_dict()
    expected = {k: v.shape for k, v in reference.items() if not k.startswith("fc.")}
    assert {k: v.shape for k, v in ResNet34UNet().encoder.state_dict().items()} == expected


@pytest.mark.parametrize("name", SMALL)
@pytest.mark.parametrize("size", [(33, 47), (64, 64), (50, 50), (32, 37)])
def test_output_is_one_logit_channel_at_input_size(name, size):
    model = SMALL[name]().eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, *size))
    assert out.shape == (2, 1, *size)


@pytest.mark.parametrize("name", SMALL)
def test_min_input_size_works(name):
    model = SMALL[name]()
    s = model.min_input_size
    assert model(torch.randn(2, 3, s, s)).shape == (2, 1, s, s)


def test_min_input_sizes():
    assert UNet.min_input_size == 16
    assert ResNet34UNet.min_input_size == 32


@pytest.mark.parametrize("name", SMALL)
def test_gradient_reaches_every_parameter(name):
    model = SMALL[name]()
    model(torch.randn(2, 3, 35, 33)).square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing


@pytest.mark.parametrize("name", SMALL)
def test_channels_last_gives_the_same_logits(name):
    model = SMALL[name]().eval()
    x = torch.randn(2, 3, 40, 36)
    with torch.no_grad():
        expected = model(x)
        model = model.to(memory_format=torch.channels_last)
        out = model(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", SMALL)
def test_runs_under_autocast(name):
    model = SMALL[name]().to(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(torch.randn(2, 3, 33, 34).contiguous(memory_format=torch.channels_last))
    assert out.shape == (2, 1, 33, 34)
    out.float().mean().backward()


@pytest.mark.parametrize("name", ["unet", "resnet34_unet"])
def test_config_builds_model_from_the_registry(name):
    cfg = compose_config(f"model={name}", "model.base_channels=4")
    model = build_model(cfg.model.name, option_args(cfg.model))
    assert isinstance(model, MODELS.builder(name))
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 1, 32, 32)


def test_build_model():
    assert isinstance(build_model("unet", {"base_channels": 2}), UNet)
    with pytest.raises(ValueError, match="available: resnet34_unet, smp, unet"):
        build_model("segformer", {})


def test_invalid_arguments_raise_value_error():
    with pytest.raises(ValueError, match="upsample"):
        UNet(base_channels=2, upsample="nearest")
    with pytest.raises(ValueError, match="multiple of 4"):
        ResNet34UNet(base_channels=6)
    with pytest.raises(ValueError, match="base_channels=64"):
        ResNet34UNet(base_channels=32, encoder_weights="imagenet")
    with pytest.raises(ValueError, match="encoder_weights"):
        ResNet34UNet(base_channels=4, encoder_weights="ssl")


@pytest.fixture
def hub_dir(tmp_path, monkeypatch) -> Path:
    """An empty torch hub cache under tmp_path, offline: any download attempt fails as without network."""
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "hub"))

    def offline(*args, **kwargs):
        raise URLError("no network")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    return tmp_path / "hub"


def test_imagenet_weights_missing_is_a_clear_error(hub_dir):
    path = hub_dir / "checkpoints" / "resnet34-b627a593.pth"
    assert cached_path(imagenet_url()) == path
    with pytest.raises(RuntimeError) as error:
        ResNet34UNet(encoder_weights="imagenet")
    message = str(error.value)
    assert str(path) in message
    assert "offline" in message
    assert "https://download.pytorch.org/models/resnet34-b627a593.pth" in message
    assert "model.encoder_weights=null" in message


def test_imagenet_weights_load_from_the_hub_cache(hub_dir):
    weights = torchvision.models.resnet34(weights=None).state_dict()
    path = cached_path(imagenet_url())
    path.parent.mkdir(parents=True)
    torch.save(weights, path)
    encoder = ResNet34UNet(encoder_weights="imagenet").encoder.state_dict()
    assert encoder.keys() == {k for k in weights if not k.startswith("fc.")}
    assert all(torch.equal(v, weights[k]) for k, v in encoder.items())
