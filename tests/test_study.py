"""Studies (`-m study=...`, the seg_study sweeper): expansion, dedup and run keys in-process; one real CLI study
killed with SIGKILL mid-study and rerun; the report from the runs on disk."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import hydra
import pytest
from clitools import cli_env, run_cli, start_cli
from configs import CONF, compose_config
from omegaconf import DictConfig

from seg.errors import ConfigError
from seg.report import main as report_main
from seg.rundir import RunDir, Status, Summary
from seg.schema import StudyConfig
from seg.study.plan import Ablation, Job, comparison_names, expand, load_ablations, run_key
from seg.study.report import write_report
from seg.study.results import StudyRecord
from seg.study.runner import Launches, next_action, prepare, refuse_sweeps, run_study


def compose(overrides: list[str]):
    return compose_config(*overrides)


def test_the_three_ablations_share_a_third_of_their_jobs() -> None:
    study = StudyConfig(experiments=["ablation_augmentation", "ablation_scheduler", "ablation_architecture"])
    own = compose_config("study=ablations")
    ablations = load_ablations(study, own, compose, [])
    assert [(a.name, a.factor, a.baseline) for a in ablations] == [
        ("ablation_augmentation", "augmentation", "none"), ("ablation_scheduler", "scheduler", "cosine"),
        ("ablation_architecture", "model", "unet")]  # fmt: skip
    names = comparison_names(ablations)
    assert len(names) == 4 + 2 + 1 and "ablation_augmentation: strong vs none (model=unet)" in names
    jobs = expand(ablations, dict.fromkeys(names, [0]), compose, [])
    assert len(jobs) == 12 and len({j.key for j in jobs}) == 8, "per seed: 12 jobs, 8 unique runs (36 -> 24)"
    key = {(j.ablation, j.stratum, j.arm): j.key for j in jobs}
    assert key["ablation_augmentation", "model=unet", "basic"] == key["ablation_scheduler", "model=unet", "cosine"]
    assert (
        key["ablation_scheduler", "model=resnet34_unet", "onecycle"]
        == key["ablation_architecture", "", "resnet34_unet"]
    )
    assert len(set(key.values())) == 8


def test_the_key_is_the_effective_config() -> None:
    base = ["experiment=ablation_scheduler", "seed=0"]
    key = run_key(compose(base))
    assert run_key(compose([*base, "paths.output_dir=/elsewhere", "logger=none", "name=other"])) == key
    assert run_key(compose(["experiment=ablation_augmentation", "augmentation=basic", "seed=0"])) == key
    for changed in ("optimizer.lr=2e-3", "seed=1", "trainer.epochs=3", "data.image_size=96"):
        assert run_key(compose([*base, changed])) != key, changed


def test_a_study_needs_an_ablation_block_and_one_value_per_key() -> None:
    with pytest.raises(ConfigError, match="has no `ablation` block"):
        load_ablations(StudyConfig(experiments=["demo"]), compose_config(), compose, [])
    with pytest.raises(ConfigError, match="sets its own grid"):
        refuse_sweeps(["seed=0,1"])
    refuse_sweeps(["seed=0", "data.root=/a/b"])


def _run(tmp_path: Path, key: str, status: Status | None, last: bool = False) -> RunDir:
    run = RunDir(tmp_path / "runs" / key)
    run.checkpoints.mkdir(parents=True)
    if status is not None:
        run.write_summary(Summary(status, str(run.path), seconds=7.0))
    if last:
        run.last.write_bytes(b"checkpoint")
    return run


def test_each_run_is_skipped_resumed_or_rerun_from_what_its_folder_holds(tmp_path: Path) -> None:
    runs = {
        "done": _run(tmp_path, "done", Status.COMPLETED),
        "killed": _run(tmp_path, "killed", Status.RUNNING, True),
        "stopped": _run(tmp_path, "stopped", Status.INTERRUPTED, True),
        "failed": _run(tmp_path, "failed", Status.FAILED, True),
        "early": _run(tmp_path, "early", Status.RUNNING),
    }
    assert {k: next_action(r) for k, r in runs.items()} == {
        "done": "skip", "killed": "resume", "stopped": "resume", "failed": "rerun", "early": "rerun"}  # fmt: skip
    assert next_action(RunDir(tmp_path / "runs" / "new")) == "new"
    jobs = [Job("a", "", arm, 0, (f"x={arm}",), arm) for arm in [*runs, "new", "done"]]
    launches = Launches()
    batch = prepare(tmp_path, jobs, launches)
    tally = launches.tally
    assert [b[0] for b in batch] == ["x=killed", "x=stopped", "x=failed", "x=early", "x=new"]
    assert batch[0][-1] == f"resume={runs['killed'].path}" and not any("resume=" in o for o in batch[2])
    assert "hydra.sweep.subdir=runs/failed" in batch[2] and "hydra.sweep.subdir=resumes/killed.1" in batch[0]
    assert (tmp_path / "attempts" / "failed.1" / "checkpoints" / "last.pt").is_file(), "the failed attempt is kept"
    assert not runs["failed"].path.exists() and runs["done"].summary_file.is_file()
    assert (tally["skip"], tally["resume"], tally["rerun"], tally["new"], tally["seconds_skipped"]) == (1, 2, 2, 1, 7.0)


def test_a_study_whose_every_run_failed_says_so_in_one_line(tmp_path: Path) -> None:
    jobs = [Job("a", "", arm, seed, (), f"{arm}{seed}") for arm in ("x", "y") for seed in (0, 1)]
    for job in jobs:
        _run(tmp_path, job.key, Status.FAILED)
    StudyRecord("s", {**vars(StudyConfig()), "seeds": [0, 1]}, 0.05, [Ablation("a", "f", ["x", "y"], "x")],
                jobs).save(tmp_path)  # fmt: skip
    text = write_report(tmp_path).read_text()
    assert "**Every run of this study failed (4 runs): there is nothing to compare.**" in text
    assert text.count(": failed") == 4 and "## Findings" not in text


def _compose_with_hydra(overrides: list[str]) -> DictConfig:
    with hydra.initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return hydra.compose("train", overrides=overrides, return_hydra_config=True)


def test_max_seeds_adds_seeds_only_until_the_comparison_is_resolved(tmp_path: Path) -> None:
    """A sequential study without training: the launcher writes a test Dice 0.03 higher for ResNet34-UNet."""
    launched: list[list[str]] = []

    def launch(batch: list[list[str]]) -> None:
        for overrides in batch:
            given = dict(o.split("=", 1) for o in overrides)
            run = RunDir(tmp_path / given["hydra.sweep.subdir"])
            dice = 0.6 + 0.03 * (given["model"] == "resnet34_unet") + 0.001 * int(given["seed"]) % 3
            run.write_summary(Summary(Status.COMPLETED, str(run.path), 0.6, 1, 1, 2.0, test={"dice": dice}))
        launched.extend(batch)

    args = ["study=ablations", "study.experiments=[ablation_architecture]", "study.max_seeds=8", "study.looks=2",
            "study.test=sign_flip"]
    config = _compose_with_hydra([*args, f"hydra.sweep.dir={tmp_path}"])
    record = run_study(config, args, _compose_with_hydra, launch)
    assert 0.025 < record.alpha_look < 0.05, "O'Brien-Fleming: the last of 2 looks judges at nearly alpha"
    assert len(launched) == 2 * 8, "3 seeds per arm, then 5 more at the second look"
    assert sorted({j.seed for j in record.jobs}) == list(range(8))
    assert (
        "ablation_architecture: resnet34_unet vs unet: difference: the arms do not behave alike, the arm scores "
        "higher on most seeds or on average (8 of 8 seeds ahead; mean difference +0.0300"
        in (tmp_path / "report.md").read_text()
    )
    launched.clear()
    run_study(config, args, _compose_with_hydra, launch)
    assert launched == [] and StudyRecord.load(tmp_path).invocations[-1]["skip"] == 16, "a rerun launches nothing"


STUDY_CONF = {
    "experiment/tiny_aug.yaml": "# @package _global_\nname: tiny_aug\nablation:\n  factor: augmentation\n"
                                "  values: [none, basic]\n  baseline: none\n  finding: basic beats none\n",
    "experiment/tiny_sched.yaml": "# @package _global_\nname: tiny_sched\nablation:\n  factor: scheduler\n"
                                  "  values: [cosine, none]\n  baseline: cosine\n",
    "study/tiny.yaml": "# @package _global_\ndefaults:\n  - override /hydra/sweeper: seg_study\nstudy:\n"
                       "  name: tiny\n  experiments: [tiny_aug, tiny_sched]\n  seeds: [0, 1]\n",
}  # fmt: skip


def _kill_when_a_run_is_between_epochs(args: list[str], runs: Path) -> None:
    """Start the study and SIGKILL it once a run has finished and another has last.pt but is still running."""
    proc = start_cli("seg.train", *args, env=cli_env({"OMP_NUM_THREADS": "1"}))
    deadline = time.monotonic() + 180
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            states = [(RunDir(p).read_summary(), RunDir(p).last.is_file()) for p in runs.glob("*")]
            done = sum(s is not None and s.status == Status.COMPLETED for s, _ in states)
            if done and any(s is not None and s.status == Status.RUNNING and last for s, last in states):
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.02)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the study ended before it could be killed mid-run"


@pytest.mark.slow
def test_killed_study_reruns_no_completed_run_and_resumes_the_killed_one(tmp_path: Path, cli_paths: list[str]) -> None:
    for name, text in STUDY_CONF.items():
        (tmp_path / "conf" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "conf" / name).write_text(text)
    study = tmp_path / "study"
    args = [
        "-m",
        "study=tiny",
        f"hydra.searchpath=[file://{tmp_path / 'conf'}]",
        "debug=smoke",
        "data=synthetic",
        "logger=none",
        "trainer.epochs=2",
        f"hydra.sweep.dir={study}",
        f"paths.output_dir={tmp_path}",
        *cli_paths,
    ]
    _kill_when_a_run_is_between_epochs(args, study / "runs")

    completed = {p.parent.name: p.stat().st_mtime_ns for p in (study / "runs").glob("*/summary.json")
                 if RunDir(p.parent).read_summary().status == Status.COMPLETED}  # fmt: skip
    resumable = [p.name for p in (study / "runs").glob("*") if next_action(RunDir(p)) == "resume"]
    assert completed and resumable

    result = run_cli("seg.train", *args, env={"OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:] + result.stdout[-3000:]
    record = json.loads((study / "study.json").read_text())
    last = record["invocations"][-1]
    assert (last["jobs"], last["runs"]) == (8, 6), "tiny_aug none/basic and tiny_sched cosine/none share basic+cosine"
    assert last["skip"] == len(completed) and last["resume"] == len(resumable)
    assert last["skip"] + last["resume"] + last.get("rerun", 0) + last.get("new", 0) == 6
    for key, mtime in completed.items():
        assert (study / "runs" / key / "summary.json").stat().st_mtime_ns == mtime, f"completed run {key} ran again"
    for key in resumable:
        resumed = RunDir(study / "runs" / key)
        assert resumed.read_summary().status == Status.COMPLETED and resumed.read_summary().epochs == 2
        assert len(resumed.metrics.read_text().splitlines()) == 1 + 2
    assert all(RunDir(p).read_summary().status == Status.COMPLETED for p in (study / "runs").glob("*"))

    text = (study / "report.md").read_text()
    assert "tiny_aug: basic vs none: unresolved" in text and "tiny_sched: none vs cosine: unresolved" in text
    assert "the t-test is not used under 3 seeds" in text and "2 of 2 comparisons are unresolved" in text
    assert (
        "| saved by deduplication | 2 |" in text
        and f"| last command: completed runs skipped | {len(completed)} |" in text
    )
    for png in ("comparisons.png", "tiny_aug.png", "tiny_sched.png"):
        assert (study / png).stat().st_size > 10_000
    (study / "report.md").unlink()
    report_main([str(study)])
    assert (study / "report.md").read_text().split("\n", 3)[3] == text.split("\n", 3)[3], "re-rendered the same"
