"""Progress over the runs of a launch: a line per finished run and, on a terminal, a bar over the runs.

    [3/16] unet-basic-cosine-s1 test dice 0.87 (1:05) - ETA 0:12

The driver watches the run folders of the batch it launched (their summary.json), so it works with every Hydra
launcher (basic in this process, joblib's workers, SLURM or Ray jobs on a shared file system). The ETA is the wall
time so far per finished run times the runs left: it follows the launcher's parallelism as measured.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import yaml
from tqdm.std import tqdm as Bar

from seg.rundir import RunDir, Status, Summary
from seg.study.results import run_path

log = logging.getLogger("seg.study")

POLL_S = 1.0
"""Seconds between two looks at the runs' summaries."""


def clock(seconds: float, hours: bool = False) -> str:
    """`m:ss`, or `h:mm` with `hours`."""
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}" if hours else f"{minutes}:{secs:02d}"


def tally_text(tally: Mapping[str, float]) -> str:
    """A launch's counts in words: `3 new, 1 resume, 4 skip (12 s of training not spent again)`."""
    words = [f"{int(n)} {what}" for what, n in tally.items() if n and what not in ("jobs", "runs", "seconds_skipped")]
    skipped = tally.get("seconds_skipped", 0)
    return ", ".join(words or ["nothing"]) + (f" ({skipped:.0f} s of training not spent again)" if skipped else "")


def launched_runs(study_dir: Path, batch: list[list[str]]) -> list[RunDir]:
    """The run folder of each job of a study's launch batch, read from its overrides."""
    runs = []
    for overrides in batch:
        subdir = Path(next(o.split("=", 1)[1] for o in overrides if o.startswith("hydra.sweep.subdir=")))
        runs.append(RunDir(run_path(study_dir, subdir.name.rsplit(".", 1)[0] if subdir.parent.name == "resumes"
                                    else subdir.name)))  # fmt: skip
    return runs


def run_name(run: RunDir) -> str:
    """The W&B name a run was tracked under (its config.yaml), else its folder's name."""
    try:
        return str(yaml.safe_load(run.config.read_text())["logger"]["run_name"] or run.path.name)
    except (OSError, TypeError, KeyError, yaml.YAMLError):
        return run.path.name


class RunProgress:
    """Reports each run that `runs()` lists once its summary says it ended (completed, pruned, failed, ...)."""

    def __init__(self, runs: Callable[[], list[RunDir]], total: int, bar: bool):
        self.runs, self.total, self.started, self.done = runs, total, time.time(), set()
        self.running_since: dict[Path, float] = {}  # when each run was first seen training
        self.bar = Bar(total=total, unit="run", dynamic_ncols=True, leave=False) if bar else None

    def poll(self) -> None:
        """A line (and a bar step) for every run that ended since the last poll."""
        for run in self.runs():
            if run.path in self.done:
                continue
            summary = run.read_summary()
            if summary is None or summary.status == Status.RUNNING:
                if summary is not None:
                    self.running_since.setdefault(run.path, time.time())
                continue
            self.done.add(run.path)
            since = self.running_since.get(run.path)
            self.report(run_name(run), summary, summary.seconds if since is None else time.time() - since)

    def report(self, name: str, summary: Summary, seconds: float) -> None:
        """The line of a run that ended after `seconds` (its wall time as seen from here)."""
        k, n = len(self.done), max(self.total, len(self.done))
        elapsed = time.time() - self.started
        dice = summary.test_dice if summary.status == Status.COMPLETED else None
        result = f"test dice {dice:.2f}" if dice is not None else summary.status.value
        line = f"[{k}/{n}] {name} {result} ({clock(seconds)})"
        if k < n:
            line += f" - ETA {clock(elapsed / k * (n - k), hours=True)}"
        if self.bar is not None:
            self.bar.update(1)
            self.bar.write(line)
        else:
            log.info(line)

    def close(self) -> None:
        self.poll()
        if self.bar is not None:
            self.bar.close()


@contextmanager
def watching(runs: Callable[[], list[RunDir]], total: int, bar: bool | None = None) -> Iterator[RunProgress]:
    """Watch the runs `runs()` lists (`total` in all) from a background thread while the body launches them; a bar
    only on a terminal."""
    progress = RunProgress(runs, total, sys.stderr.isatty() if bar is None else bar)
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(POLL_S):
            progress.poll()

    thread = threading.Thread(target=loop, name="seg-progress", daemon=True)
    thread.start()
    try:
        yield progress
    finally:
        stop.set()
        thread.join()
        progress.close()


def with_progress(study_dir: Path, batch: list[list[str]], launch: Callable[[], None]) -> None:
    """Run `launch` (the launcher on `batch`) with a progress line per finished run of the study."""
    if not batch:
        launch()
        return
    runs = launched_runs(study_dir, batch)
    with watching(lambda: runs, len(runs)):
        launch()
