"""The run-directory contract: layout, `summary.json` (with its status), and the checkpoint format.

train writes runs through this module; evaluate, the sweep summary, the Optuna search, the study runner, the
report and the bench read them through it. A run directory holds:

    config.yaml             the run's config, resolved (seg.schema.TrainConfig as plain YAML)
    metrics.csv, curves.png one row per finished epoch, and its plot
    summary.json            Summary: status, best val Dice and epoch, epochs, seconds, test metrics, error
    test_per_image.csv      per test image of best.pt: Dice and TP/FP/FN pixel counts (_last.csv, _ema.csv: of those;
                            test_per_image_tta.csv, _last_tta.csv...: with trainer.test_tta, the same with TTA)
    checkpoints/best.pt     the best val Dice so far; last.pt: the last finished epoch (only last.pt resumes);
                            ema.pt: the weights' moving average (with trainer.ema_decay)
    train.log, .hydra/      the log and Hydra's record of the command
    eval/<split>_<time>/    seg.evaluate results of this run's checkpoints
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import io
import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf

from seg.errors import CheckpointError, ConfigError, exit_on_user_error, folder_or_error
from seg.files import atomic_write


class Status(str, Enum):
    """A run's state in summary.json."""

    RUNNING = "running"
    COMPLETED = "completed"
    PRUNED = "pruned"  # stopped early by an Optuna pruner: a finished, valid result
    FAILED = "failed"
    INTERRUPTED = "interrupted"  # Ctrl-C or SIGTERM: last.pt holds the last finished epoch; resume continues
    KILLED = "killed"  # found `running` with no live holder (SIGKILL, out of memory, a lost node); resume continues
    MISSING = "missing"  # no readable summary.json (never started, or died first): read from a folder, never written

    def __str__(self) -> str:
        return self.value

    @property
    def finished(self) -> bool:
        return self in (Status.COMPLETED, Status.PRUNED)


@dataclass
class Summary:
    """summary.json."""

    status: Status
    run_dir: str
    best_val_dice: float = 0.0  # NaN, inf and "no epoch" are 0.0: the value a sweep maximises
    best_epoch: int = 0
    epochs: int = 0  # finished epochs
    seconds: float = 0.0  # training seconds over all finished epochs (resumes included)
    error: str | None = None
    test: dict[str, float] | None = None  # test metrics of best.pt
    warnings: list[str] = field(default_factory=list)
    test_of: dict[str, dict[str, float]] = field(default_factory=dict)  # of the other CHECKPOINTS: last, ema
    tta: str | None = None  # trainer.test_tta of the test pass (hflip, flips), None without
    test_tta: dict[str, dict[str, float]] = field(default_factory=dict)  # {checkpoint: test metrics with `tta`}

    @property
    def test_dice(self) -> float | None:
        """Mean per-image test Dice of best.pt, or None when the run was not tested."""
        return self.test_dice_of("best")

    def test_dice_of(self, checkpoint: str, tta: bool = False) -> float | None:
        """Mean per-image test Dice of one of CHECKPOINTS (with tta: with the run's test-time augmentation), or None
        when it was not tested so."""
        if tta:
            test = self.test_tta.get(checkpoint)
        else:
            test = self.test if checkpoint == "best" else self.test_of.get(checkpoint)
        return None if test is None else test.get("dice")

    def to_json(self) -> str:
        return json.dumps({**dataclasses.asdict(self), "status": self.status.value}, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Summary:
        data = json.loads(text)
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{**{k: v for k, v in data.items() if k in known}, "status": Status(data["status"])})


METRICS_COLUMNS = ["epoch", "train/loss", "train/dice", "val/loss", "val/dice", "lr", "seconds"]
"""The columns of metrics.csv, one row per finished epoch."""


