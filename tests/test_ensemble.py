"""TTA and ensembles: flipped views mapped back, probabilities averaged; seg.evaluate and seg.predict of several
checkpoints with TTA (in-process); a study arm's completed seeds; checkpoints that disagree refused in one line."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import pytest
import torch
from configs import compose_config, tiny_checkpoint
from PIL import Image
from torch import nn

from seg.ensemble import arm_checkpoints, checkpoint_paths, load_members
from seg.errors import ConfigError, SegError
from seg.evaluate import evaluate_checkpoint
from seg.inference import Averaged
from seg.predict import predict_folder
from seg.rundir import RunDir, Status, Summary, save_checkpoint
from seg.schema import StudyConfig
from seg.study.plan import Ablation, Job
from seg.study.results import StudyRecord

torch.set_num_threads(1)


def conv(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Conv2d(3, 1, 3, padding=1).eval()  # random 3x3 kernels: not symmetric under any flip


def test_tta_maps_every_view_back():
    x = torch.randn(2, 3, 8, 10)
    hflip, flips = Averaged([conv(0)], "hflip"), Averaged([conv(0)], "flips")
    with torch.no_grad():
        torch.testing.assert_close(hflip(x.flip(-1)), hflip(x).flip(-1))  # hflip-invariant up to the flip
        for dims in ((-1,), (-2,), (-2, -1)):
            torch.testing.assert_close(flips(x.flip(dims)), flips(x).flip(dims))
        assert not torch.allclose(hflip(x.flip(-2)), hflip(x).flip(-2), atol=1e-3)  # one view does not do both


def test_ensemble_averages_probabilities_not_logits():
    a, b, x = conv(0), conv(1), torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        expected = (torch.sigmoid(a(x)) + torch.sigmoid(b(x))) / 2
        torch.testing.assert_close(torch.sigmoid(Averaged([a, b])(x)), expected, atol=1e-5, rtol=1e-4)


def checkpoints(folder: Path, thresholds: tuple[float, ...] = (0.5, 0.5)) -> list[Path]:
    """Smoke-sized UNet checkpoints with different weights (and the given thresholds)."""
    paths = []
    for i, threshold in enumerate(thresholds):
        ckpt = tiny_checkpoint()
        ckpt.config = ckpt.config.replace("threshold: 0.5", f"threshold: {threshold}")
        paths.append(folder / f"m{i}" / "best.pt")
        save_checkpoint(ckpt, paths[-1])
    return paths


def test_evaluate_an_ensemble_with_tta_names_every_checkpoint(tmp_path: Path, synthetic_root: Path):
    a, b = checkpoints(tmp_path)
    cfg = compose_config(f"ckpt=[{a},{b}]", "tta=flips", f"data.root={synthetic_root}", "device=cpu", "logger=none",
                         f"paths.data_dir={tmp_path / 'data'}", config_name="evaluate")  # fmt: skip
    out = tmp_path / "eval"
    out.mkdir()
    results = evaluate_checkpoint(cfg, out)
    assert results["checkpoints"] == [str(a.resolve()), str(b.resolve())] and results["tta"] == "flips"
    assert json.loads((out / "results.json").read_text())["tta"] == "flips"
    md = (out / "results.md").read_text()
    assert str(a.resolve()) in md and str(b.resolve()) in md and "flips" in md
    with (out / "per_image.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == results["images"] == 4
    assert {r["image"]: float(r["dice"]) for r in rows} == pytest.approx(results["per_image"], abs=1e-6)
    assert Image.open(out / "examples.png").size[0] > 0


def test_checkpoints_that_disagree_need_the_setting(tmp_path: Path):
    paths = checkpoints(tmp_path, (0.5, 0.4))
    with pytest.raises(SegError, match=r"differ in threshold .*0\.5.*0\.4.*set threshold="):
        load_members(paths, "none", torch.device("cpu"), image_size=None, threshold=None)
    members = load_members(paths, "hflip", torch.device("cpu"), image_size=None, threshold=0.45)
    assert isinstance(members.model, Averaged) and len(members.model.members) == 2
    with pytest.raises(ConfigError, match="either ckpt or ensemble"):
        checkpoint_paths(None, None, None)


def test_predict_with_an_ensemble_and_tta(tmp_path: Path, synthetic_root: Path):
    a, b = checkpoints(tmp_path)
    output = tmp_path / "predictions"
    cfg = compose_config(f"ckpt=[{a},{b}]", "tta=hflip", f"input={synthetic_root / 'images'}", f"output={output}",
                         "device=cpu", config_name="predict")  # fmt: skip
    done, skipped = predict_folder(cfg)
    assert done == len(list((synthetic_root / "images").iterdir())) and not skipped
    assert len(list(output.rglob("*_mask.png"))) == done


def test_an_arms_completed_seeds(tmp_path: Path):
    study = tmp_path / "study"
    jobs = [Job("ablation_architecture", "", arm, seed, (f"model={arm}", f"seed={seed}"), f"{arm}-{seed}")
            for arm in ("unet", "resnet34_unet") for seed in (0, 1, 2)]  # fmt: skip
    ablation = Ablation("ablation_architecture", "model", ["unet", "resnet34_unet"], "unet")
    StudyRecord("s", dataclasses.asdict(StudyConfig()), 0.05, [ablation], jobs).save(study)
    ckpt = tiny_checkpoint()
    for seed, status in ((0, Status.COMPLETED), (2, Status.COMPLETED), (1, Status.RUNNING)):
        run = RunDir(study / "runs" / f"unet-{seed}")
        save_checkpoint(ckpt, run.best)
        run.write_summary(Summary(status, str(run.path), best_val_dice=0.5, best_epoch=1, epochs=1))
    assert arm_checkpoints(study, "unet") == [study / "runs" / f"unet-{s}" / "checkpoints" / "best.pt" for s in (0, 2)]
    with pytest.raises(SegError, match="no completed run"):
        arm_checkpoints(study, "resnet34_unet")
    with pytest.raises(ConfigError, match="its arms: resnet34_unet, unet"):
        arm_checkpoints(study, "unet3")
