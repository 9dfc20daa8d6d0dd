"""Smoke test of `make bench` (scripts/bench.py): every in-process section runs on tiny inputs and writes
bench.json and bench.md whose figures hang together.

Not a timed test: nothing here depends on how fast the machine is. The overhead section (separate
`python -m seg.train` processes) is left out: the CLI tests run those jobs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_bench_sections_write_json_and_markdown(tmp_path: Path, synthetic_root: Path) -> None:
    out = tmp_path / "bench"
    args = ["--quick", "--threads", "1", "--sections", "ceiling,model,loader,epoch", "--models", "resnet34_unet",
            "--sizes", "32", "--batch", "1", "--sample", str(synthetic_root), "--out", str(out)]
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "bench.py"), *args], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]

    results = json.loads((out / "bench.json").read_text())
    assert {"meta", "ceiling", "model", "loader", "epoch", "targets"} <= results.keys()
    meta = results["meta"]
    assert meta["repeats"] == 1 and meta["quick"] and meta["sample"] == str(synthetic_root)
    assert meta["reuse_host_memory"] is True  # CPU: build_training keeps freed memory, as in training
    assert results["ceiling"][0]["precision"] == "fp32"
    assert {"median", "min", "max", "n"} <= results["ceiling"][0]["gflops"].keys()

    assert {(r["model"], r["size"], r["batch"], r["layout"]) for r in results["model"]} == {
        ("resnet34_unet", 32, 16, "contiguous"), ("resnet34_unet", 32, 16, "channels_last")}  # 1 at 128 px
    for row in results["model"]:
        assert row["gflop_per_image"] > 0 and row["images_per_s"]["median"] > 0 and row["mfu"]["median"] > 0

    # 20 synthetic pets: 16 trainval (every 10th to val: 14 train, 2 val) and 4 test
    assert {(r["source"], r["workers"]) for r in results["loader"]} == {
        ("cache", 0), ("cache", 2), ("decode", 0), ("decode", 2), ("folder cache", 0), ("folder cache", 2)}
    assert {r["images"] for r in results["loader"]} == {14}
    (epoch,) = results["epoch"]
    assert (epoch["train_images"], epoch["val_images"], epoch["test_images"]) == (14, 2, 4)
    assert epoch["train_batches"] == 1 and epoch["workers"] == 2 and epoch["source"] == "cache"
    assert 0 < epoch["wait_s"]["median"] < epoch["epoch_s"]["median"]
    assert abs(epoch["wait_s"]["median"] + epoch["compute_s"]["median"] - epoch["epoch_s"]["median"]) < 1e-6
    assert epoch["test_s"]["median"] > 0
    assert {t["target"].split(" ")[0] for t in results["targets"]} == {"cached", "folder", "data"}  # no unet 128 px
    assert all(t["met"] is None and t["not_judged"] == "--quick" for t in results["targets"])  # a check, not figures

    markdown = (out / "bench.md").read_text()
    for heading in ("## Targets", "## 1. Matmul ceiling", "## 2. Training step", "## 3. Train loader", "## 4. Epoch"):
        assert heading in markdown
    assert "## 5. Sweep job overhead" not in markdown
