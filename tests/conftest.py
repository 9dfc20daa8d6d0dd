"""Shared test fixtures (data part): the real 400-image sample and a tiny synthetic dataset."""

from __future__ import annotations

from pathlib import Path

import pytest

REAL_SAMPLE = (Path(__file__).resolve().parents[1] / ".." / "shared/data/oxford-iiit-pet-sample").resolve()
"""The real Oxford-IIIT Pet sample, read in place (never copied into the repository)."""


@pytest.fixture(scope="session")
def real_root() -> Path:
    if not (REAL_SAMPLE / "annotations" / "trainval.txt").exists():
        pytest.skip(f"real Oxford-IIIT Pet sample not found at {REAL_SAMPLE}")
    return REAL_SAMPLE


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20 synthetic pets (16 trainval, 4 test) in the Oxford layout, generated once per session."""
    from seg.data.synthetic import write_dataset

    return write_dataset(tmp_path_factory.mktemp("data") / "synthetic-pets", n=20, seed=0)


@pytest.fixture(scope="session")
def cli_paths(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Overrides pointing CLI runs at one session-wide data folder (synthetic pets made once, one cache)."""
    data_dir = tmp_path_factory.mktemp("cli-data")
    from seg.data.synthetic import ensure_synthetic

    ensure_synthetic(data_dir / "synthetic-pets-n300-seed0", n=300, seed=0)
    return [f"paths.data_dir={data_dir}"]
