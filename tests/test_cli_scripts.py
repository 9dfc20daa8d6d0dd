"""The installed commands (`seg-train`, `seg-evaluate`, `seg-predict`, `seg-report`), Hydra's bash completion
through them, and progress bars: running loss and Dice on a terminal, nothing off one."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from clitools import REPO
from configs import compose_config

BIN = Path(sys.executable).parent
SCRIPTS = {"seg-train": "seg.train:main", "seg-evaluate": "seg.evaluate:main", "seg-predict": "seg.predict:main",
           "seg-report": "seg.report:main"}  # fmt: skip


def run_script(*args: str, env: dict[str, str] | None = None, **kwargs) -> subprocess.CompletedProcess:
    """A command as a user's shell runs it: the virtual environment's bin/ first on PATH, from the repository."""
    full_env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "WANDB_MODE": "offline",
                "OMP_NUM_THREADS": "1", **(env or {})}  # fmt: skip
    return subprocess.run(args, cwd=REPO, env=full_env, capture_output=True, text=True, timeout=300, **kwargs)


def test_console_scripts_are_installed() -> None:
    installed = {e.name: e.value for e in entry_points(group="console_scripts") if e.name in SCRIPTS}
    assert installed == SCRIPTS
    assert all((BIN / name).is_file() for name in SCRIPTS), "run `make install` after editing pyproject.toml"


@pytest.mark.slow
def test_bash_completion_of_seg_train() -> None:
    """What bash does on `seg-train mod<TAB>` once the user ran `eval "$(seg-train -sc install=bash)"`."""
    script = run_script("seg-train", "-sc", "install=bash")
    assert script.returncode == 0, script.stderr[-2000:]
    assert "complete -o nospace -o default -F hydra_bash_completion seg-train" in script.stdout
    complete = 'COMP_WORDS=($COMP_LINE); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); COMP_POINT=${#COMP_LINE}; ' \
               'hydra_bash_completion; printf "%s\\n" "${COMPREPLY[@]}"'  # fmt: skip
    shell = script.stdout + "\n" + f'COMP_LINE="seg-train mod"; {complete}\nCOMP_LINE="seg-train model="; {complete}\n'
    offered = run_script("bash", "-c", shell)
    assert offered.returncode == 0, offered.stderr[-2000:]
    lines = offered.stdout.split()
    assert "model=" in lines, offered.stdout
    assert {"model=unet", "model=resnet34_unet"} <= set(lines), "the options of conf/model/"


@pytest.mark.slow
def test_seg_train_script_trains_and_prints_no_bar_off_a_terminal(cli_paths: list[str], tmp_path: Path) -> None:
    result = run_script("seg-train", "debug=smoke", "data=synthetic", "logger=none", "trainer.epochs=2",
                        f"paths.output_dir={tmp_path}", *cli_paths)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Best val Dice: " in result.stdout
    for bar_text in ("\r", "it/s", "s/it", "epochs:", "epoch 1:"):
        assert bar_text not in result.stderr + result.stdout, f"a progress bar went to a log ({bar_text!r})"


def test_progress_bar_shows_running_loss_and_dice(cli_paths: list[str], capsys: pytest.CaptureFixture) -> None:
    from seg.build import build_training
    from seg.engine.fit import TrainState, fit

    cfg = compose_config("debug=smoke", "data=synthetic", "logger=none", "trainer.progress=true",
                         "trainer.limit_train_batches=null", *cli_paths)  # fmt: skip
    fit(build_training(cfg), TrainState(), [])
    bars = capsys.readouterr().err
    assert "epoch 1:" in bars and "loss=" in bars and "dice=" in bars, bars
    assert "val loss=" in bars and "val dice=" in bars, "the epochs bar shows the last epoch's val metrics"
