"""Faults and bad input: each ends with a clear message, and nothing already computed is lost."""

from __future__ import annotations

import csv
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
import torch
import yaml
from clitools import REPO, run_cli, start_cli, wandb_records
from configs import compose_config, tiny_checkpoint
from faulty import NaNAfterLoss
from PIL import Image

import seg.training
from seg.data import DatasetNotFoundError, SplitListError, build_datasets
from seg.data.cache import load_or_build
from seg.data.oxford import read_split_list
from seg.data.staging import MARK
from seg.data.synthetic import ensure_synthetic
from seg.errors import ConfigError, NonFiniteError
from seg.rundir import RunDir, Status, load_checkpoint, save_checkpoint

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


def test_wandb_online_without_a_key_warns_and_training_goes_on(
    cli_paths: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    for key, value in {"WANDB_MODE": "online", "WANDB_API_KEY": "", "NETRC": str(tmp_path / "none")}.items():
        monkeypatch.setenv(key, value)
    run = RunDir(tmp_path / "run")
    summary = seg.training.train(compose_config("debug=smoke", "data=synthetic", "logger.mode=online", *cli_paths), run)
    assert summary.status == Status.COMPLETED
    assert "W&B is off for this run" in caplog.text
    assert run.metrics.is_file() and run.curves.is_file()


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
    *names, test_name = read_split_list(real_root / "annotations" / "trainval.txt")[:7]
    for name in [*names, test_name]:
        shutil.copy(real_root / "images" / f"{name}.jpg", root / "images")
    trimap = root / "annotations" / "trimaps" / f"{names[1]}.png"  # names[0] is the val split's one image
    trimap.write_bytes(trimap.read_bytes()[:200])  # truncated PNG
    (root / "annotations" / "trainval.txt").write_text("".join(f"{n} 1 1 1\n" for n in [*names, "Ghost_1"]))
    (root / "annotations" / "test.txt").write_text(f"{test_name} 1 1 1\n")
    with pytest.warns(UserWarning) as record:
        datasets = build_datasets(
            root=root, image_size=32, augmentation={"name": "none"}, cache_dir=tmp_path / "c"
        )
    [warning] = [str(w.message) for w in record]
    assert names[1] in warning and "Ghost_1" in warning
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


OFFLINE = {key: "http://127.0.0.1:9" for key in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY")}
"""A proxy that refuses every connection: the download path fails as offline, on machines with internet too."""


def test_imagenet_weights_offline_fail_clearly(tmp_path: Path) -> None:
    result = run_cli(
        "seg.train", *FAST, "model=resnet34_unet", "model.base_channels=64", "model.encoder_weights=imagenet",
        env={"TORCH_HOME": str(tmp_path), **OFFLINE},
    )  # fmt: skip
    assert_one_line_error(result, str(tmp_path), "encoder_weights=null")


# --- training faults --------------------------------------------------------------------------

def test_non_finite_first_epoch_fails_the_run_and_keeps_nothing(cli_paths: list[str], tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    result = run_cli("seg.train", *FAST, "optimizer.lr=1e10", "trainer.epochs=3", f"hydra.run.dir={run_dir}",
                     *cli_paths)  # fmt: skip
    assert_one_line_error(result, "NaN", "optimizer.lr")
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "failed"
    assert not (run_dir / "checkpoints").exists()  # epoch 1 was already non-finite: nothing kept


def test_sweep_whose_every_job_failed_exits_non_zero(cli_paths: list[str], tmp_path: Path) -> None:
    sweep = run_cli("seg.train", "-m", *FAST, "optimizer.lr=1e10", "seed=0,1", f"hydra.sweep.dir={tmp_path}",
                    *cli_paths)  # fmt: skip
    summaries = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("*/summary.json"))]
    assert [s["status"] for s in summaries] == ["failed", "failed"]  # the sweep went on after the first failure
    assert sweep.returncode == 1 and "Traceback" not in sweep.stderr
    last = sweep.stderr.strip().splitlines()[-1]
    assert last.startswith("error: no job of the sweep finished (2 failed); job 0: the loss became NaN"), last
    assert str(tmp_path / "summary.md") in last and (tmp_path / "summary.md").is_file()


def _poisoned_at_epoch_2(monkeypatch: pytest.MonkeyPatch, what: str) -> None:
    """Make seg.training's next run go non-finite in epoch 2: its loss (NaN), or a BatchNorm running variance
    (inf: only the weights check sees it, since an eval-mode BatchNorm then outputs its bias and losses stay finite)."""
    build = seg.training.build_training

    def poisoned(cfg):
        t = build(cfg)
        if what == "loss":
            t.loss_fn = NaNAfterLoss(after=t.steps_per_epoch + 1)
            return t
        train_calls = []

        def poison(module: torch.nn.Module, inputs: object) -> None:  # before the first batch of epoch 2
            train_calls.extend([1] if module.training else [])
            if len(train_calls) > t.steps_per_epoch:
                module.running_var[0] = float("inf")

        t.model.get_submodule("stem.1").register_forward_pre_hook(poison)
        return t

    monkeypatch.setattr(seg.training, "build_training", poisoned)


@pytest.mark.parametrize("what,message", [("loss", "the loss became NaN/inf at epoch 2, batch 1"),
                                          ("weights", "weight tensors became NaN/inf in epoch 2")])  # fmt: skip
def test_non_finite_epoch_is_never_checkpointed(cli_paths: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                what: str, message: str) -> None:  # fmt: skip
    _poisoned_at_epoch_2(monkeypatch, what)
    run = RunDir(tmp_path / "run")
    with pytest.raises(NonFiniteError, match=message):
        seg.training.train(compose_config(*FAST, "trainer.epochs=3", *cli_paths), run)
    for path in (run.best, run.last):
        ckpt = load_checkpoint(path)
        assert ckpt.epoch == 1 and all(torch.isfinite(v).all() for v in ckpt.model.values() if v.is_floating_point())
    summary = run.read_summary()
    assert summary.status == Status.FAILED and summary.epochs == 1 and message in summary.error
    assert len(run.metrics.read_text().splitlines()) == 2  # header and epoch 1


def test_zero_dice_run_warns(cli_paths: list[str], tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    run = RunDir(tmp_path / "run")
    summary = seg.training.train(compose_config(*FAST, "threshold=0.999", *cli_paths), run)  # predicts no pet
    assert summary.status == Status.COMPLETED and summary.best_val_dice == 0.0
    [warning] = summary.warnings
    assert "val Dice stayed 0.0" in warning and warning in caplog.text
    assert run.read_summary().warnings == [warning]


def test_sigkill_while_writing_a_checkpoint_keeps_the_previous_one(tmp_path: Path) -> None:
    path = tmp_path / "last.pt"
    save_checkpoint(tiny_checkpoint(epoch=1), path)
    writer = subprocess.Popen(
        [sys.executable, "-c",
         "import sys; from pathlib import Path; from seg.files import atomic_write; "
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


def test_ctrl_c_keeps_the_last_epoch_and_prints_the_resume_command(cli_paths: list[str], tmp_path: Path) -> None:
    """SIGTERM (SLURM, `timeout`, `docker stop`, Kubernetes) takes the same path with exit code 143:
    test_kills.py::test_sigterm_while_loader_workers_start_stops_the_run_in_seconds."""
    signum, code = signal.SIGINT, 130
    run_dir = tmp_path / "run"
    proc = start_cli("seg.train", "debug=smoke", "data=synthetic", "trainer.epochs=200", f"hydra.run.dir={run_dir}",
                     *cli_paths)  # fmt: skip
    deadline = time.monotonic() + 120
    while not (run_dir / "checkpoints" / "last.pt").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == code
    name = signal.Signals(signum).name
    assert f"interrupted ({name}):" in stderr and f"continue with: python -m seg.train resume={run_dir}" in stderr
    epoch = load_checkpoint(run_dir / "checkpoints" / "last.pt").epoch
    assert 1 <= epoch < 200
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["epochs"] == epoch
    assert summary["error"] == f"{name} after epoch {epoch}"
    [wandb_file] = run_dir.glob("wandb/offline-run-*/run-*.wandb")
    assert any(r.get("type") == "exit" for r in wandb_records(wandb_file)), "W&B run was not finished"


# --- checkpoints and prediction: what seg reads never decides what runs or where it writes ----------------------


class _WritesAFile:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_foreign_damaged_and_code_running_checkpoints_are_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps({"format": "seg-checkpoint-v1", "payload": _WritesAFile(marker)}))
    assert_one_line_error(run_cli("seg.evaluate", f"ckpt={evil}"), str(evil), "weights_only")
    assert not marker.exists()
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {}}, foreign)
    assert_one_line_error(run_cli("seg.evaluate", f"ckpt={foreign}"), "not a seg checkpoint")
    damaged = tmp_path / "damaged.pt"
    save_checkpoint(tiny_checkpoint(), damaged)
    torch.save({k: v for k, v in torch.load(damaged, weights_only=True).items() if k != "rng"}, damaged)
    assert_one_line_error(run_cli("seg.predict", f"ckpt={damaged}", f"input={tmp_path}", f"output={tmp_path / 'o'}"),
                          "damaged seg checkpoint", "'rng'")  # fmt: skip


def test_crafted_checkpoint_runs_no_code_via_evaluate_and_predict(tmp_path: Path) -> None:
    """A checkpoint that loads with weights_only=True but whose config names code (`_target_`) or reads the
    environment (`${oc.env:...}`): refused with one line, nothing executed, nothing written."""
    home = tmp_path / "home"
    home.mkdir()
    victim = home / "victim.txt"
    victim.write_text("precious")
    ckpt = tiny_checkpoint()
    for name, file in (("interpolation", "${oc.env:HOME}/victim.txt"), ("target", str(victim))):
        config = yaml.safe_load(ckpt.config)
        config["model"].update({"_target_": "builtins.open", "file": file, "mode": "w"})
        ckpt.config = yaml.safe_dump(config)
        save_checkpoint(ckpt, tmp_path / f"{name}.pt")
    out = tmp_path / "outputs"
    evaluate = run_cli("seg.evaluate", f"ckpt={tmp_path / 'interpolation.pt'}", f"paths.output_dir={out}",
                       env={"HOME": str(home)})  # fmt: skip
    assert_one_line_error(evaluate, "interpolation", "refusing to resolve it")
    predict = run_cli("seg.predict", f"ckpt={tmp_path / 'target.pt'}", f"input={home}", f"output={tmp_path / 'masks'}",
                      env={"HOME": str(home)})  # fmt: skip
    assert_one_line_error(predict, "does not fit seg's schema", "_target_")
    assert victim.read_text() == "precious"
    assert not out.exists() and not (tmp_path / "masks").exists()


def test_checkpoint_outside_a_run_is_evaluated_into_the_output_dir(trained_run: Path, tmp_path: Path) -> None:
    loose = tmp_path / "downloads" / "best.pt"  # not in a run directory: its grandparent is not seg's to write
    loose.parent.mkdir()
    shutil.copy(trained_run / "checkpoints" / "best.pt", loose)
    out = tmp_path / "outputs"
    result = run_cli("seg.evaluate", f"ckpt={loose}", f"paths.output_dir={out}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["downloads", "outputs"]
    assert [p.name for p in loose.parent.iterdir()] == ["best.pt"]
    [eval_dir] = (out / "eval").iterdir()
    assert eval_dir.name.startswith("best_test_") and (eval_dir / "results.json").is_file()


def test_predict_never_overwrites_and_records_every_input(trained_run: Path, tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    (inputs / "sub").mkdir(parents=True)
    Image.fromarray(np.zeros((10_000, 10_000), dtype=np.uint8)).save(inputs / "bomb.png")  # 100 Mpx, ~100 KB
    Image.fromarray(np.full((40, 30, 3), 128, dtype=np.uint8)).save(inputs / "ok.png")
    Image.fromarray(np.full((20, 30, 3), 200, dtype=np.uint8)).save(inputs / "sub" / "ok.png")  # the same name
    Image.fromarray(np.full((40, 30, 3), 64, dtype=np.uint8)).save(inputs / "victim.png")
    Image.fromarray(np.full((40, 30, 3), 99, dtype=np.uint8)).save(inputs / "a_mask.png")  # a photo, not a mask
    ckpt = f"ckpt={trained_run / 'checkpoints' / 'best.pt'}"
    before = {p: p.read_bytes() for p in inputs.rglob("*") if p.is_file()}
    assert_one_line_error(run_cli("seg.predict", ckpt, f"input={inputs}", f"output={inputs}"), "overlaps the inputs")
    assert {p: p.read_bytes() for p in inputs.rglob("*") if p.is_file()} == before

    output = tmp_path / "out"
    output.mkdir()
    outside = tmp_path / "outside.png"
    outside.write_bytes(b"keep me")
    (output / "victim_mask.png").symlink_to(outside)  # writing here would escape `output`
    result = run_cli("seg.predict", ckpt, f"input={inputs}", f"output={output}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "decompression bomb" in result.stdout and "would overwrite" in result.stdout
    assert outside.read_bytes() == b"keep me"
    assert {p: p.read_bytes() for p in inputs.rglob("*") if p.is_file()} == before
    written = sorted(str(p.relative_to(output)) for p in output.rglob("*") if p.is_file() or p.is_symlink())
    assert written == ["a_mask_mask.png", "a_mask_overlay.png", "manifest.csv", "ok_mask.png", "ok_overlay.png",
                       "sub/ok_mask.png", "sub/ok_overlay.png", "victim_mask.png"]  # fmt: skip
    with (output / "manifest.csv").open() as f:
        manifest = {Path(row["input"]).relative_to(inputs).as_posix(): row for row in csv.DictReader(f)}
    assert sorted(manifest) == ["a_mask.png", "bomb.png", "ok.png", "sub/ok.png", "victim.png"]
    assert manifest["sub/ok.png"]["mask"] == "sub/ok_mask.png" and manifest["ok.png"]["mask"] == "ok_mask.png"
    assert manifest["a_mask.png"]["mask"] == "a_mask_mask.png"
    assert "decompression bomb" in manifest["bomb.png"]["skipped"]
    assert "would overwrite" in manifest["victim.png"]["skipped"]
    again = run_cli("seg.predict", ckpt, f"input={inputs}", f"output={output}")
    assert_one_line_error(again, "already holds predictions (manifest.csv)", "new folder")


# --- where seg writes: every write stays under the configured output directory ---------------------------------


def test_name_with_dots_writes_nothing_outside_outputs(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    result = run_cli("seg.train", *FAST, "name=../../x", f"paths.output_dir={work / 'outputs'}", cwd=REPO)
    assert_one_line_error(result, "name='../../x'", "one folder name")
    assert list(tmp_path.rglob("*")) == [work]


@pytest.mark.parametrize("multirun", [False, True], ids=["run", "sweep"])
def test_output_dir_that_is_a_file_is_one_line_and_creates_nothing(tmp_path: Path, multirun: bool) -> None:
    a_file = tmp_path / "outputs"
    a_file.write_text("not a folder")
    result = run_cli("seg.train", *(["-m"] if multirun else []), *FAST, f"paths.output_dir={a_file}")
    assert_one_line_error(result, f"paths.output_dir={a_file} is a file")
    assert list(tmp_path.iterdir()) == [a_file] and a_file.read_text() == "not a folder"


@pytest.mark.parametrize("module,args", [("seg.evaluate", []), ("seg.predict", ["input=x", "output=y"])])
def test_evaluate_and_predict_without_ckpt_are_one_line(tmp_path: Path, module: str, args: list[str]) -> None:
    result = run_cli(module, *args, cwd=tmp_path)  # outputs/ would be made here
    assert_one_line_error(result, "give either ckpt or ensemble", "ckpt=outputs/runs/")
    assert not list(tmp_path.iterdir())


def test_bogus_split_is_refused_before_any_work() -> None:  # was a KeyError after building the data
    with pytest.raises(ConfigError, match="split='bogus'; allowed: train, val, test"):
        compose_config("ckpt=x.pt", "split=bogus", config_name="evaluate")


# --- data faults that would make a result wrong -----------------------------------------------------------------


def test_image_in_both_train_and_test_lists_is_refused(synthetic_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "pets"
    shutil.copytree(synthetic_root, root)
    trainval = read_split_list(root / "annotations" / "trainval.txt")
    with (root / "annotations" / "test.txt").open("a") as f:
        f.write(f"{trainval[0]} 1 1 1\n{trainval[1]} 1 1 1\n")  # trainval[0] is a val image: val and test too
    with pytest.raises(SplitListError) as error:
        build_datasets(root=root, image_size=32, augmentation={"name": "none"}, cache_dir=tmp_path / "cache")
    assert f"2 image(s) of {root} are listed in both" in str(error.value)
    assert f"({trainval[0]}, {trainval[1]})" in str(error.value)
    assert not (tmp_path / "cache").exists()  # refused before any work


def test_cache_dir_that_is_a_file_is_refused_before_any_work(synthetic_root: Path, tmp_path: Path) -> None:
    a_file = tmp_path / "cache"
    a_file.write_text("not a folder")
    with pytest.raises(ConfigError, match=f"paths.cache_dir={a_file} is a file"):
        build_datasets(root=tmp_path / "new", image_size=32, augmentation={"name": "none"}, cache_dir=a_file,
                       synthetic={"n": 5, "seed": 0})  # fmt: skip
    assert sorted(tmp_path.iterdir()) == [a_file]  # not even the synthetic data was generated


# The cache builder calls the loader from several threads: only the first call announces itself (one line on
# stdout however the threads interleave); every call then blocks until the process is killed.
_STUCK_BUILDER = """
import threading
from pathlib import Path
import seg.data.{module} as builder
first = threading.Lock()
def stuck(*args, **kwargs):
    if first.acquire(blocking=False):
        print("building", flush=True)
    threading.Event().wait()
builder.{function} = stuck
builder.{call}
"""


@pytest.mark.parametrize("what", ["cache", "synthetic"])
def test_killed_build_leaves_nothing_that_lingers_or_is_read(synthetic_root: Path, tmp_path: Path, what: str) -> None:
    """A cache entry (or synthetic dataset) whose builder was SIGKILLed mid-way is never read, and the next
    build in that folder removes what it left."""
    names = read_split_list(synthetic_root / "annotations" / "trainval.txt")
    folder = tmp_path / what
    if what == "cache":
        call = f"load_or_build(Path({str(folder)!r}), Path({str(synthetic_root)!r}), 'x', {names!r}, 32)"
        script = _STUCK_BUILDER.format(module="cache", function="load_sample", call=call)
    else:
        script = _STUCK_BUILDER.format(module="synthetic", function="make_sample",
                                       call=f"ensure_synthetic(Path({str(folder / 'pets')!r}), n=6)")  # fmt: skip
    builder = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert builder.stdout.readline() == "building\n"
    builder.send_signal(signal.SIGKILL)
    builder.wait()
    left = sorted(p.name for p in folder.iterdir())
    assert len(left) == 2 and all(MARK in name for name in left), left  # its temp folder and lock, never renamed

    if what == "cache":  # the next user of the folder removes them and builds a complete entry
        source, kept, bad = load_or_build(folder, synthetic_root, "x", names, 32)
        assert kept == names and not bad and len(source) == len(names)
    else:
        ensure_synthetic(folder / "pets", n=6)
        assert len(list((folder / "pets" / "images").glob("*.jpg"))) == 6
    assert len(list(folder.iterdir())) == 1 and not list(folder.glob(".*"))


# --- outputs are created, never followed: a symlink planted at an output name redirects no write -----------------


def _plant_links(folder: Path, names: list[str], victim: Path, outside: Path) -> None:
    """At each output name, in turn, a symlink to `victim` and a dangling one into `outside` (made if followed)."""
    for n, name in enumerate(names):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).symlink_to(victim if n % 2 == 0 else outside / name.replace("/", "_"))


def _files_outside(root: Path, *outputs: Path) -> dict[str, str]:
    """{path: sha256} of every file under `root` but outside the `outputs` folders (a link: where it points)."""
    import hashlib

    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else f"-> {p.readlink()}"
            for p in sorted(root.rglob("*")) if not p.is_dir() and not any(p.is_relative_to(o) for o in outputs)}


def test_links_planted_at_every_output_of_train_report_and_evaluate_redirect_nothing(
    tmp_path: Path, cli_paths: list[str]
) -> None:
    """train and seg.report replace a planted link (a new file in its place), evaluate refuses a folder that holds
    one; no victim outside changes and no file appears outside the output folder."""
    from test_study_files import _study

    from seg.evaluate import OUTPUTS, evaluate_checkpoint
    from seg.files import OutputExists
    from seg.report import main as report_main

    victim, outside = tmp_path / "victim.txt", tmp_path / "outside"
    victim.write_text("the user's own file\n")
    outside.mkdir()
    run = RunDir(tmp_path / "run")
    written = [run.config, run.summary_file, run.metrics, run.curves, run.best, run.last, run.test_per_image,
               run.test_per_image_of("last")]  # fmt: skip
    run_names = [str(p.relative_to(run.path)) for p in written]
    study = _study(tmp_path / "study")
    study_names = ["report.md", "comparisons.png", "ab.png", "ab_seeds.png", "tables/1_plan.csv", "tables/1_plan.tex"]
    for folder, names in ((run.path, run_names), (study, study_names), (run.path / "eval", list(OUTPUTS))):
        _plant_links(folder, names, victim, outside)
    before = _files_outside(tmp_path, run.path, study)

    summary = seg.training.train(compose_config(*FAST, "trainer.limit_val_batches=1", *cli_paths), run)
    report_main([str(study)])
    evaluate = compose_config(f"ckpt={run.best}", "logger=none", config_name="evaluate")
    with pytest.raises(OutputExists, match="already holds results.json, results.md, per_image.csv, examples.png"):
        evaluate_checkpoint(evaluate, run.path / "eval")

    assert summary.status == Status.COMPLETED and summary.test is not None
    for folder, names in ((run.path, run_names), (study, study_names)):
        assert not [n for n in names if (folder / n).is_symlink() or not (folder / n).is_file()], "not replaced"
    assert all((run.path / "eval" / n).is_symlink() for n in OUTPUTS), "evaluate refused before writing"
    assert _files_outside(tmp_path, run.path, study) == before, "a write went outside the output folders"
    assert not list(outside.iterdir()), "a dangling link was followed"


def test_a_resumed_runs_log_is_appended_to_never_through_a_planted_link(tmp_path: Path) -> None:
    from seg.files import OutputExists, open_append

    log = tmp_path / "train.log"
    with open_append(log) as f:
        f.write("epoch 1\n")
    with open_append(log) as f:
        f.write("epoch 2\n")
    assert log.read_text() == "epoch 1\nepoch 2\n"
    victim = tmp_path / "victim"
    victim.write_text("keep")
    for target in (victim, tmp_path / "dangling"):
        link = tmp_path / f"to-{target.name}.log"
        link.symlink_to(target)
        with pytest.raises(OutputExists, match="is a symlink; refusing to follow it"):
            open_append(link)
    assert victim.read_text() == "keep" and not (tmp_path / "dangling").exists()
