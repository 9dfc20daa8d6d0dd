"""trainer.test_tta: the test pass after fit also scores each checkpoint with TTA (the run's key unchanged), and the
study report gives per arm test Dice without and with TTA and the judged difference."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from configs import compose_config
from torch import nn
from torch.utils.data import Dataset

from seg.config import result_items
from seg.engine.evaluation import read_per_image
from seg.engine.runtime import Precision
from seg.engine.tracking import WandbTracker
from seg.rundir import Checkpoint, RunDir, Status, Summary, save_checkpoint
from seg.schema import StudyConfig
from seg.study.plan import Ablation, Job
from seg.study.report import write_report
from seg.study.results import StudyRecord, load_runs
from seg.study.tta import tta_arms


class _Images(Dataset):
    """Four random 8 px images whose masks are their left halves: a model that is not symmetric scores differently
    on the flipped views."""

    names = [f"i{n}" for n in range(4)]

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, item: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        mask = torch.zeros(1, 8, 8)  # the loader asks (index, seed): seg.engine.runtime.SeededSampler
        mask[..., :4] = 1
        return torch.randn(3, 8, 8, generator=torch.Generator().manual_seed(item[0])), mask


def test_the_test_pass_also_scores_every_checkpoint_with_tta_and_keeps_the_key(tmp_path: Path) -> None:
    from seg.training import _test_checkpoints

    assert "trainer.test_tta" not in result_items(compose_config("data=synthetic", "trainer.test_tta=flips"))
    torch.manual_seed(0)
    model, run = nn.Conv2d(3, 1, 3, padding=1), RunDir(tmp_path)
    for name in ("best", "last"):
        save_checkpoint(Checkpoint(model.state_dict(), "", 1, {}, {}, {}, {}, {}), run.checkpoint(name))
    cfg = SimpleNamespace(threshold=0.5, trainer=SimpleNamespace(test_tta="hflip", channels_last=False),
                          data=SimpleNamespace(batch_size=2, num_workers=0))  # fmt: skip
    t = SimpleNamespace(cfg=cfg, model=model, datasets={"test": _Images()}, loss_fn=nn.BCEWithLogitsLoss(),
                        device=torch.device("cpu"), precision=Precision("cpu", None))  # fmt: skip
    summary = Summary(Status.RUNNING, str(run.path))
    outside = _plant_links(tmp_path, ["test_per_image.csv"])
    _test_checkpoints(t, run, summary, WandbTracker.off())
    assert outside.read_text() == "keep" and not run.test_per_image.is_symlink()
    assert summary.tta == "hflip" and set(summary.test_tta) == {"best", "last"} and set(summary.test_of) == {"last"}
    plain, tta = read_per_image(run.test_per_image), read_per_image(run.test_per_image_of("best", tta=True))
    assert run.test_per_image_of("last", tta=True).is_file() and list(plain) == list(tta) == _Images.names
    assert summary.test_dice == pytest.approx(np.mean([r[0] for r in plain.values()]), abs=1e-6)
    assert summary.test_dice_of("best", tta=True) == pytest.approx(np.mean([r[0] for r in tta.values()]), abs=1e-6)
    assert summary.test_dice_of("best", tta=True) != pytest.approx(summary.test_dice), "the views differ"


def _plant_links(folder: Path, names: list[str]) -> Path:
    """Symlinks at `names` under `folder` to one file outside it: outputs rendered again must replace, not follow."""
    outside = folder.parent / f"{folder.name}-outside.txt"
    outside.write_text("keep")
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).symlink_to(outside)
    return outside


def _write_run(study_dir: Path, job: Job, dice: float, gain: float | None) -> None:
    """A completed run: test Dice `dice` on two images, and with TTA `dice + gain` (None: tested without TTA)."""
    run = RunDir(study_dir / "runs" / job.key)
    run.path.mkdir(parents=True)
    run.test_per_image.write_text(f"image,dice,tp,fp,fn\ni0,{dice - 0.01},1,0,0\ni1,{dice + 0.01},1,0,0\n")
    summary = Summary(Status.COMPLETED, str(run.path), 0.5, 1, 1, 2.0, test={"dice": dice})
    if gain is not None:
        run.test_per_image_of("best", tta=True).write_text(
            f"image,dice,tp,fp,fn\ni0,{dice + gain - 0.01},1,0,0\ni1,{dice + gain + 0.01},1,0,0\n")
        summary.tta, summary.test_tta = "flips", {"best": {"dice": dice + gain}}
    run.write_summary(summary)


def test_the_report_gives_each_arm_with_and_without_tta_and_the_difference(tmp_path: Path) -> None:
    jobs = [Job("a", "", arm, seed, (), f"{arm}{seed}") for arm in ("x", "y") for seed in (0, 1, 2, 3)]
    for job in jobs:
        gain = None if job.key == "x3" else 0.02 + 0.001 * job.seed if job.arm == "y" else 0.0005 * (job.seed - 1)
        _write_run(tmp_path, job, 0.7 + 0.01 * job.seed, gain)
    StudyRecord("s", {**vars(StudyConfig()), "seeds": [0, 1, 2, 3]}, 0.05, [Ablation("a", "f", ["x", "y"], "x")],
                jobs).save(tmp_path)  # fmt: skip
    planted = ["report.md", "a.png", "a_seeds.png", "tables/1_test_time_augmentation_trainer_test_tta_.csv"]
    outside = _plant_links(tmp_path, planted)
    text = write_report(tmp_path).read_text()
    assert outside.read_text() == "keep" and not any((tmp_path / p).is_symlink() for p in planted), "links replaced"
    section = text.split("## Test-time augmentation (`trainer.test_tta=flips`)\n\n", 1)[1].split("\n## ", 1)[0]
    assert section.startswith("7 of 8 completed runs also tested best.pt with TTA flips (4 views")
    assert "Holm within the TTA comparisons (2 comparisons), alpha 0.05). TTA is evaluation only" in section
    assert "; left out: 1 run tested without it (a study command does not test completed runs again)." in section
    rows = {r.split(" | ")[0].lstrip("| "): r.split(" | ") for r in section.splitlines() if r.startswith("| a: ")}
    assert rows["a: x"][1:5] == ["3", "0.7100 ± 0.0100", "0.7100 ± 0.0105", "+0.0000"]
    assert rows["a: y"][1:5] == ["4", "0.7150 ± 0.0129", "0.7365 ± 0.0142", "+0.0215"]
    assert rows["a: y"][9] == "difference" and rows["a: x"][9] == "no difference"
    assert "a: y vs x: no difference" in text, "the arms' comparison still judges the plain test"


def test_runs_left_out_of_the_tta_section_are_counted_by_reason(tmp_path: Path) -> None:
    """Tested without TTA, with another TTA, or with a TTA result that is gone: each counted as what it is."""
    jobs = [Job("a", "", arm, seed, (), f"{arm}{seed}") for arm in ("x", "y") for seed in (0, 1, 2, 3)]
    for job in jobs:
        _write_run(tmp_path, job, 0.7 + 0.01 * job.seed, None if job.key == "x3" else 0.01)
    other = RunDir(tmp_path / "runs" / "y3")
    other.write_summary(replace(other.read_summary(), tta="hflip"))
    gone = RunDir(tmp_path / "runs" / "y2")
    gone.write_summary(replace(gone.read_summary(), test_tta={}))
    StudyRecord("s", {**vars(StudyConfig()), "seeds": [0, 1, 2, 3]}, 0.05, [Ablation("a", "f", ["x", "y"], "x")],
                jobs).save(tmp_path)  # fmt: skip
    section = write_report(tmp_path).read_text().split("## Test-time augmentation", 1)[1].split("\n## ", 1)[0]
    assert "5 of 8 completed runs also tested best.pt with TTA flips" in section
    assert ("; left out: 1 run tested without it (a study command does not test completed runs again); 1 run "
            "tested with another TTA; 1 run whose TTA result is missing or unreadable." in section), section


def test_with_every_fold_each_seed_averages_its_folds_tested_with_tta(tmp_path: Path) -> None:
    jobs = [Job("a", "", arm, seed, (), f"{arm}{seed}f{fold}", None, fold)
            for arm in ("x", "y") for seed in (0, 1, 2) for fold in (0, 1)]  # fmt: skip
    for job in jobs:
        _write_run(tmp_path, job, 0.7, None if job.key == "x0f1" else 0.01 * job.fold)
    runs = load_runs(tmp_path, jobs)
    record = StudyRecord("s", vars(StudyConfig()), 0.05, [Ablation("a", "f", ["x", "y"], "x")], jobs)
    x, y = tta_arms(record, runs, {k: r.with_tta() for k, r in runs.items() if k != "x0f1"})
    assert (x.names, y.names, len(x.plain), len(y.tta)) == (["a: x"], ["a: y"], 3, 3), "one unit per seed"
    assert [u.value("test_dice") - p.value("test_dice") for u, p in zip(x.tta, x.plain)] == pytest.approx(
        [0.0, 0.005, 0.005]), "seed 0 of x: only fold 0 was tested with TTA"
