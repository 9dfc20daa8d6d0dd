"""Tests against a real SLURM or Ray cluster: `make test-cluster` starts one on this machine, runs these, and
stops it. Without a cluster they are skipped: each module `test_<kind>.py` runs only when the environment
variable SEG_CLUSTER lists <kind> (`SEG_CLUSTER=slurm,ray`), which the make target sets; `make test` (CI)
sees them as skipped and needs no cluster, no SLURM client and no Ray."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
# tests/ (clitools) and tests/cluster (clustertools) importable whatever pytest's import mode
sys.path[:0] = [str(HERE.parent), str(HERE)]

CLUSTERS = {kind.strip() for kind in os.environ.get("SEG_CLUSTER", "").split(",") if kind.strip()}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "cluster: needs a running SLURM or Ray cluster (make test-cluster)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        path = Path(item.path).resolve()
        if path.parent != HERE:
            continue
        item.add_marker(pytest.mark.cluster)
        kind = path.stem.removeprefix("test_")
        if kind not in CLUSTERS:
            reason = f"needs a running {kind} cluster: `make test-cluster` (sets SEG_CLUSTER={kind})"
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def slurm_cluster() -> str:
    """The partition of scripts/cluster/slurm_up.sh's cluster, checked to be up (fails, not skips, if not)."""
    from clustertools import run

    nodes = run("sinfo", "--noheader", "--partition", "debug", "--format", "%T").split()
    assert nodes and all(state in ("idle", "mixed", "allocated") for state in nodes), (
        f"the SLURM test cluster is not up (node states {nodes}): `sudo bash scripts/cluster/slurm_up.sh`"
    )
    return "debug"
