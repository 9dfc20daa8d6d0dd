"""Smoke test of `make bench` (scripts/bench.py): it runs and writes bench.json and bench.md.

Not a timed test: nothing here depends on how fast the machine is.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_bench_writes_json_and_markdown(tmp_path: Path) -> None:
    out = tmp_path / "bench"
    args = ["--quick", "--repeats", "1", "--threads", "1", "--sections", "ceiling,model", "--models", "resnet34_unet",
            "--sizes", "32", "--batch", "1", "--out", str(out)]
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "bench.py"), *args], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]

    results = json.loads((out / "bench.json").read_text())
    assert {"meta", "ceiling", "model", "targets"} <= results.keys()
    assert {"device", "torch_threads", "repeats", "other_cpu_share"} <= results["meta"].keys()
    assert results["ceiling"][0]["precision"] == "fp32"
    assert {"median", "min", "max", "n"} <= results["ceiling"][0]["gflops"].keys()
    layouts = {row["layout"] for row in results["model"]}
    assert {"contiguous", "channels_last"} <= layouts
    for row in results["model"]:
        assert row["model"] == "resnet34_unet" and row["size"] == 32 and row["gflop_per_image"] > 0
        assert {"images_per_s", "gflops", "mfu", "page_fault_mb_per_step"} <= row.keys()
        assert 0 < row["conv_share"] <= 1  # CPU: the profiled share of the step spent in convolutions
    assert results["meta"]["reuse_host_memory"] is True  # like the trainer, on CPU (glibc)

    markdown = (out / "bench.md").read_text()
    assert "## 1. Matmul ceiling" in markdown and "## 2. Training step" in markdown
