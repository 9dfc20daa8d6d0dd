"""smp models (the [smp] extra): checked like every key, one more model of the registry, trained from the CLI."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from clitools import run_cli
from configs import compose_config, tiny_checkpoint

from seg.build import build_training
from seg.config import to_yaml
from seg.errors import ConfigError, MissingWeightsError
from seg.inference import load_trained_model
from seg.models import SmpModel, build_model
from seg.models.smp import ARCHS, import_smp
from seg.registry import option_args
from seg.rundir import save_checkpoint
from seg.schema import StudyConfig
from seg.study.plan import comparison_names, expand, load_ablations

smp = pytest.importorskip("segmentation_models_pytorch")
torch.set_num_threads(1)


def test_arch_names_are_smps():
    assert set(ARCHS) == set(smp.MODEL_ARCHITECTURES_MAPPING)


@pytest.mark.parametrize(
    ("overrides", "parts"),
    [
        (["model.arch=fnp"], ["model.arch='fnp'", "fpn"]),
        (["model.encoder=resnet19"], ["model.encoder='resnet19'", "resnet18"]),
        (["model.encoder=tu-resnet19"], ["timm", "resnet18"]),
        (["model.encoder=resnet18", "model.encoder_weights=instagram"], ["encoder_weights='instagram'", "imagenet"]),
        (["data.image_size=48"], ["data.image_size=48", "multiple of 32"]),
        (["model.arch=linknet", "model.base_channels=8"], ["model.base_channels=8", "null"]),
        (["model.arch=fpn", "model.decoder_attention=scse"], ["decoder_attention", "unet"]),
    ],
)
def test_bad_smp_settings_are_one_line_with_close_names(overrides, parts):
    with pytest.raises(ConfigError) as error:
        compose_config("model=smp", "data=synthetic", "data.image_size=64", *overrides)
    message = str(error.value)
    assert "\n" not in message and all(p in message for p in parts), message


def test_missing_extra_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "segmentation_models_pytorch", None)  # import fails as when not installed
    with pytest.raises(ConfigError, match=r"pip install -e '\.\[smp\]'"):
        import_smp()
    with pytest.raises(ConfigError, match="model=smp needs segmentation-models-pytorch"):
        compose_config("model=smp", "data=synthetic", "data.image_size=64")


def test_smp_model_from_config_and_its_checkpoint(tmp_path: Path):
    cfg = compose_config("model=smp", "model.arch=unetplusplus", "model.encoder=resnet18", "model.base_channels=4",
                         "data=synthetic", "data.image_size=32", "logger=none")  # fmt: skip
    model = build_model(cfg.model.name, option_args(cfg.model))
    assert isinstance(model, SmpModel) and model.trained_with == smp.__version__
    x = torch.randn(2, 3, 32, 32)
    model.eval()
    assert model(x).shape == (2, 1, 32, 32)
    ckpt = tiny_checkpoint()
    model.smp_version.zero_()[:3] = torch.tensor(list(b"0.1"), dtype=torch.uint8)  # weights from an older smp
    ckpt.model, ckpt.config = model.state_dict(), to_yaml(cfg)
    save_checkpoint(ckpt, tmp_path / "best.pt")
    loaded, trained = load_trained_model(tmp_path / "best.pt", torch.device("cpu"))
    assert trained.model == cfg.model and loaded.trained_with == "0.1"
    torch.testing.assert_close(loaded(x), model(x))


@pytest.mark.slow
def test_smp_fpn_trains_and_tests_offline_from_the_cli(cli_paths: list[str], tmp_path: Path):
    run_dir = tmp_path / "run"
    result = run_cli("seg.train", "model=smp", "model.arch=fpn", "model.encoder=resnet18", "data=synthetic",
                     "debug=smoke", "logger=none", f"hydra.run.dir={run_dir}", *cli_paths)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["test"]["count"] == 16
    stored = torch.load(run_dir / "checkpoints" / "best.pt", weights_only=True)["model"]["smp_version"]
    assert bytes(stored.tolist()).rstrip(b"\0").decode() == smp.__version__


def test_smp_weights_offline_fail_in_one_line_before_any_data_work(tmp_path: Path, monkeypatch):
    import huggingface_hub
    from huggingface_hub.errors import LocalEntryNotFoundError

    def offline(*args, **kwargs):
        raise LocalEntryNotFoundError("cannot reach the hub")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", offline)
    cfg = compose_config("model=smp", "model.encoder=resnet18", "model.encoder_weights=imagenet", "data=synthetic",
                         "debug=smoke", "logger=none", f"paths.data_dir={tmp_path / 'data'}")  # fmt: skip
    with pytest.raises(MissingWeightsError) as error:
        build_training(cfg)
    message = str(error.value)
    assert "\n" not in message and "model.safetensors" in message and "encoder_weights=null" in message
    assert "https://huggingface.co/smp-hub/resnet18.imagenet/resolve/" in message
    assert not (tmp_path / "data").exists()


def test_encoder_ablation_joins_a_study():
    study = StudyConfig(experiments=["ablation_encoder"])
    def compose(overrides: list[str]):
        return compose_config(*overrides)

    ablations = load_ablations(study, compose_config("study=ablations"), compose, [])
    assert [(a.factor, a.values, a.baseline) for a in ablations] == [
        ("model.encoder", ["resnet18", "resnet34", "efficientnet-b0"], "resnet34")
    ]
    jobs = expand(ablations, dict.fromkeys(comparison_names(ablations), [0]), compose, [])
    assert sorted(j.arm for j in jobs) == ["efficientnet-b0", "resnet18", "resnet34"]
    assert len({j.key for j in jobs}) == 3
