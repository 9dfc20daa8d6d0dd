"""The run-directory contract: checkpoint format and refusals, summary, resume paths, where things are written."""

from __future__ import annotations

import pickle
import random

import numpy as np
import pytest
import torch
import yaml
from configs import compose_config

from seg.config import to_yaml, train_config_from_yaml
from seg.engine.history import History
from seg.engine.runtime import restore_rng_state, rng_state
from seg.errors import CheckpointError, ConfigError
from seg.files import csv_text
from seg.inference import load_trained_model
from seg.models import build_model
from seg.registry import option_args
from seg.rundir import (
    METRICS_COLUMNS,
    Checkpoint,
    RunDir,
    Status,
    Summary,
    eval_dir_for,
    load_checkpoint,
    optuna_storage_for,
    remove_if_unused,
    resume_checkpoint_path,
    run_dir_for,
    save_checkpoint,
    sweep_dir_for,
)
from seg.schema import TrainConfig


def small_config(base_channels: int = 4) -> TrainConfig:
    """A checked TrainConfig: smoke-sized UNet on synthetic data, stored and read back as a checkpoint does."""
    cfg = compose_config("debug=smoke", "data=synthetic", "logger=none", f"model.base_channels={base_channels}")
    return train_config_from_yaml(to_yaml(cfg), "test")


def checkpoint(cfg: TrainConfig, epoch: int = 1) -> Checkpoint:
    model = build_model(cfg.model.name, option_args(cfg.model))
    return Checkpoint(model=model.state_dict(), config=to_yaml(cfg), epoch=epoch, state={"epoch": epoch},
                      optimizer={}, schedule={}, scaler={}, rng=rng_state())  # fmt: skip


def test_checkpoint_round_trip_rebuilds_the_model_from_the_registry(tmp_path) -> None:
    cfg = small_config()
    ckpt = checkpoint(cfg, epoch=3)
    path = tmp_path / "checkpoints" / "best.pt"
    save_checkpoint(ckpt, path)
    assert [p.name for p in path.parent.iterdir()] == ["best.pt"]  # no temp file left
    model, trained = load_trained_model(path, torch.device("cpu"))
    assert trained == cfg and load_checkpoint(path).epoch == 3
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, ckpt.model[name]), name


def test_rng_state_round_trip() -> None:
    state = rng_state()
    a = (random.random(), np.random.rand(), torch.rand(1).item())
    restore_rng_state(state)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == a


def test_failed_write_keeps_previous_checkpoint(tmp_path, monkeypatch) -> None:
    path = tmp_path / "last.pt"
    save_checkpoint(checkpoint(small_config(), epoch=1), path)
    monkeypatch.setattr("seg.files.os.replace", lambda *a: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError):
        save_checkpoint(checkpoint(small_config(), epoch=2), path)
    assert load_checkpoint(path).epoch == 1
    assert list(tmp_path.iterdir()) == [path]


class Exploit:
    def __reduce__(self):
        return (print, ("this would run code",))