@dataclass(frozen=True)
class RunDir:
    """The files of one run directory."""

    path: Path

    config = property(lambda self: self.path / "config.yaml")
    metrics = property(lambda self: self.path / "metrics.csv")
    curves = property(lambda self: self.path / "curves.png")
    summary_file = property(lambda self: self.path / "summary.json")
    test_per_image = property(lambda self: self.path / "test_per_image.csv")
    checkpoints = property(lambda self: self.path / "checkpoints")
    best = property(lambda self: self.path / "checkpoints" / "best.pt")
    last = property(lambda self: self.path / "checkpoints" / "last.pt")
    ema = property(lambda self: self.path / "checkpoints" / "ema.pt")
    log = property(lambda self: self.path / "train.log")

    hydra_overrides = property(lambda self: self.path / ".hydra" / "overrides.yaml")  # a sweep job's overrides

    def read_metrics(self) -> list[dict[str, float]]:
        """The rows of metrics.csv (METRICS_COLUMNS) as floats, epoch as int; [] when the file is absent or a symlink
        (planted at its name: never read through, and replaced by the run's next write)."""
        if self.metrics.is_symlink() or not self.metrics.is_file():
            return []
        with self.metrics.open(newline="") as f:
            rows = [{k: float(v) for k, v in r.items()} for r in csv.DictReader(f)]
        for r in rows:
            r["epoch"] = int(r["epoch"])
        return rows

    def read_overrides(self) -> list[str]:
        """The command-line overrides Hydra recorded for this job (.hydra/overrides.yaml)."""
        return [str(o) for o in OmegaConf.load(self.hydra_overrides)]

    def checkpoint(self, name: str) -> Path:
        """checkpoints/<name>.pt of one of CHECKPOINTS."""
        return self.checkpoints / f"{name}.pt"

    def test_per_image_of(self, checkpoint: str, tta: bool = False) -> Path:
        """The per-image test CSV of one of CHECKPOINTS (best.pt's is test_per_image.csv); with tta, of its test with
        the run's test-time augmentation (test_per_image_tta.csv, test_per_image_last_tta.csv, ...)."""
        stem = "test_per_image" + ("" if checkpoint == "best" else f"_{checkpoint}") + ("_tta" if tta else "")
        return self.path / f"{stem}.csv"

    def read_summary(self) -> Summary | None:
        """The run's summary, or None when it has none (never started) or it is unreadable."""
        try:
            return Summary.from_json(self.summary_file.read_text())
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def write_summary(self, summary: Summary) -> None:
        atomic_write(self.summary_file, summary.to_json().encode())

    @classmethod
    def of_checkpoint(cls, ckpt: Path) -> RunDir | None:
        """The run a checkpoint file belongs to (`<run>/checkpoints/<file>.pt`), or None."""
        ckpt = Path(ckpt).resolve()
        run = cls(ckpt.parent.parent)
        return run if ckpt.parent.name == "checkpoints" and run.config.is_file() else None


# --- checkpoints -----------------------------------------------------------------------------------------------
CHECKPOINT_FORMAT = "seg-checkpoint"
CHECKPOINT_VERSION = 2


@dataclass
class Checkpoint:
    """What a checkpoint holds: tensors and plain values only, so it loads with `weights_only=True`.

    `config` is the run's config.yaml text. The model is rebuilt from its `model` node (a registered model name
    and arguments checked against the schema), never from anything in the file that names code.
    """

    model: dict[str, torch.Tensor]
    config: str
    epoch: int
    state: dict[str, Any]  # the loop's TrainState
    optimizer: dict[str, Any]
    schedule: dict[str, Any]
    scaler: dict[str, Any]
    rng: dict[str, Any]
    ema: dict[str, Any] | None = None  # last.pt with trainer.ema_decay: seg.engine.ema.WeightAverage's state


_TYPES = {"model": dict, "config": str, "epoch": int, "state": dict,
          "optimizer": dict, "schedule": dict, "scaler": dict, "rng": dict}  # fmt: skip
_OPTIONAL = {"ema": dict}


