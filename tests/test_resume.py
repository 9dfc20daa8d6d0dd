"""Resume continues exactly as the stored config says; overrides that would change the result are refused."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from clitools import read_csv_columns, run_cli
from configs import compose_config

from seg.errors import ConfigError
from seg.resume import resume_run, touched_prefixes
from seg.rundir import RunDir, Status, load_checkpoint
from seg.training import train

SMALL = ["debug=smoke", "data=synthetic", "logger=none", "trainer.test_after_fit=false"]


def trained(tmp_path: Path, cli_paths: list[str], *overrides: str) -> RunDir:
    """A finished one-epoch run trained in-process."""
    cfg = compose_config(*SMALL, *cli_paths, *overrides)
    run = RunDir(tmp_path / "run")
    run.path.mkdir(parents=True)
    assert train(cfg, run).status == Status.COMPLETED
    return run


def resume(run: RunDir, cli_paths: list[str], *overrides: str):
    """resume_run as `python -m seg.train resume=<run> <overrides>` decides it."""
    command = [f"resume={run.path}", *overrides]
    return resume_run(compose_config(*command, *cli_paths), command)


def snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}  # fmt: skip


@pytest.fixture(scope="module")
def cosine_run(tmp_path_factory: pytest.TempPathFactory, cli_paths: list[str]) -> RunDir:
    return trained(tmp_path_factory.mktemp("cosine"), cli_paths, "scheduler=cosine", "optimizer.lr=1e-3")


def test_resume_alone_takes_the_stored_config(cosine_run: RunDir, cli_paths: list[str]) -> None:
    accepted = resume(cosine_run, cli_paths)
    stored = load_checkpoint(cosine_run.last)
    assert accepted.config.data == compose_config(*SMALL, *cli_paths).data  # not the defaults' oxford_pet
    assert accepted.config.scheduler.name == "cosine" and accepted.checkpoint.epoch == stored.epoch == 1


@pytest.mark.parametrize(
    "overrides,keys",
    [
        (["optimizer.lr=0.1", "trainer.epochs=4"], ["optimizer.lr (run: 0.001, this command: 0.1)", "trainer.epochs"]),
        (["model=resnet34_unet"], ["model.name (run: unet, this command: resnet34_unet)"]),
        (["seed=3"], ["seed (run: 0, this command: 3)"]),
        (["augmentation=strong"], ["augmentation.name"]),
        (["experiment=demo"], ["optimizer.lr", "scheduler.name"]),
    ],
)
def test_result_changing_overrides_are_refused_listing_both_values(
    cosine_run: RunDir, cli_paths: list[str], overrides: list[str], keys: list[str]
) -> None:
    before = snapshot(cosine_run.path)
    with pytest.raises(ConfigError) as err:
        resume(cosine_run, cli_paths, *overrides)
    message = str(err.value)
    assert "refused" in message and "\n" not in message
    for key in keys:
        assert key in message
    assert snapshot(cosine_run.path) == before


def test_neutral_overrides_are_taken(cosine_run: RunDir, cli_paths: list[str]) -> None:
    accepted = resume(cosine_run, cli_paths, "trainer.progress=false", "data.num_workers=1", "logger.mode=disabled")
    assert accepted.config.trainer.progress.lower() == "false" and accepted.config.data.num_workers == 1
    assert accepted.config.logger.mode == "disabled"


def test_the_keys_a_command_touches() -> None:
    """A group chosen into a package (`model@x=...`) touches the group; a _global_ group, every key."""
    command = ["+trainer.epochs=3", "~logger", "model@x=unet", "hydra.verbose=true", "resume=r"]
    assert touched_prefixes(command) == ["trainer.epochs", "logger", "model"]
    assert touched_prefixes(["experiment=demo"]) == [""]


def test_onecycle_cannot_be_extended_but_a_constant_lr_can(tmp_path: Path, cli_paths: list[str]) -> None:
    onecycle = trained(tmp_path / "a", cli_paths, "scheduler=onecycle")
    with pytest.raises(ConfigError, match="onecycle schedule was laid out for the run's length"):
        resume(onecycle, cli_paths, "trainer.epochs=2")

    constant = trained(tmp_path / "b", cli_paths, "scheduler=none")
    accepted = resume(constant, cli_paths, "trainer.epochs=2")
    assert accepted.extended_from == 1 and accepted.config.trainer.epochs == 2
    summary = train(accepted.config, accepted.run, resume=accepted)
    assert summary.status == Status.COMPLETED and summary.epochs == 2
    assert read_csv_columns(constant.metrics)["epoch"] == [1.0, 2.0]
    assert "epochs: 2" in constant.config.read_text()


@pytest.mark.slow
def test_a_refused_resume_from_the_cli_changes_no_file_and_leaves_no_folder(
    cosine_run: RunDir, cli_paths: list[str], tmp_path: Path
) -> None:
    out = tmp_path / "outputs"
    before = snapshot(cosine_run.path)
    result = run_cli("seg.train", f"resume={cosine_run.path}", "optimizer.lr=0.1", f"paths.output_dir={out}",
                     *cli_paths)  # fmt: skip
    assert result.returncode == 2 and "error: resume=" in result.stderr and "Traceback" not in result.stderr
    assert snapshot(cosine_run.path) == before
    assert not out.exists()
    finished = run_cli("seg.train", f"resume={cosine_run.path}", f"paths.output_dir={out}", *cli_paths)
    assert finished.returncode == 0 and "nothing to do" in finished.stdout
    assert snapshot(cosine_run.path) == before and not out.exists()
