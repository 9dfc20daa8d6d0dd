"""`data=folder` through the real command line: a k-fold multirun ends with the cross-validation summary and
evaluate takes its checkpoint with the fold it trained on; a tiny study varies the fold with the seed;
`seg.data.inspect` prints the fingerprint and stops in one line on a dataset that cannot train. (seg.predict reads
any folder of images whatever the training layout: tests/test_train_cli.py covers it.) A study's fold modes
(study.fold_mode=per_seed|every) are planned and paired in-process."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from clitools import run_cli
from configs import compose_config, compose_raw
from omegaconf import OmegaConf
from PIL import Image

from seg.config import typed_config
from seg.data.inspect import inspect
from seg.data.inspect import main as inspect_main
from seg.data.synthetic import write_folder_dataset
from seg.errors import ConfigError
from seg.rundir import RunDir, Status, Summary
from seg.schema import StudyConfig
from seg.study.plan import Ablation, Job, comparison_names, expand
from seg.study.planner import plan
from seg.study.report import judged_pairs, write_report
from seg.study.results import StudyRecord, load_runs, paired_comparisons
from seg.study.rules import rule_from_settings

SMOKE = ["debug=smoke", "logger=none", "data=folder", "data.image_size=32", "data.limit=null"]
ONE_THREAD = {"OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def folder_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_folder_dataset(tmp_path_factory.mktemp("folder") / "pets", n=16, seed=0)


@pytest.mark.slow
def test_fold_multirun_prints_the_cv_summary_and_its_checkpoint_evaluates(
    folder_root: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    args = [*SMOKE, f"data.root={folder_root}", "data.splits.test=test.txt", f"paths.root_dir={tmp_path}",
            f"paths.output_dir={out}"]  # fmt: skip
    result = run_cli("seg.train", "-m", *args, "data.folds=3", "data.fold=0,1,2", env=ONE_THREAD)
    assert result.returncode == 0, result.stderr[-3000:] + result.stdout[-3000:]
    assert "# Cross-validation over data.fold" in result.stdout
    [sweep] = (out / "multirun" / "default").iterdir()
    text = (sweep / "cv_summary.md").read_text()
    assert text.count("| completed |") == 3 and "- test Dice: 0." in text and "(n=3)" in text
    vals = [RunDir(sweep / str(i)).read_summary() for i in range(3)]
    assert all(s.status == Status.COMPLETED for s in vals)
    mean = np.mean([s.best_val_dice for s in vals])
    assert f"- val Dice (best epoch): {mean:.4f} ± " in text

    ckpt = sweep / "1" / "checkpoints" / "best.pt"
    evaluated = run_cli("seg.evaluate", f"ckpt={ckpt}", "split=val", f"paths.output_dir={out}", env=ONE_THREAD)
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    [results] = (sweep / "1" / "eval").glob("val_*/results.json")
    assert json.loads(results.read_text())["images"] == 4, "fold 1 of 3 over 12 train+val images"


def test_study_folds_give_seed_s_fold_s_mod_k(folder_root: Path) -> None:
    args = ["data=folder", f"data.root={folder_root}"]
    ablation = Ablation("tiny", "scheduler", ["cosine", "none"], "cosine")
    seeds = dict.fromkeys(comparison_names([ablation]), [0, 1, 2])
    composed = {}

    def compose(overrides: list[str]):
        composed[tuple(overrides)] = compose_config(*overrides)
        return composed[tuple(overrides)]

    jobs = expand([ablation], seeds, compose, args, folds=2)
    for job in jobs:
        cfg = composed[job.overrides]
        assert (cfg.data.folds, cfg.data.fold, cfg.seed) == (2, job.seed % 2, job.seed)
    keyed = {(j.arm, j.seed): j.key for j in jobs}
    plain = expand([ablation], seeds, compose, args)
    assert all(keyed[j.arm, j.seed] != j.key for j in plain), "the fold is part of the run key"


def test_every_fold_mode_runs_each_seed_on_each_fold_with_its_own_key(folder_root: Path) -> None:
    args = ["data=folder", f"data.root={folder_root}"]
    ablation = Ablation("tiny", "threshold", ["0.5", "0.6"], "0.5")
    seeds = dict.fromkeys(comparison_names([ablation]), [0, 1])
    base = compose_raw(*args)

    def compose(overrides: list[str]):  # the composed config with the jobs' keys set: 8 Hydra composes take ~2 s
        cfg = copy.deepcopy(base)
        for key, value in (o.split("=", 1) for o in overrides if o not in args):
            OmegaConf.update(cfg, key, yaml.safe_load(value))
        return typed_config(cfg)

    jobs = expand([ablation], seeds, compose, args, folds=2, fold_mode="every")
    assert sorted((j.arm, j.seed, j.fold) for j in jobs) == [(a, s, f) for a in ("0.5", "0.6") for s in (0, 1)
                                                              for f in (0, 1)]  # fmt: skip
    assert all(f"data.fold={j.fold}" in j.overrides and "data.folds=2" in j.overrides for j in jobs)
    assert len({j.key for j in jobs}) == 8, "the fold is part of the run key"


def test_a_study_it_cannot_plan_is_one_line_before_any_run() -> None:
    for bad, message in [(["study.fold_mode=every"], "study.fold_mode=every needs study.folds=K"),
                         (["study.fold_mode=every", "study.folds=2", "study.vary=[init]"], "cannot be combined")]:
        with pytest.raises(ConfigError, match=message):
            compose_config("study=ablations", *bad)
    with pytest.raises(ConfigError, match="study.fold_mode"):
        compose_config("study=ablations", "study.fold_mode=all")
    with pytest.raises(ConfigError, match=r"ablation.values=\['cosine'\]; allowed: two or more distinct values"):
        compose_config("experiment=ablation_scheduler", "ablation.values=[cosine]")  # was a StopIteration traceback
    with pytest.raises(ConfigError, match="cannot set ablation.values: ablation is null"):  # was Hydra's AssertionError
        compose_config("ablation.values=[cosine,none]")  # no experiment: -m gives the same line (seg.hydra_answers)


def test_every_fold_mode_pairs_by_seed_and_fold_then_averages_each_seed(tmp_path: Path) -> None:
    """Arm y beats x by 0.1 on fold 0 and 0.3 on fold 1; x failed seed 1's fold 1, so seed 1 pairs fold 0 alone."""
    jobs = [Job("ab", "", arm, seed, (f"seed={seed}", f"data.fold={fold}"), f"{arm}{seed}f{fold}", None, fold)
            for arm in ("x", "y") for seed in (0, 1, 2) for fold in (0, 1)]  # fmt: skip
    for job in jobs:
        run = RunDir(tmp_path / "runs" / job.key)
        run.path.mkdir(parents=True)
        dice = 0.5 + 0.01 * job.seed + 0.05 * job.fold + (job.arm == "y") * (0.1 + 0.2 * job.fold)
        failed = (job.arm, job.seed, job.fold) == ("x", 1, 1)
        run.write_summary(Summary(Status.FAILED if failed else Status.COMPLETED, str(run.path), 0.6, 1, 1, 2.0,
                                  test={"dice": dice}))  # fmt: skip
        run.test_per_image.write_text("image,dice,tp,fp,fn\n" + "".join(f"i{n},{dice:.6f},5,1,1\n" for n in range(2)))
    ablation = Ablation("ab", "f", ["x", "y"], "x")
    settings = {**vars(StudyConfig()), "seeds": [0, 1, 2], "folds": 2, "fold_mode": "every"}
    StudyRecord("s", settings, 0.05, [ablation], jobs).save(tmp_path)
    record = StudyRecord.load(tmp_path)
    assert [j.fold for j in record.jobs] == [j.fold for j in jobs]
    runs = load_runs(tmp_path, record.jobs)
    [paired] = paired_comparisons([ablation], record.jobs, runs, "test_dice")
    c = paired.comparison
    assert paired.seeds == [0, 1, 2] and len(c.arm) == 3, "the seed, not the (seed, fold), is the unit"
    assert c.arm - c.baseline == pytest.approx([0.2, 0.1, 0.2], abs=1e-6)
    assert c.baseline == pytest.approx([0.525, 0.51, 0.545], abs=1e-6)
    assert c.arm_images.shape == (3, 2) and c.arm_images[:, 0] == pytest.approx(c.arm, abs=1e-6)
    [row] = plan(judged_pairs(record, runs, rule_from_settings(settings))[1], record, runs)
    assert row.runs_per_seed == 2 and row.seconds == {("ab", "", "x"): 4.0, ("ab", "", "y"): 4.0}, "a seed: 2 runs"
    text = write_report(tmp_path).read_text()
    assert "study.fold_mode=every" in text and "seed 1 fold 1" in text and "runs completed (seed x fold)" in text


