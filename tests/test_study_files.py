"""Reports judge only what they can trust: study.json, summary.json and per-image CSVs are validated as they are
read (seg.study.validate); a bad study.json is one line naming the file and key, a run with bad numbers is a run
that did not complete, never averaged. In-process, on study dirs written here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from seg.report import main as report_main
from seg.rundir import RunDir, Status, Summary
from seg.schema import StudyConfig
from seg.study.plan import Ablation, Job
from seg.study.results import StudyRecord, load_runs, paired_comparisons
from seg.study.validate import StudyFileError

ARMS, SEEDS = ("x", "y"), (0, 1, 2)


def _study(tmp_path: Path) -> Path:
    """A study of arm y vs x over 3 seeds, every run completed with 3 test images."""
    jobs = [Job("ab", "", arm, seed, (f"arm={arm}", f"seed={seed}"), f"{arm}{seed}") for arm in ARMS for seed in SEEDS]
    for job in jobs:
        run = RunDir(tmp_path / "runs" / job.key)
        run.path.mkdir(parents=True)
        dice = 0.5 + (0.1 + 0.01 * job.seed**2) * (job.arm == "y") + 0.01 * job.seed
        run.write_summary(Summary(Status.COMPLETED, str(run.path), 0.6, 1, 1, 2.0, test={"dice": dice}))
        run.test_per_image.write_text("image,dice,tp,fp,fn\n" + "".join(f"i{n},{dice:.6f},5,1,1\n" for n in range(3)))
    StudyRecord("s", {**vars(StudyConfig()), "seeds": list(SEEDS)}, 0.05, [Ablation("ab", "f", list(ARMS), "x")],
                jobs).save(tmp_path)  # fmt: skip
    return tmp_path


def _edit_record(study: Path, edit) -> None:
    data = json.loads((study / "study.json").read_text())
    edit(data)
    (study / "study.json").write_text(json.dumps(data))


BAD_RECORDS = {
    "not JSON": (lambda p: p.write_text("{not json"), "cannot be read as JSON"),
    "NaN": (lambda p: p.write_text(p.read_text().replace('"alpha_look": 0.05', '"alpha_look": NaN')), "NaN is not"),
    "missing jobs": (lambda d: d.pop("jobs"), "jobs is 'missing'"),
    "alpha_look a string": (lambda d: d.update(alpha_look="0.05"), "alpha_look is '0.05'"),
    "unknown metric": (lambda d: d["settings"].update(metric="iou"), "settings.metric is 'iou'; allowed: test_dice"),
    "ablation name ../x": (lambda d: d["ablations"][0].update(name="../x"), "ablations[0].name is '../x'"),
    "run key ../../x": (lambda d: d["jobs"][0].update(key="../../x"), "jobs[0].key is '../../x'"),
    "seed a float": (lambda d: d["jobs"][1].update(seed=1.5), "jobs[1].seed is 1.5"),
    "a list": (lambda p: p.write_text("[]"), "(the whole file) is not a JSON object"),
}  # fmt: skip


@pytest.mark.parametrize("case", BAD_RECORDS)
def test_a_bad_study_json_is_one_line_naming_the_file_and_key(tmp_path: Path, case: str,
                                                              capsys: pytest.CaptureFixture) -> None:  # fmt: skip
    study = _study(tmp_path / "study")
    edit, message = BAD_RECORDS[case]
    if case in ("not JSON", "NaN", "a list"):
        edit(study / "study.json")
    else:
        _edit_record(study, edit)
    with pytest.raises(StudyFileError) as e:
        StudyRecord.load(study)
    assert str(e.value).startswith(str(study / "study.json")) and message in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(SystemExit) as exit_:
        report_main([str(study)])
    assert exit_.value.code == 2 and message in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["study"], "nothing written outside the study dir"
    assert not (study / "report.md").exists()


BAD_RUNS = {
    "test Dice 1e308": (lambda r: _summary(r, test={"dice": 1e308}), "test.dice=1e+308 is not in [0, 1]"),
    "best val Dice NaN": (lambda r: _summary(r, best_val_dice=float("nan")), "best_val_dice=nan is not a finite"),
    "epochs a string": (lambda r: _summary(r, epochs="2"), "epochs='2' is not a finite number"),
    "summary not JSON": (lambda r: r.summary_file.write_text("{"), "is not a summary seg wrote"),
    "per-image Dice 7": (lambda r: r.test_per_image.write_text("image,dice,tp,fp,fn\ni0,7,1,1,1\n"),
                         "line 2 dice=7 is not a Dice in [0, 1]"),
    "per-image inf": (lambda r: r.test_per_image.write_text("image,dice,tp,fp,fn\ni0,inf,1,1,1\n"), "dice=inf"),
    "per-image columns": (lambda r: r.test_per_image.write_text("image,dice\ni0,0.5\n"), "its header is"),
}  # fmt: skip


def _summary(run: RunDir, **changes: object) -> None:
    data = json.loads(run.summary_file.read_text())
    data.update(changes)
    run.summary_file.write_text(json.dumps(data))


@pytest.mark.parametrize("case", BAD_RUNS)
def test_a_run_with_bad_numbers_did_not_complete_and_is_never_averaged(tmp_path: Path, case: str) -> None:
    study = _study(tmp_path)
    edit, message = BAD_RUNS[case]
    edit(RunDir(study / "runs" / "y1"))
    record = StudyRecord.load(study)
    runs = load_runs(study, record.jobs)
    assert not runs["y1"].completed and message in runs["y1"].summary.error
    [paired] = paired_comparisons(record.ablations, record.jobs, runs, "test_dice")
    assert paired.seeds == [0, 2], "the bad run's seed is left out of the comparison"
    assert list((paired.comparison.arm - paired.comparison.baseline).round(6)) == [0.1, 0.14]
    if case != "test Dice 1e308":
        return  # one report is enough: the loading layer is what differs between the cases
    report_main([str(study)])
    text = (study / "report.md").read_text()
    assert "## Runs that did not complete" in text and "not judged: " in text and message in text
    assert "inf" not in text.replace(message, "") and "nan" not in text.lower().replace(message.lower(), "")
