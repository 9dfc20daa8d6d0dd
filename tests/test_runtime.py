"""Host memory reuse on CPU (glibc malloc settings), checked in a fresh process by counting page faults."""

from __future__ import annotations

import subprocess
import sys

import pytest

FAULTS_PER_STEP = """
import resource, sys, torch
from seg.engine.runtime import reuse_host_memory
if sys.argv[1] == "reuse":
    assert reuse_host_memory()
x = torch.ones(1)
def step():  # like a training step: allocate, write and free 64 MiB of activations
    torch.empty(16 * 2**20).fill_(1.0)
for _ in range(20):  # with reuse, the heap stops growing within a few steps (4-9 seen)
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    step()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 10)
"""


def _faults_per_step(mode: str) -> float:
    result = subprocess.run([sys.executable, "-c", FAULTS_PER_STEP, mode], capture_output=True, text=True,
                            check=True)
    return float(result.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc")
def test_reuse_host_memory_stops_page_faults_per_step() -> None:
    default, reused = _faults_per_step("default"), _faults_per_step("reuse")
    assert default > 10_000  # 64 MiB = 16384 pages of 4 KiB, faulted in again every step
    assert reused < 100


FREEZE = """
import gc, weakref
from seg.engine.runtime import freeze_imports
freeze_imports()
frozen = gc.get_freeze_count()
freeze_imports()
assert gc.get_freeze_count() == frozen, "once per process"
class Node: pass
node = Node(); node.me = node  # a cycle made after the freeze: garbage the collector must still find
ref = weakref.ref(node); del node
gc.collect()
print(frozen, ref() is None)
"""


def test_freeze_imports_freezes_once_and_later_garbage_is_still_collected() -> None:
    result = subprocess.run([sys.executable, "-c", FREEZE], capture_output=True, text=True, check=True)
    frozen, collected = result.stdout.split()
    assert int(frozen) > 50_000 and collected == "True", "torch's import-time objects frozen; later cycles freed"