@pytest.mark.slow
def test_tiny_study_over_folds_through_the_cli(folder_root: Path, tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    (conf / "experiment").mkdir(parents=True)
    (conf / "study").mkdir()
    (conf / "experiment" / "tiny_sched.yaml").write_text(
        "# @package _global_\nname: tiny_sched\nablation:\n  factor: scheduler\n  values: [cosine, none]\n"
        "  baseline: cosine\n")  # fmt: skip
    (conf / "study" / "tiny.yaml").write_text(
        "# @package _global_\ndefaults:\n  - override /hydra/sweeper: seg_study\nstudy:\n  name: tiny\n"
        "  experiments: [tiny_sched]\n  seeds: [0, 1]\n  folds: 2\n")  # fmt: skip
    study = tmp_path / "study"
    result = run_cli("seg.train", "-m", "study=tiny", f"hydra.searchpath=[file://{conf}]", *SMOKE,
                     f"data.root={folder_root}", f"hydra.sweep.dir={study}", f"paths.root_dir={tmp_path}",
                     f"paths.output_dir={tmp_path}", env=ONE_THREAD)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:] + result.stdout[-3000:]
    folds = sorted((RunDir(p).read_summary().status.value, p.joinpath("config.yaml").read_text().count("fold: 1"))
                   for p in (study / "runs").iterdir())  # fmt: skip
    assert folds == [("completed", 0), ("completed", 0), ("completed", 1), ("completed", 1)]
    assert (study / "report.md").exists()