def save_checkpoint(ckpt: Checkpoint, path: Path) -> None:
    """Write `ckpt` to `path` atomically: a crash (even SIGKILL) mid-write leaves the previous file intact."""
    buffer = io.BytesIO()
    torch.save({"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, **vars(ckpt)}, buffer)
    atomic_write(path, buffer.getbuffer())


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> Checkpoint:
    """Load a seg checkpoint; a foreign file, a pickle that would run code, another version or missing keys
    give a CheckpointError that says which."""
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder; give a checkpoint file, e.g. {path}/checkpoints/best.pt")
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        raw = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 -- whatever the unpickler raises on a file that is not a checkpoint
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(
            f"refusing to load {path}: it is not a seg checkpoint that loads with weights_only=True ({first_line})"
        ) from e
    if not isinstance(raw, dict) or raw.get("format") != CHECKPOINT_FORMAT:
        old = isinstance(raw, dict) and raw.get("format") == "seg-checkpoint-v1"
        raise CheckpointError(
            f"{path} was written by an older seg (format v1); retrain, or evaluate it with that version"
            if old
            else f"{path} is not a seg checkpoint (no '{CHECKPOINT_FORMAT}' marker)"
        )
    if raw.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint version {raw.get('version')!r}; this seg reads version {CHECKPOINT_VERSION}"
        )
    missing = [k for k in _TYPES if k not in raw]
    wrong = [k for k, t in _TYPES.items() if k in raw and not isinstance(raw[k], t)]
    wrong += [k for k, t in _OPTIONAL.items() if raw.get(k) is not None and not isinstance(raw[k], t)]
    if missing or wrong:
        raise CheckpointError(f"{path} is a damaged seg checkpoint: missing {missing}, wrong type {wrong}")
    return Checkpoint(**{k: raw[k] for k in _TYPES}, **{k: raw.get(k) for k in _OPTIONAL})


def resume_checkpoint_path(target: str | Path) -> tuple[RunDir, Path]:
    """`resume=` takes a run directory or its checkpoints/last.pt; best.pt and foreign files are refused."""
    target = Path(target).expanduser()
    if target.is_file():
        if target.name != RunDir(target.parent.parent).last.name:
            raise CheckpointError(
                f"resume={target}: only last.pt resumes (it holds the optimizer, schedule and RNG state of the last "
                f"finished epoch); use resume={target.parent.parent}, or seg.evaluate ckpt={target} to score it"
            )
        target = target.parent.parent
    run = RunDir(target)
    if not run.path.is_dir():
        raise CheckpointError(f"resume={target}: no such run directory")
    if not run.last.is_file():
        raise CheckpointError(f"resume={target}: no checkpoints/last.pt there (no epoch finished), start a new run")
    return run, run.last


# --- where things are written ------------------------------------------------------------------------------------
# The output layout under paths.output_dir, named here only (conf/ reaches it through the resolvers below):
# runs/<name>/<time>/ a run, eval/ seg.evaluate of a checkpoint from elsewhere, resumes/<time>/ a resume's command log,
# multirun/<name>/<time>/ a sweep or search, studies/<name>/ a study, optuna/<study>.db a search's Optuna storage.
RUNS, EVAL, RESUMES, MULTIRUN, STUDIES, OPTUNA = "runs", "eval", "resumes", "multirun", "studies", "optuna"
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._=,+-]*$")


def safe_name(name: str) -> str:
    """`name` if it is one plain folder name (no path separator, no `..`); else ConfigError."""
    if not SAFE_NAME.match(str(name)) or ".." in str(name):
        raise ConfigError(f"invalid config: name={name!r}; allowed: one folder name of letters, digits and ._=,+-")
    return str(name)


def output_dir_for(output_dir: str) -> str:
    """`paths.output_dir` if it is (or can become) a folder; a ConfigError when it or a folder above it is a file,
    raised before Hydra creates anything there."""
    folder_or_error(output_dir, "paths.output_dir")
    return str(output_dir)


def inside(path: Path, folder: Path) -> bool:
    return Path(path).resolve().is_relative_to(Path(folder).resolve())


def run_dir_for(name: str, resume: str | None, output_dir: str, stamp: str) -> str:
    """Hydra's run dir of `seg.train`: a new run's folder; a resume's command log goes under resumes/ (the run it
    continues is changed only once the resume is accepted)."""
    output_dir = output_dir_for(output_dir)
    if resume in (None, "", "None", "null"):
        return f"{output_dir}/{RUNS}/{safe_name(name)}/{stamp}"
    return f"{output_dir}/{RESUMES}/{stamp}"


