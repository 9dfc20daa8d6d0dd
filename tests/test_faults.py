"""Faults and bad input: each ends with a clear message, and nothing already computed is lost."""

from __future__ import annotations

import json
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from clitools import REPO, run_cli, wandb_records
from configs import tiny_checkpoint
from PIL import Image

from seg.data import DatasetNotFoundError, build_datasets
from seg.rundir import load_checkpoint, save_checkpoint

pytestmark = pytest.mark.slow

FAST = ["debug=smoke", "data=synthetic", "logger=none"]
FAKE_KEY = "local-" + "0123456789abcdef" * 3  # shaped like a real W&B key, never valid


def assert_one_line_error(result: subprocess.CompletedProcess, *parts: str) -> str:
    """Exit code 2, `error: ...` on stderr naming every part, and no traceback."""
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    [line] = [ln for ln in result.stderr.splitlines() if ln.startswith("error: ")]
    for part in parts:
        assert part in line, (part, line)
    assert "Traceback" not in result.stderr
    return line


@pytest.fixture(scope="module")
def trained_run(cli_paths: list[str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A smoke run with W&B offline and an API key in the environment."""
    run_dir = tmp_path_factory.mktemp("trained") / "run"
    result = run_cli(
        "seg.train", "debug=smoke", "data=synthetic", f"hydra.run.dir={run_dir}", *cli_paths,
        env={"WANDB_API_KEY": FAKE_KEY},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir


def test_wandb_api_key_never_saved(trained_run: Path) -> None:
    files = [p for p in trained_run.rglob("*") if p.is_file()]
    assert any(p.suffix == ".wandb" for p in files)
    assert not [p for p in files if FAKE_KEY.encode() in p.read_bytes()]


# --- dataset faults ---------------------------------------------------------------------------


def _layout(root: Path, images: bool = True, trimaps: bool = True, lists: bool = True) -> Path:
    (root / "images").mkdir(parents=True) if images else None
    (root / "annotations" / "trimaps").mkdir(parents=True) if trimaps else (root / "annotations").mkdir(
        parents=True
    )
    if lists:
        for name in ("trainval.txt", "test.txt"):
            (root / "annotations" / name).write_text("")
    return root


def test_wandb_online_without_a_key_warns_and_training_goes_on(cli_paths: list[str], tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    result = run_cli("seg.train", "debug=smoke", "data=synthetic", "logger.mode=online", f"hydra.run.dir={run_dir}",
                     *cli_paths, env={"WANDB_MODE": "online", "WANDB_API_KEY": "", "NETRC": str(tmp_path / "none")},
                     timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "W&B is off for this run" in result.stdout + result.stderr
    assert (run_dir / "metrics.csv").is_file() and (run_dir / "curves.png").is_file()


@pytest.mark.parametrize(
    "make,missing",
    [
        (lambda root: root, "images"),
        (lambda root: (root.mkdir(), root)[1], "images"),
        (lambda root: _layout(root, trimaps=False), "trimaps"),
        (lambda root: _layout(root, lists=False), "trainval.txt"),
    ],
    ids=["missing", "empty", "no-trimaps", "no-split-lists"],
)
def test_dataset_folder_faults_name_the_path_and_fix(tmp_path: Path, make, missing: str) -> None:
    root = make(tmp_path / "pets")
    with pytest.raises(DatasetNotFoundError) as error:
        build_datasets(root=root, image_size=32, augmentation={"name": "none"})
    message = str(error.value)
    assert str(root) in message and missing in message and "data=synthetic" in message


def test_missing_dataset_from_the_cli_is_one_line(tmp_path: Path) -> None:
    result = run_cli("seg.train", "debug=smoke", "data=oxford_pet", f"data.root={tmp_path / 'nowhere'}")
    assert_one_line_error(result, str(tmp_path / "nowhere"), "data.root=", "data=synthetic")


def test_truncated_png_trimap_and_missing_listed_file_are_skipped(real_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "pets"
    shutil.copytree(real_root / "annotations", root / "annotations", ignore=shutil.ignore_patterns("README"))
    (root / "images").mkdir()
    names = [
        line.split()[0] for line in (real_root / "annotations" / "trainval.txt").read_text().splitlines()
    ][:6]
    for name in names:
        shutil.copy(real_root / "images" / f"{name}.jpg", root / "images")
    trimap = root / "annotations" / "trimaps" / f"{names[0]}.png"
    trimap.write_bytes(trimap.read_bytes()[:200])  # truncated PNG
    (root / "annotations" / "trainval.txt").write_text("".join(f"{n} 1 1 1\n" for n in [*names, "Ghost_1"]))
    (root / "annotations" / "test.txt").write_text(f"{names[1]} 1 1 1\n")
    with pytest.warns(UserWarning) as record:
        datasets = build_datasets(
            root=root, image_size=32, augmentation={"name": "none"}, cache_dir=tmp_path / "c"
        )
    [warning] = [str(w.message) for w in record]
    assert names[0] in warning and "Ghost_1" in warning
    assert len(datasets["train"]) + len(datasets["val"]) == 5
    image, mask = datasets["train"][0]
    assert image.shape == (3, 32, 32) and set(mask.unique().tolist()) <= {0.0, 1.0}


# --- config faults ----------------------------------------------------------------------------


def test_unknown_key_and_option_are_refused_by_hydra() -> None:
    unknown_key = run_cli("seg.train", *FAST, "trainer.epoch=5")
    assert unknown_key.returncode != 0 and "trainer.epoch" in unknown_key.stderr
    unknown_option = run_cli("seg.train", *FAST, "model=unet3000")
    assert unknown_option.returncode != 0
    assert "unet3000" in unknown_option.stderr and "resnet34_unet" in unknown_option.stderr


def test_wrong_type_and_out_of_range_values() -> None:
    wrong_type = run_cli("seg.train", *FAST, "optimizer.lr=fast")  # refused by Hydra against the schema's type
    assert wrong_type.returncode == 1 and "Traceback" not in wrong_type.stderr
    assert "optimizer.lr=fast" in wrong_type.stderr and "could not be converted to Float" in wrong_type.stderr
    assert_one_line_error(run_cli("seg.train", *FAST, "data.val_split=2.0"), "data.val_split", "allowed")


def test_imagenet_weights_offline_fail_clearly(tmp_path: Path) -> None:
    result = run_cli(
        "seg.train", *FAST, "model=resnet34_unet", "model.base_channels=64", "model.encoder_weights=imagenet",
        env={"TORCH_HOME": str(tmp_path)},
    )  # fmt: skip
    assert_one_line_error(result, str(tmp_path), "encoder_weights=null")


# --- training faults --------------------------------------------------------------------------

def test_nan_loss_fails_the_run_and_a_sweep_goes_on(cli_paths: list[str], tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    result = run_cli("seg.train", *FAST, "optimizer.lr=1e10", "trainer.epochs=3", f"hydra.run.dir={run_dir}",
                     *cli_paths)  # fmt: skip
    assert_one_line_error(result, "NaN")
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "failed"
    assert not (run_dir / "checkpoints" / "best.pt").exists()  # epoch 1 was already non-finite: nothing kept

    sweep = run_cli("seg.train", "-m", *FAST, "optimizer.lr=1e10", "seed=0,1", f"hydra.sweep.dir={tmp_path / 'sweep'}",
                    *cli_paths)  # fmt: skip
    summaries = [json.loads(p.read_text()) for p in sorted((tmp_path / "sweep").glob("*/summary.json"))]
    assert [s["status"] for s in summaries] == ["failed", "failed"]
    assert "sweep goes on with 0.0" in sweep.stdout + sweep.stderr


def test_sigkill_while_writing_a_checkpoint_keeps_the_previous_one(tmp_path: Path) -> None:
    path = tmp_path / "last.pt"
    save_checkpoint(tiny_checkpoint(epoch=1), path)
    writer = subprocess.Popen(
        [sys.executable, "-c",
         "import sys; from pathlib import Path; from seg.rundir import atomic_write; "
         "atomic_write(Path(sys.argv[1]), bytes(400_000_000))",
         str(path)],
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".last.pt.*.tmp")) and time.monotonic() < deadline:
        time.sleep(0.005)
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    assert writer.returncode == -signal.SIGKILL, "the writer finished before it was killed"
    assert load_checkpoint(path).epoch == 1


def test_ctrl_c_saves_last_finishes_wandb_and_exits_non_zero(cli_paths: list[str], tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "seg.train", "debug=smoke", "data=synthetic", "trainer.epochs=200",
         f"hydra.run.dir={run_dir}", *cli_paths],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not (run_dir / "checkpoints" / "last.pt").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert "interrupted (SIGINT):" in stderr and f"continue with: python -m seg.train resume={run_dir}" in stderr
    epoch = load_checkpoint(run_dir / "checkpoints" / "last.pt").epoch
    assert 1 <= epoch < 200
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["epochs"] == epoch
    [wandb_file] = run_dir.glob("wandb/offline-run-*/run-*.wandb")
    assert any(r.get("type") == "exit" for r in wandb_records(wandb_file)), "W&B run was not finished"


# --- checkpoints and prediction ---------------------------------------------------------------


class _WritesAFile:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_foreign_checkpoint_and_code_running_pickle_are_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps({"format": "seg-checkpoint-v1", "payload": _WritesAFile(marker)}))
    assert_one_line_error(run_cli("seg.evaluate", f"ckpt={evil}"), str(evil), "weights_only")
    assert not marker.exists()
    foreign = tmp_path / "foreign.pt"
    import torch

    torch.save({"state_dict": {}}, foreign)
    assert_one_line_error(run_cli("seg.evaluate", f"ckpt={foreign}"), "not a seg checkpoint")


def test_predict_refuses_decompression_bombs_and_paths_outside_output(
    trained_run: Path, tmp_path: Path
) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    Image.fromarray(np.zeros((10_000, 10_000), dtype=np.uint8)).save(inputs / "bomb.png")  # 100 Mpx, ~100 KB
    Image.fromarray(np.full((40, 30, 3), 128, dtype=np.uint8)).save(inputs / "ok.png")
    Image.fromarray(np.full((40, 30, 3), 64, dtype=np.uint8)).save(inputs / "victim.png")
    output = tmp_path / "out"
    output.mkdir()
    outside = tmp_path / "outside.png"
    outside.write_bytes(b"keep me")
    (output / "victim_mask.png").symlink_to(outside)  # writing here would escape `output`

    result = run_cli("seg.predict", f"ckpt={trained_run / 'checkpoints' / 'best.pt'}", f"input={inputs}",
                     f"output={output}")  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "decompression bomb" in result.stdout and "would overwrite" in result.stdout
    assert outside.read_bytes() == b"keep me"
    assert sorted(p.name for p in output.iterdir()) == ["manifest.csv", "ok_mask.png", "ok_overlay.png",
                                                        "victim_mask.png"]  # fmt: skip