@pytest.mark.slow
def test_inspect_prints_the_fingerprint_and_stops_without_foreground(
    folder_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    inspect_main(["data=folder", f"data.root={folder_root}", f"paths.root_dir={tmp_path}"])
    out = capsys.readouterr().out
    assert "images: train 11, val 2, test 3" in out and "bad files: 0" in out
    [written] = (tmp_path / "data" / "cache").glob("fingerprint-pets-*.json")
    fp = json.loads(written.read_text())
    assert fp["images"] == {"train": 11, "val": 2, "test": 3} and set(fp["mask_value_pixels"]) == {"0", "255"}
    assert 0 < fp["foreground_fraction"]["min"] <= fp["foreground_fraction"]["max"] < 1
    outside = tmp_path / "outside.json"  # a link planted where the fingerprint goes is replaced, not written through
    outside.write_text("keep")
    written.unlink()
    written.symlink_to(outside)
    assert inspect(["data=folder", f"data.root={folder_root}", f"paths.root_dir={tmp_path}"])[1] == written
    assert not written.is_symlink() and json.loads(written.read_text()) == fp and outside.read_text() == "keep"

    empty = tmp_path / "empty"
    (empty / "images").mkdir(parents=True)
    (empty / "masks").mkdir()
    for i in range(4):
        Image.fromarray(np.full((8, 8, 3), 9 * i, dtype=np.uint8)).save(empty / "images" / f"e{i}.png")
        Image.fromarray(np.zeros((8, 8), dtype=np.uint8)).save(empty / "masks" / f"e{i}.png")
    args = ["data=folder", f"data.root={empty}", f"paths.root_dir={tmp_path}", "data.val_split=0.5"]
    with pytest.raises(SystemExit) as stop:
        inspect_main(args)
    assert stop.value.code == 1 and capsys.readouterr().err == (
        f"error: no mask of {empty} holds any foreground; check data.mask_values "
        "(folder: 0: background, 1: foreground, 255: foreground)\n")
    stopped = run_cli("seg.train", *args, "logger=none", "data.image_size=32")
    assert stopped.returncode == 2 and "Traceback" not in stopped.stderr, stopped.stderr[-2000:]
    assert stopped.stderr.strip().splitlines()[-1].startswith(f"error: no training mask of {empty} (1 images) "
                                                              "holds any foreground"), stopped.stderr[-2000:]

