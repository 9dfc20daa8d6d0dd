"""Pretrained weights: downloaded into the torch hub cache with their hash checked, from a local HTTP server; a
failed download is one line naming the file, the URL and where to put it, before any data work."""

from __future__ import annotations

import hashlib
import socket
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch
from configs import compose_config

import seg.models.resnet_unet
from seg.build import build_training
from seg.errors import MissingWeightsError
from seg.models.weights import cached_path, fetch_weights


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def served(tmp_path: Path, monkeypatch) -> Iterator[tuple[str, Path]]:
    """(base URL of an HTTP server on 127.0.0.1 serving a folder, that folder); the torch hub cache is empty."""
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "hub"))
    folder = tmp_path / "www"
    folder.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", folder
    server.shutdown()
    server.server_close()


def published(folder: Path, stem: str, tensors: dict[str, torch.Tensor], hash_prefix: str | None = None) -> str:
    """Save `tensors` as `<stem>-<first 8 hex digits of its sha256>.pth` (or a given, wrong prefix); its name."""
    tmp = folder / "tmp.pth"
    torch.save(tensors, tmp)
    name = f"{stem}-{hash_prefix or hashlib.sha256(tmp.read_bytes()).hexdigest()[:8]}.pth"
    tmp.rename(folder / name)
    return name


def closed_port_url(name: str) -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/{name}"  # nothing listens there: as offline


def test_download_checks_the_hash_into_the_hub_cache(served):
    base, folder = served
    tensors = {"w": torch.arange(6.0)}
    url = f"{base}/{published(folder, 'tiny', tensors)}"
    path = fetch_weights(url, "tiny")
    assert path == cached_path(url) and path.parent == Path(torch.hub.get_dir()) / "checkpoints"
    assert torch.equal(torch.load(path, weights_only=True)["w"], tensors["w"])
    (folder / path.name).unlink()  # served no more: the cached file is used
    assert fetch_weights(url, "tiny") == path


def test_bad_hash_is_one_line_and_keeps_no_file(served):
    base, folder = served
    url = f"{base}/{published(folder, 'tiny', {'w': torch.ones(3)}, hash_prefix='deadbeef')}"
    with pytest.raises(MissingWeightsError) as error:
        fetch_weights(url, "tiny")
    message = str(error.value)
    assert "sha256 does not match" in message and url in message and str(cached_path(url)) in message
    assert "\n" not in message and not cached_path(url).exists()


def test_imagenet_offline_fails_before_any_data_work(served, tmp_path: Path, monkeypatch):
    url = closed_port_url("resnet34-b627a593.pth")
    monkeypatch.setattr(seg.models.resnet_unet, "imagenet_url", lambda: url)
    weights = ("model=resnet34_unet", "model.base_channels=64", "model.encoder_weights=imagenet")
    cfg = compose_config(*weights, "debug=smoke", "data=synthetic", f"paths.data_dir={tmp_path / 'data'}")
    with pytest.raises(MissingWeightsError) as error:
        build_training(cfg)
    message = str(error.value)
    assert url in message and str(cached_path(url)) in message and "encoder_weights=null" in message
    assert not (tmp_path / "data").exists()  # no dataset generated or cached


def test_imagenet_downloads_into_the_cache_and_loads(served, monkeypatch):
    base, folder = served
    from torchvision.models import resnet34

    weights = {k: v for k, v in resnet34(weights=None).state_dict().items() if k.startswith(("conv1", "bn1"))}
    url = f"{base}/{published(folder, 'resnet34', weights)}"
    monkeypatch.setattr(seg.models.resnet_unet, "imagenet_url", lambda: url)
    assert torch.equal(seg.models.resnet_unet.load_imagenet_state_dict()["conv1.weight"], weights["conv1.weight"])
    assert cached_path(url).is_file()