def test_refuses_pickles_foreign_files_other_versions_and_missing_keys(tmp_path) -> None:
    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps({"format": "seg-checkpoint", "x": Exploit()}))
    with pytest.raises(CheckpointError, match="weights_only"):
        load_checkpoint(evil)
    cases = {
        "foreign": ({"state_dict": {}}, "not a seg checkpoint"),
        "v1": ({"format": "seg-checkpoint-v1"}, "older seg"),
        "v9": ({"format": "seg-checkpoint", "version": 9}, "version 9"),
        "keys": ({"format": "seg-checkpoint", "version": 2, "model": {}}, "missing \\['config'"),
    }
    for name, (content, message) in cases.items():
        torch.save(content, tmp_path / f"{name}.pt")
        with pytest.raises(CheckpointError, match=message):
            load_checkpoint(tmp_path / f"{name}.pt")
    (tmp_path / "garbage.pt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "garbage.pt")


@pytest.mark.parametrize(
    "edit,message",
    [
        (lambda c: c["model"].update(_target_="builtins.open"), "_target_"),
        (lambda c: c["model"].update(name="builtins.open"), "unknown model"),
        (lambda c: c["data"].update(root="${oc.env:HOME}/x"), "interpolation"),
        (lambda c: c.update(name="${oc.env:HOME}"), "interpolation"),
        (lambda c: c["model"].update(base_channels="many"), "does not fit"),
        (lambda c: c.update(threshold=2.0), "threshold"),
    ],
)
def test_a_crafted_checkpoint_config_is_refused_and_runs_nothing(tmp_path, edit, message) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    config = yaml.safe_load(to_yaml(small_config()))
    edit(config)
    ckpt = checkpoint(small_config())
    ckpt.config = yaml.safe_dump(config).replace("/x", str(victim))
    save_checkpoint(ckpt, tmp_path / "best.pt")
    with pytest.raises((ConfigError, CheckpointError), match=message):
        load_trained_model(tmp_path / "best.pt", torch.device("cpu"))
    assert victim.read_text() == "precious"


def test_weights_that_do_not_fit_the_stored_model_are_refused(tmp_path) -> None:
    ckpt = checkpoint(small_config(base_channels=8))
    ckpt.config = to_yaml(small_config(base_channels=4))
    save_checkpoint(ckpt, tmp_path / "best.pt")
    with pytest.raises(CheckpointError, match="do not fit"):
        load_trained_model(tmp_path / "best.pt", torch.device("cpu"))


def test_summary_round_trip_and_status() -> None:
    summary = Summary(Status.PRUNED, "/r", best_val_dice=0.5, best_epoch=2, epochs=3, test={"dice": 0.4})
    assert Summary.from_json(summary.to_json()) == summary
    assert Status.PRUNED.finished and Status.COMPLETED.finished and not Status.INTERRUPTED.finished


def test_metrics_are_never_read_through_a_symlink_planted_at_metrics_csv(tmp_path) -> None:
    """RunDir.read_metrics, the one reader (History's resume, sweeps and studies), reads the run's own file only."""
    row = {c: 1.0 for c in METRICS_COLUMNS} | {"epoch": 1}
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    run.metrics.write_text(csv_text(METRICS_COLUMNS, [row]))
    assert run.read_metrics() == [row] and History(run, completed_epochs=1).rows == [row]
    elsewhere = tmp_path / "elsewhere.csv"
    run.metrics.replace(elsewhere)
    kept = elsewhere.read_bytes()
    run.metrics.symlink_to(elsewhere)
    assert run.read_metrics() == []
    assert History(run, completed_epochs=1).rows == [] and not run.metrics.is_symlink()  # replaced, not followed
    assert elsewhere.read_bytes() == kept


def test_only_last_pt_resumes(tmp_path) -> None:
    run = RunDir(tmp_path / "run")
    save_checkpoint(checkpoint(small_config()), run.last)
    save_checkpoint(checkpoint(small_config()), run.best)
    assert resume_checkpoint_path(run.path) == (run, run.last)
    assert resume_checkpoint_path(run.last) == (run, run.last)
    with pytest.raises(CheckpointError, match="only last.pt resumes"):
        resume_checkpoint_path(run.best)
    with pytest.raises(CheckpointError, match="no checkpoints/last.pt"):
        resume_checkpoint_path(tmp_path)


def test_names_and_eval_dirs_stay_under_the_output_dir(tmp_path) -> None:
    out = tmp_path / "outputs"
    with pytest.raises(ConfigError, match="name="):
        run_dir_for("../../x", None, str(out), "t")
    assert run_dir_for("demo", None, str(out), "t") == f"{out}/runs/demo/t"
    assert run_dir_for("demo", "/some/run", str(out), "t") == f"{out}/resumes/t"
    run = RunDir(out / "runs" / "demo" / "t")
    run.config.parent.mkdir(parents=True)
    run.config.write_text("x")
    assert eval_dir_for(str(run.best), str(out), "test_t") == str(run.path / "eval" / "test_t")
    assert eval_dir_for("/best.pt", str(out), "test_t") == f"{out}/eval/best_test_t"  # outside: under outputs/
    outside = RunDir(tmp_path / "elsewhere" / "run")
    outside.config.parent.mkdir(parents=True)
    outside.config.write_text("x")
    assert eval_dir_for(str(outside.best), str(out), "test_t") == f"{out}/eval/best_test_t"


def test_the_sweep_dir_and_its_optuna_storage_are_named_alike(tmp_path) -> None:
    out = tmp_path / "outputs"
    assert sweep_dir_for(str(out), "demo", "t") == f"{out}/multirun/demo/t"
    assert optuna_storage_for(str(out), "demo") == f"sqlite:///{out}/optuna/demo.db"


@pytest.mark.parametrize(("name", "output_dir"), [("../x", "outputs"), ("a/b", "outputs"), ("demo", "file")])
def test_a_crafted_name_or_a_file_as_output_dir_is_refused_alike_for_the_sweep_and_its_storage(
    tmp_path, name: str, output_dir: str
) -> None:
    (tmp_path / "file").write_text("")
    output_dir = str(tmp_path / output_dir)
    with pytest.raises(ConfigError) as sweep:
        sweep_dir_for(output_dir, name, "t")
    with pytest.raises(ConfigError) as storage:
        optuna_storage_for(output_dir, name)
    assert str(storage.value) == str(sweep.value) and str(sweep.value).startswith("invalid config:")
    assert not (tmp_path / "outputs").exists()


def test_a_refused_command_leaves_no_folder(tmp_path) -> None:
    folder = tmp_path / "outputs" / "runs" / "x" / "t"
    (folder / ".hydra").mkdir(parents=True)
    (folder / "train.log").write_text("")
    (tmp_path / "keep").write_text("")
    remove_if_unused(folder)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep"]
    kept = tmp_path / "run"
    kept.mkdir()
    (kept / "metrics.csv").write_text("")
    remove_if_unused(kept)
    assert kept.is_dir()
