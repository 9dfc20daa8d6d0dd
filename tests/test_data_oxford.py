"""Oxford layout, splits, bad samples, cache, border policy, loaders: on the real 400-image sample."""

from __future__ import annotations

import dataclasses
import os
import pickle
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader, Subset

from seg.data import (
    BadImageError,
    BadSamplesError,
    DatasetNotFoundError,
    build_datasets,
    denormalize,
    eval_transform,
    read_rgb,
)
from seg.data.cache import load_or_build
from seg.data.oxford import image_path, read_split_list, trimap_path
from seg.data.trimap import trimap_to_mask
from seg.engine.runtime import make_loader, reseed_loader
from seg.schema import GROUPS

torch.set_num_threads(1)
S = 32
NONE = {"name": "none"}


def preset(name: str) -> dict:
    """An augmentation preset with the schema's default knobs."""
    return dataclasses.asdict(GROUPS["augmentation"][name]())


def _build(root: Path, **kwargs) -> dict:
    return build_datasets(root=root, image_size=S, augmentation=kwargs.pop("augmentation", NONE), **kwargs)


@pytest.fixture(scope="module")
def real_cached(real_root: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    cache_dir = tmp_path_factory.mktemp("cache")
    return _build(real_root, cache_dir=cache_dir), cache_dir


@pytest.fixture(scope="module")
def real_uncached(real_root: Path) -> dict:
    return _build(real_root)


def _lists(root: Path) -> tuple[list[str], list[str]]:
    return (read_split_list(root / "annotations" / "trainval.txt"),
            read_split_list(root / "annotations" / "test.txt"))


def test_split_sizes_and_rule_match_the_lists(real_root: Path, real_cached: tuple[dict, Path]) -> None:
    trainval, test = _lists(real_root)
    ds, _ = real_cached
    assert ds["val"].names == trainval[::10]
    assert ds["train"].names == [n for i, n in enumerate(trainval) if i % 10]
    assert ds["test"].names == test
    assert [len(ds[s]) for s in ("train", "val", "test")] == [180, 20, 198]


def test_every_item_is_a_normalised_image_and_binary_mask(real_cached: tuple[dict, Path]) -> None:
    ds, _ = real_cached
    for split in ("train", "val", "test"):
        for i in range(len(ds[split])):
            image, mask = ds[split][i]
            assert image.shape == (3, S, S) and image.dtype == torch.float32
            assert mask.shape == (1, S, S) and mask.dtype == torch.float32
            assert set(mask.unique().tolist()) <= {0.0, 1.0}
    assert float(image.min()) > -2.5 and float(image.max()) < 2.7  # ImageNet-normalised range


def test_cached_equals_uncached(real_cached: tuple[dict, Path], real_uncached: dict) -> None:
    cached, _ = real_cached
    for split in ("val", "test"):
        assert cached[split].names == real_uncached[split].names
        for i in range(0, len(cached[split]), 7):
            for a, b in zip(cached[split][i], real_uncached[split][i], strict=True):
                assert torch.equal(a, b)


def test_gif_and_rgba_png_named_jpg_read_as_rgb(real_root: Path, real_cached: tuple[dict, Path]) -> None:
    for name, size in (("Abyssinian_34", (202, 250)), ("Abyssinian_5", (150, 200))):
        rgb = read_rgb(real_root / "images" / f"{name}.jpg")
        assert rgb.shape == (*size, 3) and rgb.dtype == np.uint8
    ds, _ = real_cached
    listed = {n for split in ds.values() for n in split.names}
    assert "Abyssinian_5" in listed  # the RGBA PNG is listed and loads like the others


def test_stray_and_unlisted_files_are_in_no_split(real_root: Path, real_cached: tuple[dict, Path]) -> None:
    ds, _ = real_cached
    used = [n for split in ds.values() for n in split.names]
    trainval, test = _lists(real_root)
    assert set(used) == set(trainval) | set(test) and len(used) == len(set(used))
    on_disk = {p.stem for p in (real_root / "images").iterdir() if p.suffix == ".jpg"}
    assert on_disk - set(used) == {"Abyssinian_34", "Abyssinian_82"}


def test_cache_is_reused_without_decoding(real_root: Path, real_cached: tuple[dict, Path],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    _, cache_dir = real_cached
    entries = sorted(p for p in cache_dir.iterdir() if not p.name.startswith("."))
    assert len(entries) == 3
    mtimes = [p.stat().st_mtime_ns for p in entries]

    def fail(path: object) -> None:
        raise AssertionError(f"decoded {path} although the cache exists")

    monkeypatch.setattr("seg.data.dataset.read_rgb", fail)
    again = _build(real_root, cache_dir=cache_dir)
    assert len(again["train"]) == 180 and again["train"][0][0].shape == (3, S, S)
    assert [p.stat().st_mtime_ns for p in entries] == mtimes
    assert sorted(p for p in cache_dir.iterdir() if not p.name.startswith(".")) == entries


def test_uncertain_modes(real_cached: tuple[dict, Path], real_root: Path) -> None:
    ds, cache_dir = real_cached
    _, trimap = ds["val"].source.load(0)
    assert 3 in trimap
    fg, bg, ign = (trimap_to_mask(trimap, m) for m in ("foreground", "background", "ignore"))
    assert set(np.unique(ign)) == {0, 1, 255}
    assert (fg[trimap == 3] == 1).all() and (bg[trimap == 3] == 0).all() and (ign[trimap == 3] == 255).all()
    assert (fg == bg)[trimap != 3].all()
    ignored = _build(real_root, cache_dir=cache_dir, uncertain="ignore")["val"][0][1]
    assert set(ignored.unique().tolist()) == {0.0, 1.0, 255.0}
    torch.manual_seed(0)
    draws = [trimap_to_mask(trimap, "random") for _ in range(20)]
    torch.manual_seed(0)
    assert all(np.array_equal(a, trimap_to_mask(trimap, "random")) for a in draws)
    assert {int(d[trimap == 3][0]) for d in draws} == {0, 1}
    with pytest.raises(ValueError, match=r"data\.uncertain.*foreground, background, ignore, random"):
        _build(real_root, uncertain="maybe")


def test_val_split_fraction_is_seeded(real_root: Path) -> None:
    trainval, _ = _lists(real_root)
    a = _build(real_root, val_split=0.25, seed=1)
    b = _build(real_root, val_split=0.25, seed=1)
    c = _build(real_root, val_split=0.25, seed=2)
    assert len(a["val"]) == 50 and len(a["train"]) == 150
    assert sorted(a["val"].names + a["train"].names) == sorted(trainval)
    assert a["val"].names == b["val"].names != c["val"].names
    with pytest.raises(ValueError, match="val_split"):
        _build(real_root, val_split=1.5)


def test_limit_caps_every_split(real_root: Path) -> None:
    ds = _build(real_root, limit=7)
    assert [len(ds[s]) for s in ("train", "val", "test")] == [7, 7, 7]
    assert {n.rsplit("_", 1)[0] for n in ds["train"].names} == {"Abyssinian", "american_bulldog"}  # spread


def _make_broken_copy(real_root: Path, tmp_path: Path) -> tuple[Path, set[str]]:
    """8 real trainval samples, 5 of them broken in a different way each, and 1 test sample."""
    root = tmp_path / "pets"
    (root / "images").mkdir(parents=True)
    (root / "annotations" / "trimaps").mkdir(parents=True)
    names = read_split_list(real_root / "annotations" / "trainval.txt")[:8]
    test_name = read_split_list(real_root / "annotations" / "test.txt")[0]
    for n in [*names, test_name]:
        shutil.copy(real_root / "images" / f"{n}.jpg", root / "images")
        shutil.copy(real_root / "annotations" / "trimaps" / f"{n}.png", root / "annotations" / "trimaps")
    data = image_path(root, names[1]).read_bytes()
    image_path(root, names[1]).write_bytes(data[: len(data) // 3])  # truncated JPEG: its header is fine
    image_path(root, names[2]).write_bytes(b"")  # zero-byte image
    small = Image.open(trimap_path(root, names[3])).resize((17, 13))
    small.save(trimap_path(root, names[3]))  # trimap size != image size
    trimap_path(root, names[4]).unlink()  # missing trimap
    image_path(root, names[5]).unlink()  # listed without an image
    (root / "images" / "._Abyssinian_1.jpg").write_bytes(b"\x00\x05\x16\x07")  # AppleDouble junk, unlisted
    (root / "annotations" / "trainval.txt").write_text("# comment\n" + "".join(f"{n} 1 1 1\n" for n in names))
    (root / "annotations" / "test.txt").write_text(f"{test_name} 1 1 1\n")
    return root, set(names[1:6])


def test_bad_samples_are_skipped_with_one_warning_or_raise(real_root: Path, tmp_path: Path) -> None:
    root, broken = _make_broken_copy(real_root, tmp_path)
    with pytest.warns(UserWarning) as record:
        ds = _build(root, cache_dir=tmp_path / "cache")
    assert len(record) == 1
    message = str(record[0].message)
    assert all(n in message for n in broken)
    assert not broken & {n for split in ds.values() for n in split.names}
    assert len(ds["train"]) + len(ds["val"]) == 3
    with pytest.raises(BadSamplesError) as error:
        _build(root, cache_dir=tmp_path / "cache", on_bad_sample="raise")
    assert all(n in str(error.value) for n in broken)


def test_uncached_loader_survives_a_corrupt_jpeg(real_root: Path, tmp_path: Path) -> None:
    root, broken = _make_broken_copy(real_root, tmp_path)
    with pytest.warns(UserWarning) as record:
        ds = _build(root)  # header checks only: the truncated JPEG gets through to the dataset
    assert len(record) == 1 and sum(n in str(record[0].message) for n in broken) == 4
    assert len(ds["train"]) == 3
    with pytest.warns(UserWarning, match="Unreadable sample"):
        items = [ds["train"][i] for i in range(len(ds["train"]))]
    assert all(image.shape == (3, S, S) for image, _ in items)


def test_concurrent_cache_builders_agree(synthetic_root: Path, tmp_path: Path) -> None:
    names = read_split_list(synthetic_root / "annotations" / "trainval.txt")
    results: list = []
    threads = [threading.Thread(target=lambda: results.append(load_or_build(tmp_path, synthetic_root, "x",
                                                                               names, S))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 3 and all(r[1] == names for r in results)
    assert [p.name.startswith("x-") for p in tmp_path.iterdir()] == [True]  # one entry, no temp folders
    first = results[0][0].load(5)
    assert all(np.array_equal(r[0].load(5)[0], first[0]) for r in results)


def test_missing_dataset_names_path_and_fixes(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "oxford-iiit-pet"
    with pytest.raises(DatasetNotFoundError) as error:
        _build(missing)
    assert isinstance(error.value, FileNotFoundError)
    for part in (str(missing), "data.root=", "data.download=true", "data=synthetic"):
        assert part in str(error.value)


def test_download_asks_torchvision_for_the_parent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    monkeypatch.setattr("torchvision.datasets.OxfordIIITPet", lambda **kw: calls.append(kw))
    with pytest.raises(DatasetNotFoundError):  # the fake downloads nothing
        _build(tmp_path / "oxford-iiit-pet", download=True)
    assert calls == [{"root": str(tmp_path), "split": "trainval", "target_types": "segmentation",
                      "download": True}]
    with pytest.raises(ValueError, match="oxford-iiit-pet"):
        _build(tmp_path / "pets", download=True)


def test_loader_workers_are_reproducible(synthetic_root: Path, tmp_path: Path) -> None:
    ds = _build(synthetic_root, cache_dir=tmp_path, augmentation=preset("strong"), uncertain="random")

    def first_batches() -> list[torch.Tensor]:
        torch.manual_seed(123)
        loader = DataLoader(ds["train"], batch_size=4, shuffle=True, num_workers=2)
        return [torch.cat([x.flatten(), m.flatten()]) for x, m in list(loader)[:2]]

    a, b = first_batches(), first_batches()
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    # sample 0 loaded by worker 0 and by worker 1: an item does not depend on the worker; ds[i] == ds[(i, i)]
    same_image = DataLoader(Subset(ds["train"], [0, 0]), batch_size=1, num_workers=2)
    first, second = (x for x, _ in same_image)
    assert torch.equal(first, second) and torch.equal(first[0], ds["train"][(0, 0)][0])


def test_item_seed_makes_draws_depend_on_index_and_seed_only(synthetic_root: Path, tmp_path: Path) -> None:
    strong = preset("strong")
    train = _build(synthetic_root, cache_dir=tmp_path, augmentation=strong, uncertain="random")["train"]

    def item(index: int, seed: int) -> torch.Tensor:
        torch.rand(100)  # global RNG use in between must not matter
        return torch.cat([t.flatten() for t in train[(index, seed)]])

    assert torch.equal(item(0, 5), item(0, 5))
    assert not torch.equal(item(0, 5), item(0, 6))
    clone = pickle.loads(pickle.dumps(train))  # what a worker gets
    assert torch.equal(torch.cat([t.flatten() for t in clone[(1, 5)]]), item(1, 5))


def _epochs(loader: DataLoader, epochs: range) -> list[torch.Tensor]:
    out = []
    for epoch in epochs:
        reseed_loader(loader, seed=7, epoch=epoch)
        out.append(torch.cat([torch.cat([x.flatten(), m.flatten()]) for x, m in loader]))
    return out


def test_engine_loader_batches_do_not_depend_on_workers_or_resume(synthetic_root: Path, tmp_path: Path) -> None:
    """Same (seed, epoch) -> same batches with 0 or 2 (persistent) workers, and when a run starts at
    epoch 2 (a resume); different epochs -> different order and augmentation."""
    train = _build(synthetic_root, cache_dir=tmp_path, augmentation=preset("strong"), uncertain="random")["train"]
    in_process = _epochs(make_loader(train, 4, 0, shuffle=True, pin_memory=False), range(1, 4))
    workers = make_loader(train, 4, 2, shuffle=True, pin_memory=False)
    assert workers.persistent_workers
    assert all(torch.equal(a, b) for a, b in zip(in_process, _epochs(workers, range(1, 4)), strict=True))
    resumed = _epochs(make_loader(train, 4, 2, shuffle=True, pin_memory=False), range(2, 4))
    assert all(torch.equal(a, b) for a, b in zip(in_process[1:], resumed, strict=True))
    assert not torch.equal(in_process[0], in_process[1])


def test_read_rgb_converts_every_mode_and_rejects_non_images(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)
    cases = {
        "gray.jpg": Image.fromarray(rgb[..., 0]), "cmyk.jpg": Image.fromarray(rgb).convert("CMYK"),
        "la.png": Image.fromarray(rgb).convert("LA"), "p.gif": Image.fromarray(rgb).convert("P"),
        "rgba_named.jpg": Image.fromarray(rgb).convert("RGBA"),
        "i16.png": Image.fromarray(rgb[..., 0].astype(np.uint16) * 200),
    }
    for file, image in cases.items():
        image.save(tmp_path / file, format="PNG" if file == "rgba_named.jpg" else None)
        out = read_rgb(tmp_path / file)
        assert out.shape == (12, 10, 3) and out.dtype == np.uint8, file
    (tmp_path / "x.mat").write_bytes(b"MATLAB 5.0 MAT-file")
    (tmp_path / "empty.jpg").write_bytes(b"")
    for bad in ("x.mat", "empty.jpg", "absent.jpg"):
        with pytest.raises(BadImageError, match=bad):
            read_rgb(tmp_path / bad)


def test_eval_transform_and_denormalize() -> None:
    image = np.random.default_rng(0).integers(0, 256, (50, 70, 3), dtype=np.uint8)
    out = eval_transform(S)(image=image)["image"]
    assert out.shape == (3, S, S) and out.dtype == torch.float32
    square = image[:S, :S]
    back = denormalize(eval_transform(S)(image=square)["image"])
    assert torch.allclose(back, torch.from_numpy(square).permute(2, 0, 1) / 255.0, atol=1e-5)
    assert denormalize(out[None].repeat(2, 1, 1, 1)).shape == (2, 3, S, S)


def test_no_stray_temp_files(real_cached: tuple[dict, Path]) -> None:
    _, cache_dir = real_cached
    assert not [p for p in os.listdir(cache_dir) if p.startswith(".")]
