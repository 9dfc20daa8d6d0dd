"""The folder layout (images/ + masks/), its quirks, mask value maps, split lists and k-fold splits; the real sample
converted to the folder layout loads exactly as the Oxford layout does."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from configs import compose_config
from PIL import Image

from seg.data import BadSamplesError, SplitListError, build_datasets
from seg.data.folder import FolderLayout
from seg.data.layout import Listing
from seg.data.oxford import export_folder, subsample
from seg.data.oxford import split_names as oxford_split_names
from seg.data.splits import fold_indices, split_names
from seg.data.synthetic import main as synthetic_main
from seg.data.synthetic import write_folder_dataset
from seg.errors import ConfigError

S = 32
NONE = {"name": "none"}


def _build(root: Path, **kwargs) -> dict:
    return build_datasets(root=root, image_size=S, augmentation=NONE, layout="folder",
                          uncertain=kwargs.pop("uncertain", "ignore"), **kwargs)  # fmt: skip


@pytest.fixture(scope="module")
def real_folder(real_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    splits = {s: subsample(names, 12) for s, names in oxford_split_names(real_root, None, 0).items()}
    return export_folder(real_root, tmp_path_factory.mktemp("real") / "folder", splits)


@pytest.fixture(scope="module")
def synthetic_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_folder_dataset(tmp_path_factory.mktemp("data") / "synthetic-folder", n=20, seed=0)


def _with_quirks(source: Path, out: Path) -> tuple[Path, dict[str, str]]:
    """A copy of `source` with every quirk; returns (root, {bad file or stem: what is wrong})."""
    shutil.copytree(source, out)
    images, masks = out / "images", out / "masks"
    names = sorted(p.stem for p in images.glob("*.jpg"))
    Image.open(images / f"{names[0]}.jpg").save(images / f"{names[0]}.gif")  # a GIF ...
    (images / f"{names[0]}.gif").rename(images / f"{names[0]}.jpg")  # ... named .jpg: fine
    Image.open(images / f"{names[1]}.jpg").save(images / "tmp.png")
    (images / "tmp.png").rename(images / f"{names[1]}.jpg")  # a PNG named .jpg: fine
    (images / "sub").mkdir()  # nested: sub/<name> is its own sample
    (masks / "sub").mkdir()
    shutil.copy(images / f"{names[2]}.jpg", images / "sub" / f"{names[2]}.jpeg")
    shutil.copy(masks / f"{names[2]}.png", masks / "sub" / f"{names[2]}.png")
    (images / ".DS_Store").write_bytes(b"\0junk")  # hidden: not looked at
    (images / "notes.txt").write_text("not an image")
    Image.open(masks / f"{names[3]}.png").resize((17, 13), Image.NEAREST).save(masks / f"{names[3]}.png")
    (masks / f"{names[4]}.png").unlink()
    (images / f"{names[5]}.jpg").unlink()
    (images / f"{names[6]}.jpg").write_bytes(b"this is text, not a JPEG")
    mask = np.asarray(Image.open(masks / f"{names[7]}.png")).copy()
    mask[:2, :2] = 7
    Image.fromarray(mask).save(masks / f"{names[7]}.png")
    shutil.copy(images / f"{names[8]}.jpg", images / f"{names[8]}.png")  # two images with one stem
    bad = {"images/notes.txt": "not an image", names[3]: "size", names[4]: "mask missing",
           names[5]: "image missing", names[6]: "cannot read", names[7]: "outside", names[8]: "2 files"}
    return out, bad


def test_synthetic_folder_dataset_loads_binary_masks(synthetic_folder: Path, tmp_path: Path) -> None:
    ds = _build(synthetic_folder, cache_dir=tmp_path / "cache")
    assert sum(len(d) for d in ds.values()) == 20 and len(ds["test"]) == 4  # test_split 0.2 of 20, seeded
    image, mask = ds["train"][0]
    assert image.shape == (3, S, S) and set(torch.unique(mask).tolist()) <= {0.0, 1.0}
    again = _build(synthetic_folder, cache_dir=tmp_path / "cache")
    assert all(ds[s].names == again[s].names for s in ds)


@pytest.mark.parametrize("cached", [True, False])
def test_quirks_are_used_or_named_in_one_warning(synthetic_folder: Path, tmp_path: Path, cached: bool) -> None:
    root, bad = _with_quirks(synthetic_folder, tmp_path / "quirks")
    cache = tmp_path / "cache" if cached else None
    with pytest.warns(UserWarning) as record:
        ds = _build(root, cache_dir=cache)
    assert len(record) == 1
    message = str(record[0].message)
    decoded_only = {"cannot read", "outside"}  # found by decoding: the cache build, or (uncached) the loader
    for what, why in bad.items():
        if cached or why not in decoded_only:
            assert what in message and why in message, (what, message)
    used = {n for d in ds.values() for n in d.names}
    names = sorted(p.stem for p in (root / "images").glob("*.jpg"))
    assert {names[0], names[1], f"sub/{names[2]}", names[2]} <= used
    assert not used & {n for n in bad if "/" not in n and bad[n] not in decoded_only}
    with pytest.raises(BadSamplesError, match="notes.txt"):
        _build(root, cache_dir=cache, on_bad_sample="raise")


def test_mask_value_maps_gray_palette_and_colour(tmp_path: Path) -> None:
    root = tmp_path / "maps"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    labels = np.zeros((8, 8), dtype=np.uint8)
    labels[2:6, 2:6] = 1
    labels[0, :] = 2  # the value mapped to ignore
    for i in range(4):
        Image.fromarray(np.full((8, 8, 3), 60 * i, dtype=np.uint8)).save(root / "images" / f"p{i}.png")
        Image.fromarray(np.array([0, 255, 128], dtype=np.uint8)[labels]).save(root / "masks" / f"p{i}.png")
    gray = {0: "background", 255: "foreground", 128: "ignore"}
    ds = _build(root, folder={"mask_values": gray, "lists": {"test": None}}, val_split=0.5)
    mask = ds["train"][0][1][0].numpy()
    assert (mask[:4] == 255).all() and mask[12, 12] == 1 and mask[31, 31] == 0  # ignore -> IGNORE_INDEX (255)
    with pytest.raises(BadSamplesError, match=r"mask values \[128\] outside"):  # not in the default map
        _build(root, on_bad_sample="raise", cache_dir=tmp_path / "cache")

    colours = np.array([[0, 0, 0], [255, 0, 0], [0, 0, 255]], dtype=np.uint8)
    for i in range(4):
        if i % 2:
            palette = Image.fromarray(labels, mode="P")
            palette.putpalette(colours.ravel().tolist())
            palette.save(root / "masks" / f"p{i}.png")
        else:
            Image.fromarray(colours[labels]).save(root / "masks" / f"p{i}.png")
    colour_map = {"0-0-0": "background", "#ff0000": "foreground", "0-0-255": "ignore"}
    ds = _build(root, folder={"mask_values": colour_map}, val_split=0.5)
    for split in ds.values():
        for i in range(len(split)):
            mask = split[i][1][0].numpy()
            assert (mask[:4] == 255).all() and mask[12, 12] == 1 and mask[31, 31] == 0
    with pytest.raises(ConfigError, match="mixes gray values and colours"):
        FolderLayout(root, {0: "background", "255-0-0": "foreground"})


def test_split_lists_random_test_split_and_overlaps(synthetic_folder: Path, tmp_path: Path) -> None:
    layout = FolderLayout(synthetic_folder, lists={"test": "test.txt"})
    listing = layout.listing()
    assert listing.test == (synthetic_folder / "test.txt").read_text().split()
    assert len(listing.trainval) == 16 and not set(listing.trainval) & set(listing.test)
    seeded = [FolderLayout(synthetic_folder, split_seed=s).listing().test for s in (0, 0, 1)]
    assert seeded[0] == seeded[1] != seeded[2] and len(seeded[0]) == 4
    names = sorted(listing.trainval)
    (tmp_path / "train.txt").write_text("\n".join(names[:10]))
    (tmp_path / "val.txt").write_text("\n".join(names[9:12]))
    with pytest.raises(SplitListError, match="data.splits.train and data.splits.val"):
        FolderLayout(synthetic_folder, lists={"train": str(tmp_path / "train.txt"),
                                              "val": str(tmp_path / "val.txt")}).listing()  # fmt: skip
    (tmp_path / "val.txt").write_text("\n".join(names[10:12]))
    listing = FolderLayout(synthetic_folder, lists={"train": str(tmp_path / "train.txt"),
                                                    "val": str(tmp_path / "val.txt")}).listing()  # fmt: skip
    assert (listing.trainval, listing.val) == (names[:10], names[10:12])
    assert len(listing.test) == 8  # the images in no list
    with pytest.raises(ConfigError, match="data.splits.test=nope.txt: no such file"):
        FolderLayout(synthetic_folder, lists={"test": "nope.txt"}).listing()


def test_folds_partition_trainval_and_leave_test_alone() -> None:
    listing = Listing([f"s{i:02d}" for i in range(23)], ["t0", "t1"], val=["v0", "v1"])
    vals = [split_names(listing, val_split=None, seed=0, folds=5, fold=i, split_seed=3)["val"] for i in range(5)]
    assert sorted(n for v in vals for n in v) == sorted(listing.trainval + listing.val)
    assert {len(v) for v in vals} == {5}
    again = split_names(listing, val_split=None, seed=7, folds=5, fold=2, split_seed=3)
    assert again["val"] == vals[2] and again["test"] == ["t0", "t1"]
    assert not set(again["train"]) & set(again["val"])
    fractions = np.linspace(0, 1, 20)
    folds = fold_indices(20, 4, 0, fractions)
    assert all(sorted(folds[i:i + 4]) == [0, 1, 2, 3] for i in range(0, 20, 4))  # each quartile run dealt out
    for bad, match in [({"folds": 5, "fold": 5}, "0..4"), ({"folds": None, "fold": 1}, "needs data.folds")]:
        with pytest.raises(ConfigError, match=match):
            split_names(listing, val_split=None, seed=0, **bad)


def test_real_sample_as_folder_loads_exactly_like_oxford(real_root: Path, real_folder: Path, tmp_path: Path) -> None:
    oxford = build_datasets(root=real_root, image_size=S, augmentation=NONE, cache_dir=tmp_path / "a", limit=12)
    lists = {s: f"{s}.txt" for s in ("train", "val", "test")}
    folder = _build(real_folder, uncertain="foreground", cache_dir=tmp_path / "b", limit=12,
                    folder={"lists": lists})  # fmt: skip
    for split in ("train", "val", "test"):
        assert oxford[split].names == folder[split].names
        for i in range(len(oxford[split])):
            a, b = oxford[split][i], folder[split][i]
            assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_data_keys_that_do_not_fit_are_refused_with_the_config() -> None:
    """Checked by seg.config.typed_config, before any run folder or data work."""
    for overrides, match in [
        (["data.folds=3", "data.fold=5"], "0..2"),
        (["data=folder", "data.mask_values={0:background,255-0-0:foreground}"], "mixes gray values and colours"),
        (["data.mask_values={0:background}"], "only apply to data=folder"),
        (["data=folder", "data.mask_values={0:bg}"], "allowed: a map from mask values"),
    ]:
        with pytest.raises(ConfigError, match=match):
            compose_config(*overrides)


def test_synthetic_cli_writes_a_folder_dataset_and_stratified_folds_build(tmp_path: Path) -> None:
    synthetic_main(["--out", str(tmp_path / "pets"), "--n", "10", "--layout", "folder"])
    assert len(list((tmp_path / "pets" / "masks").glob("*.png"))) == 10
    folds = [_build(tmp_path / "pets", folder={"lists": {"test": "test.txt"}}, folds=2, fold=i, stratify=True)
             for i in (0, 1)]  # fmt: skip
    assert [len(f["val"]) for f in folds] == [4, 4] and folds[0]["test"].names == folds[1]["test"].names
    pool = folds[0]["train"].names + folds[0]["val"].names
    assert sorted(folds[0]["val"].names + folds[1]["val"].names) == sorted(pool)
