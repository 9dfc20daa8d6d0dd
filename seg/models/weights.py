"""Pretrained weight files in the torch hub cache: downloaded when missing, checked against their published hash.

The file name of a published checkpoint carries the first hex digits of its sha256 (`resnet34-b627a593.pth`);
`torch.hub.load_state_dict_from_url(check_hash=True)` checks a download against them and keeps no bad file.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.error import URLError
from urllib.parse import urlparse

import torch

from seg.errors import MissingWeightsError


def cached_path(url: str) -> Path:
    """Where torch hub keeps the file at `url`: <torch hub dir>/checkpoints/<file name>."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(url).path)


def fetch_weights(url: str, what: str) -> Path:
    """The cached file of `url`, downloaded first when it is missing (progress bar, hash checked).

    MissingWeightsError (one line naming the file, the URL and where to put it) when the download fails:
    offline, refused, or a file whose sha256 does not match the hash in its name.
    """
    path = cached_path(url)
    if path.is_file():
        return path
    try:
        torch.hub.load_state_dict_from_url(url, progress=True, check_hash=True, map_location="cpu", weights_only=True)
    except (URLError, OSError, RuntimeError) as e:
        hash_error = isinstance(e, RuntimeError) and "hash" in str(e)
        reason = "its sha256 does not match the published hash" if hash_error else f"offline? {str(e).strip()[:80]}"
        raise MissingWeightsError(
            f"{what} weights {path.name} could not be downloaded from {url} ({reason}); download it on a machine "
            f"with internet and put it at {path}, or use model.encoder_weights=null"
        ) from e
    return path
