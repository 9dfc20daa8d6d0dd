"""Every file a command creates is created, never followed, and nothing outside its output folder is touched:
predict's outputs and manifest, its inputs that are symlinks, a second predict on one output. In-process."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import numpy as np
import pytest
from configs import compose_config, tiny_checkpoint
from PIL import Image

from seg.claims import ClaimBusy, held
from seg.errors import SegError
from seg.files import OutputExists, open_new, write_new
from seg.predict import MANIFEST, predict_folder
from seg.rundir import save_checkpoint


def tree(folder: Path) -> dict[str, str]:
    """{relative path: sha256} of every file under `folder` (links listed by their own name)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() if p.exists() else "dangling"
            for p in sorted(folder.rglob("*")) if p.is_file() or p.is_symlink()}  # fmt: skip


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ckpt") / "best.pt"
    save_checkpoint(tiny_checkpoint(), path)
    return path


def _predict(ckpt: Path, inputs: Path, output: Path):
    return predict_folder(compose_config(f"ckpt={ckpt}", f"input={inputs}", f"output={output}", "device=cpu",
                                         config_name="predict"))  # fmt: skip


def _image(path: Path, value: int = 128) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((20, 24, 3), value, dtype=np.uint8)).save(path)


def test_open_new_refuses_an_existing_file_and_never_follows_a_dangling_symlink(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere" / "made.txt"
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "link").symlink_to(target)
    with pytest.raises(OutputExists, match="a symlink"):
        write_new(tmp_path / "link", b"x")
    assert not target.exists()
    write_new(tmp_path / "new", b"x")
    with pytest.raises(OutputExists, match="a file"):
        open_new(tmp_path / "new")
    assert (tmp_path / "new").read_bytes() == b"x"


def test_predict_creates_no_manifest_through_a_dangling_symlink(ckpt: Path, tmp_path: Path) -> None:
    _image(tmp_path / "in" / "a.png")
    victim = tmp_path / "victim"
    victim.mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / MANIFEST).symlink_to(victim / "planted.csv")
    with pytest.raises(SegError, match="already holds predictions"):
        _predict(ckpt, tmp_path / "in", tmp_path / "out")
    assert tree(victim) == {} and tree(tmp_path / "out") == {MANIFEST: "dangling"}


def test_predict_skips_input_symlinks_leading_outside_with_a_reason(ckpt: Path, tmp_path: Path) -> None:
    _image(tmp_path / "in" / "a.png")
    _image(tmp_path / "in" / "sub" / "b.png", 50)
    _image(tmp_path / "secret" / "s.png", 10)
    (tmp_path / "in" / "leak.png").symlink_to(tmp_path / "secret" / "s.png")
    (tmp_path / "in" / "inside.png").symlink_to(tmp_path / "in" / "a.png")  # inside the input: read
    before = {"in": tree(tmp_path / "in"), "secret": tree(tmp_path / "secret")}
    done, skipped = _predict(ckpt, tmp_path / "in", tmp_path / "out")
    assert done == 3 and [(p.name, "outside input=" in r) for p, r in skipped] == [("leak.png", True)]
    with (tmp_path / "out" / MANIFEST).open() as f:
        rows = {Path(r["input"]).name: r for r in csv.DictReader(f)}
    assert "outside input=" in rows["leak.png"]["skipped"] and rows["inside.png"]["mask"] == "inside_mask.png"
    assert {"in": tree(tmp_path / "in"), "secret": tree(tmp_path / "secret")} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "out", "secret"], "nothing made outside output"


def test_a_second_predict_on_one_output_stops_naming_the_first(ckpt: Path, tmp_path: Path) -> None:
    _image(tmp_path / "in" / "a.png")
    with held(tmp_path / "out", "seg.predict"), pytest.raises(ClaimBusy, match="is being written by seg.predict"):
        _predict(ckpt, tmp_path / "in", tmp_path / "out")
    assert tree(tmp_path / "out") == {}
