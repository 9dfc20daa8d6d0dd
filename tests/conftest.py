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


# `make test` runs two pytest workers that take one test file at a time, in the collection's order (pytest-xdist,
# --dist loadfile). The longest files go first, so that the two workers end together instead of one idling while
# the other runs a long file handed out last (52 s idle before this order). Seconds per file in one run on 2 cores
# (2026-12-03); a file not listed runs after these, in the usual order. A stale list only costs balance.
LONGEST_FIRST = {
    "test_faults.py": 86, "test_optuna.py": 60, "test_distributed.py": 54, "test_train_cli.py": 43,
    "test_study.py": 39, "test_options_cli.py": 36, "test_sweeps.py": 29, "test_user_view.py": 27,
    "test_folder_cli.py": 25, "test_claims.py": 24, "test_bench.py": 21, "test_cli_scripts.py": 18,
    "test_config.py": 18, "test_wandb.py": 16, "test_smp.py": 10, "test_resume.py": 9, "test_runtime.py": 9,
    "test_kills.py": 8, "test_rundir.py": 7,
}  # fmt: skip


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config.option, "loadscopereorder"):  # pytest-xdist would order the files by their number of tests
        config.option.loadscopereorder = False


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: -LONGEST_FIRST.get(item.path.name, 0))  # stable: each file's tests keep their order
