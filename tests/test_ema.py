"""trainer.ema_decay: a moving average of the weights, saved as ema.pt, tested like best.pt and last.pt, resumed."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from configs import compose_config
from torch import nn

from seg.config import result_items
from seg.constants import CHECKPOINTS
from seg.engine.ema import WeightAverage
from seg.errors import ConfigError
from seg.resume import resume_run
from seg.rundir import RunDir, Status, Summary, load_checkpoint
from seg.schema import StudyConfig
from seg.study.plan import Ablation, Job
from seg.study.results import StudyRecord, load_runs, paired_comparisons
from seg.training import train

SMALL = ["debug=smoke", "data=synthetic", "logger=none", "scheduler=none", "trainer.ema_decay=0.9"]


def test_the_average_warms_up_then_decays_and_copies_integer_buffers() -> None:
    model = nn.Sequential(nn.Linear(1, 1, bias=False), nn.BatchNorm1d(1))
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    ema = WeightAverage(model, decay=0.5)
    ema.follow(optimizer)
    start = model[0].weight.item()
    model(torch.ones(2, 1)).sum().backward()  # BatchNorm counts a batch; the weight's gradient is 0 (normalised)
    with torch.no_grad():
        model[0].weight.fill_(start + 1.0)
    optimizer.zero_grad()
    optimizer.step()  # one update, decay min(0.5, 2/11) = 2/11
    assert ema.updates == 1
    assert ema.weights["0.weight"].item() == pytest.approx(start + 9 / 11, abs=1e-6)  # float32 weights
    assert ema.weights["1.num_batches_tracked"].item() == 1
    for _ in range(20):
        optimizer.step()
    assert ema.current_decay() == 0.5 and ema.weights["0.weight"].item() == pytest.approx(start + 1.0, abs=1e-3)


def test_a_run_saves_and_tests_ema_pt_and_resumes_the_same_average(tmp_path: Path, cli_paths: list[str]) -> None:
    def run_dir(name: str) -> RunDir:
        (tmp_path / name).mkdir()
        return RunDir(tmp_path / name)

    whole = run_dir("whole")
    summary = train(compose_config(*SMALL, *cli_paths, "trainer.epochs=2"), whole)
    assert summary.status == Status.COMPLETED and set(summary.test_of) == {"last", "ema"}
    for name in CHECKPOINTS:
        assert summary.test_dice_of(name) is not None and whole.test_per_image_of(name).is_file()
    last, ema = load_checkpoint(whole.last), load_checkpoint(whole.ema)
    assert ema.epoch == last.epoch == 2 and ema.optimizer == {}
    assert last.ema["updates"] == 2 * 2  # two epochs of limit_train_batches=2
    assert all(torch.equal(ema.model[k], v) for k, v in last.ema["weights"].items())
    assert not torch.equal(ema.model["stem.0.weight"], last.model["stem.0.weight"])

    halves = run_dir("halves")
    train(compose_config(*SMALL, *cli_paths, "trainer.epochs=1", "trainer.test_after_fit=false"), halves)
    accepted = resume_run(compose_config(f"resume={halves.path}", "trainer.epochs=2", *cli_paths),
                          [f"resume={halves.path}", "trainer.epochs=2"])  # fmt: skip
    train(accepted.config, accepted.run, resume=accepted)
    resumed = load_checkpoint(halves.ema)
    assert all(torch.equal(resumed.model[k], v) for k, v in ema.model.items())


def test_runs_without_ema_keep_their_keys() -> None:
    off, on = compose_config("data=synthetic"), compose_config("data=synthetic", "trainer.ema_decay=0.99")
    assert "trainer.ema_decay" not in result_items(off)
    assert result_items(on)["trainer.ema_decay"] == 0.99


def test_a_study_judges_the_checkpoint_it_is_told(tmp_path: Path) -> None:
    jobs = [Job("a", "", arm, seed, (), f"{arm}{seed}") for arm in ("x", "y") for seed in (0, 1, 2)]
    for job in jobs:
        run = RunDir(tmp_path / "runs" / job.key)
        run.path.mkdir(parents=True)
        dice = {name: 0.5 + 0.1 * (job.arm == "y") * (name == "ema") + 0.01 * job.seed for name in CHECKPOINTS}
        for name, value in dice.items():
            run.test_per_image_of(name).write_text(f"image,dice,tp,fp,fn\ni0,{value},1,0,0\n")
        run.write_summary(Summary(Status.COMPLETED, str(run.path), test={"dice": dice["best"]},
                                  test_of={"last": {"dice": dice["last"]}, "ema": {"dice": dice["ema"]}}))  # fmt: skip
    ablation = Ablation("a", "f", ["x", "y"], "x")
    for checkpoint, difference in (("best", 0.0), ("last", 0.0), ("ema", 0.1)):
        record = StudyRecord("s", {**vars(StudyConfig()), "checkpoint": checkpoint}, 0.05, [ablation], jobs)
        runs = load_runs(tmp_path, jobs, record.checkpoint)
        (paired,) = paired_comparisons([ablation], jobs, runs, "test_dice")
        c = paired.comparison
        assert c.arm - c.baseline == pytest.approx([difference] * 3), checkpoint
        assert c.arm_images[:, 0] == pytest.approx(c.arm), checkpoint


def test_a_study_of_ema_needs_runs_with_ema() -> None:
    with pytest.raises(ConfigError, match="study.checkpoint=ema needs trainer.ema_decay"):
        compose_config("study=ablations", "study.checkpoint=ema")
    assert compose_config("study=ablations", "study.checkpoint=ema", "trainer.ema_decay=0.99").study.checkpoint == "ema"
