"""An Optuna storage that cannot be used (not a database, locked by another process, a folder that cannot be made)
is one line within the configurable timeout (seg.sweep.storage), in-process on real sqlite files."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import optuna
import pytest

from seg.sweep.storage import StorageError, open_storage, storage_errors


def test_an_optuna_storage_that_is_not_a_database_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "notes.db").write_text("these are my notes, not a database\n" * 100)
    with pytest.raises(StorageError, match="notes.db is not an Optuna database") as e:
        open_storage(f"sqlite:///{tmp_path / 'notes.db'}")
    assert "\n" not in str(e.value)
    assert (tmp_path / "notes.db").read_text().startswith("these are my notes"), "the file is left as it was"


def test_a_locked_optuna_storage_is_one_line_after_the_timeout(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'study.db'}"
    optuna.create_study(study_name="s", storage=open_storage(url))
    holder = sqlite3.connect(tmp_path / "study.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process in the middle of a long write
    try:
        locked = r"stayed locked by another process for 0\.2 s \(hydra.sweeper.storage_timeout\)"
        with pytest.raises(StorageError, match=locked), storage_errors(url, 0.2):
            optuna.load_study(study_name="s", storage=open_storage(url, timeout=0.2)).ask()
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_an_optuna_storage_whose_folder_cannot_be_made_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(StorageError, match="its folder cannot be made"):
        open_storage(f"sqlite:///{tmp_path / 'a-file' / 'study.db'}")