def eval_dir_for(ckpt: str | list[str] | None, output_dir: str, tag: str) -> str:
    """Where seg.evaluate writes: `<run>/eval/<tag>` for a checkpoint of a run under `output_dir`, else
    `<output_dir>/eval/<checkpoint name>_<tag>` (`ensemble_<tag>` for several). Never outside `output_dir`."""
    output_dir = output_dir_for(output_dir)
    if not isinstance(ckpt, str | None):  # ckpt=[a.pt,...]: one checkpoint, or an ensemble
        if len(ckpt) != 1:
            return f"{output_dir}/{EVAL}/ensemble_{tag}"
        ckpt = str(ckpt[0])
    if ckpt not in (None, "", "None", "null", "???"):
        run = RunDir.of_checkpoint(Path(ckpt))
        if run is not None and inside(run.path, Path(output_dir)):
            return str(run.path / EVAL / tag)
        return f"{output_dir}/{EVAL}/{Path(ckpt).stem}_{tag}"
    return f"{output_dir}/{EVAL}/{tag}"


def study_dir_for(output_dir: str, name: str) -> str:
    """A study's folder (hydra.sweep.dir of `-m study=...` and of an experiment's own ablation)."""
    return f"{output_dir_for(output_dir)}/{STUDIES}/{safe_name(name)}"


def sweep_dir_for(output_dir: str, name: str, stamp: str) -> str:
    """hydra.sweep.dir of a multirun (a grid sweep, an Optuna search's call): `<output_dir>/multirun/<name>/<time>`."""
    return f"{output_dir_for(output_dir)}/{MULTIRUN}/{safe_name(name)}/{stamp}"


def optuna_storage_for(output_dir: str, study_name: str) -> str:
    """An Optuna search's default storage (hparams_search): one sqlite file per study, which every call continues
    (`<output_dir>/optuna/<study name>.db`, the name checked as a sweep's is)."""
    return f"sqlite:///{output_dir_for(output_dir)}/{OPTUNA}/{safe_name(study_name)}.db"


LAYOUT = (RUNS, EVAL, RESUMES)  # the folders the resolvers above add under paths.output_dir (and remove)


def remove_if_unused(folder: Path) -> None:
    """Remove a folder Hydra made for a command that was refused (it holds only .hydra/ and a log), and the
    folders made for it when they are left empty: up to `<output_dir>/<runs|eval|resumes>` and the output dir
    itself, never above it (a folder given as hydra.run.dir elsewhere: only that folder)."""
    if not folder.is_dir() or not all(p.name == ".hydra" or p.suffix == ".log" for p in folder.iterdir()):
        return
    made = list(folder.resolve().parents)[:3]  # runs/<name>/<time>: <name>, runs, the output dir
    layer = next((i for i, p in enumerate(made[:2]) if p.name in LAYOUT), None)
    shutil.rmtree(folder, ignore_errors=True)
    for parent in made[: layer + 2] if layer is not None else []:
        if not parent.is_dir() or any(parent.iterdir()):
            break
        parent.rmdir()


def register_resolvers() -> None:
    """The resolvers behind hydra.run.dir / hydra.sweep.dir in conf/ (idempotent).

    Hydra resolves these before seg's code runs, so a ConfigError there (name=../x, an output dir that is a file)
    is reported by the resolver itself: `error: ...` and exit 2, instead of Hydra's traceback.
    """
    resolvers = {"seg_run_dir": run_dir_for, "seg_eval_dir": eval_dir_for, "seg_study_dir": study_dir_for,
                 "seg_sweep_dir": sweep_dir_for, "seg_optuna_storage": optuna_storage_for}  # fmt: skip
    for name, fn in resolvers.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, _one_line(fn))


def _one_line(fn: Callable[..., str]) -> Callable[..., str]:
    @functools.wraps(fn)
    def resolver(*args: Any) -> str:
        with exit_on_user_error():
            return fn(*args)

    return resolver
