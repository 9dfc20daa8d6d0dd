"""What a study may trust: study.json, each run's summary.json and per-image CSV checked as they are read.

Hand-edited or damaged files are common (a study dir copied around, a merge, a disk that filled up). A report judges
only numbers it can trust: every value has its type, is finite and lies in its range (a Dice in [0, 1]), names are
known (`settings.metric`) or one plain file name (an ablation becomes `<ablation>.png`, a run key `runs/<key>/`).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
from pathlib import Path
from typing import Any

from seg.engine.evaluation import PER_IMAGE_COLUMNS
from seg.errors import SegError
from seg.files import is_plain_name
from seg.rundir import Summary
from seg.schema import SOURCES, StudyConfig

REQUIRED_SETTINGS = ("metric", "margin", "alpha", "seeds")


class StudyFileError(SegError):
    """A study file that is not what seg writes: the message names the file and the key."""


def read_json(path: Path) -> Any:
    """The JSON of `path`; NaN and Infinity (not JSON) are refused."""
    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not a JSON number")

    try:
        return json.loads(path.read_text(), parse_constant=refuse)
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise StudyFileError(f"{path} cannot be read as JSON ({e}); restore it, or rerun the study command") from e


def _fail(path: Path, key: str, problem: str) -> None:
    raise StudyFileError(f"{path}: {key} {problem}; restore the file, or rerun the study command to write it again")


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def checked_record(data: Any, path: Path, fields: list[str]) -> dict[str, Any]:
    """`data` (study.json's JSON) if it is a record the runner writes, else StudyFileError naming the key."""
    if not isinstance(data, dict):
        _fail(path, "(the whole file)", "is not a JSON object")
    for key in data:
        if key not in fields:
            _fail(path, key, f"is not a key of study.json (known: {', '.join(fields)})")
    for key, ok, what in (("name", isinstance(data.get("name"), str), "a text"),
                          ("settings", isinstance(data.get("settings"), dict), "an object"),
                          ("alpha_look", _number(data.get("alpha_look")) and 0 < data["alpha_look"] < 1,
                           "a number in (0, 1)"),
                          ("ablations", isinstance(data.get("ablations"), list), "a list"),
                          ("jobs", isinstance(data.get("jobs"), list), "a list"),
                          ("descriptions", isinstance(data.get("descriptions", {}), dict), "an object"),
                          ("invocations", isinstance(data.get("invocations", []), list), "a list")):  # fmt: skip
        if not ok:
            _fail(path, key, f"is {data.get(key, 'missing')!r}, not {what}")
    _check_settings(data["settings"], path)
    names = [_check_ablation(a, f"ablations[{i}]", path) for i, a in enumerate(data["ablations"])]
    for i, job in enumerate(data["jobs"]):
        _check_job(job, f"jobs[{i}]", path, names)
    return data


def _check_settings(settings: dict[str, Any], path: Path) -> None:
    for key in REQUIRED_SETTINGS:
        if key not in settings:
            _fail(path, f"settings.{key}", "is missing")
    for f in dataclasses.fields(StudyConfig):
        if f.name not in settings or settings[f.name] is None:
            continue
        value, check = settings[f.name], f.metadata.get("check")
        if isinstance(value, float) and not math.isfinite(value):
            _fail(path, f"settings.{f.name}", f"is {value!r}, not a finite number")
        try:
            ok = check is None or bool(check[0](value))
        except TypeError:
            ok = False
        if not ok:
            _fail(path, f"settings.{f.name}", f"is {value!r}; allowed: {check[1]}")


def _check_ablation(ab: Any, key: str, path: Path) -> str:
    if not isinstance(ab, dict):
        _fail(path, key, "is not an object")
    if not is_plain_name(ab.get("name")):
        _fail(path, f"{key}.name", f"is {ab.get('name')!r}, not one plain file name (it names <ablation>.png)")
    for part, ok in (("factor", isinstance(ab.get("factor"), str)), ("values", _strings(ab.get("values"))),
                     ("baseline", ab.get("baseline") in (ab.get("values") or [])),
                     ("strata", isinstance(ab.get("strata", {}), dict)
                      and all(_strings(v) for v in ab.get("strata", {}).values())),
                     ("select", _strings(ab.get("select", []))),
                     ("finding", isinstance(ab.get("finding"), str | None))):  # fmt: skip
        if not ok:
            _fail(path, f"{key}.{part}", f"is {ab.get(part, 'missing')!r}")
    return ab["name"]


def _check_job(job: Any, key: str, path: Path, ablations: list[str]) -> None:
    if not isinstance(job, dict):
        _fail(path, key, "is not an object")
    for part, ok in (("ablation", job.get("ablation") in ablations), ("stratum", isinstance(job.get("stratum"), str)),
                     ("arm", isinstance(job.get("arm"), str)), ("seed", _integer(job.get("seed"))),
                     ("overrides", _strings(job.get("overrides"))), ("key", is_plain_name(job.get("key"))),
                     ("source", job.get("source") in (None, *SOURCES)),
                     ("fold", job.get("fold") is None or _integer(job.get("fold")))):  # fmt: skip
        if not ok:
            _fail(path, f"{key}.{part}", f"is {job.get(part, 'missing')!r}")
    extra = set(job) - {"ablation", "stratum", "arm", "seed", "overrides", "key", "source", "fold"}
    if extra:
        _fail(path, f"{key}.{sorted(extra)[0]}", "is not a key of a job")


def summary_problem(summary: Summary, path: Path) -> str | None:
    """Why `summary` (read from `path`) cannot be trusted, naming the key; None when it can."""
    values = {"best_val_dice": summary.best_val_dice, "best_epoch": summary.best_epoch, "epochs": summary.epochs,
              "seconds": summary.seconds}  # fmt: skip
    for key, value in values.items():
        if not _number(value) or value < 0 or (key.endswith("epoch") or key == "epochs") and not _integer(value):
            return f"{path}: {key}={value!r} is not a finite number >= 0"
    if summary.best_val_dice > 1:
        return f"{path}: best_val_dice={summary.best_val_dice!r} is not a Dice in [0, 1]"
    tests = {"test": summary.test, **{f"{part}.{k}": v for part in ("test_of", "test_tta")
                                      for k, v in (getattr(summary, part, None) or {}).items()}}  # fmt: skip
    for name, test in tests.items():
        if test is None:
            continue
        if not isinstance(test, dict):
            return f"{path}: {name}={test!r} is not an object"
        for key, value in test.items():
            if not _number(value):
                return f"{path}: {name}.{key}={value!r} is not a finite number"
            if ("dice" in key or "iou" in key) and not 0 <= value <= 1:
                return f"{path}: {name}.{key}={value!r} is not in [0, 1]"
    return None


def per_image_problem(path: Path) -> str | None:
    """Why the per-image CSV `path` cannot be trusted, naming the row and column; None when it can (or is absent)."""
    if not path.is_file():
        return None
    try:
        with path.open(newline="") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header != PER_IMAGE_COLUMNS:
                return f"{path}: its header is {header}, not {PER_IMAGE_COLUMNS}"
            for n, row in enumerate(reader, start=2):
                problem = _row_problem(row)
                if problem:
                    return f"{path}: line {n} {problem}"
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        return f"{path} cannot be read ({e})"
    return None


def _row_problem(row: list[str]) -> str | None:
    if len(row) != len(PER_IMAGE_COLUMNS) or not row[0]:
        return f"has {len(row)} fields, not {len(PER_IMAGE_COLUMNS)} ({', '.join(PER_IMAGE_COLUMNS)})"
    try:
        dice, counts = float(row[1]), [int(v) for v in row[2:]]
    except ValueError:
        return f"holds a value that is not a number: {row}"
    if not (math.isfinite(dice) and 0 <= dice <= 1):
        return f"dice={row[1]} is not a Dice in [0, 1]"
    if min(counts) < 0:
        return f"a pixel count is negative: {row}"
    return None
