"""study.vary: a seed per random source (init, order, augmentation), varied one at a time; each source's share."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from configs import compose_config

from seg.build import build_training
from seg.config import result_items
from seg.engine.runtime import Seeds, make_loader, reseed_loader
from seg.rundir import RunDir, Status, Summary
from seg.schema import StudyConfig
from seg.study.plan import Job, expand, load_ablations, run_key
from seg.study.results import cells, load_runs
from seg.study.variance import TOGETHER, source_spreads, variance_lines
from seg.study.wandb_runs import name_jobs

SMALL = ["debug=smoke", "data=synthetic", "logger=none"]


def epoch_draws(seeds: Seeds, epoch: int = 1) -> tuple[list[int], list[int]]:
    """(order of the items, each position's augmentation seed) of a shuffled loader's epoch."""
    loader = make_loader(list(range(12)), 4, 0, True, False)
    reseed_loader(loader, seeds.order, epoch, seeds.augmentation)
    pairs = list(loader.sampler)
    return [i for i, _ in pairs], [s - i for i, s in pairs]  # the seed is (epoch seed * 1_000_003 + index)


def test_order_and_augmentation_are_seeded_apart_and_together_as_before() -> None:
    base = epoch_draws(Seeds.of(3))
    order, augmentation = epoch_draws(Seeds.of(3, order=4)), epoch_draws(Seeds.of(3, augmentation=4))
    assert order[0] != base[0] and order[1] == base[1], "order alone: another order, the same augmentation"
    assert augmentation[0] == base[0] and augmentation[1] != base[1], "augmentation alone: the same order"
    loader = make_loader(list(range(12)), 4, 0, True, False)
    reseed_loader(loader, 3, 1)  # one seed for both, as before seeds.<source> existed
    assert [i for i, _ in loader.sampler] == base[0]


def test_the_init_seed_alone_sets_the_initial_weights(cli_paths: list[str]) -> None:
    def first_weight(*overrides: str) -> torch.Tensor:
        t = build_training(compose_config(*SMALL, *cli_paths, *overrides))
        return next(iter(t.model.state_dict().values())).clone()

    base, init = first_weight("seed=0"), first_weight("seed=0", "seeds.init=5")
    assert torch.equal(first_weight("seed=0", "seeds.order=5", "seeds.augmentation=5"), base)
    assert not torch.equal(init, base) and torch.equal(first_weight("seed=5", "seeds.order=0"), init)


def test_vary_adds_one_source_at_a_time_and_leaves_the_other_runs_alone() -> None:
    study = StudyConfig(experiments=["ablation_architecture"], seeds=[0, 1])
    ablations = load_ablations(study, compose_config("study=ablations"), lambda o: compose_config(*o), [])
    seeds, keys = {"ablation_architecture: resnet34_unet vs unet": [0, 1]}, {}
    plain = expand(ablations, seeds, lambda o: compose_config(*o), [], keys)
    varied = expand(ablations, seeds, lambda o: compose_config(*o), [], keys, vary=["init", "order"])
    assert [j for j in varied if j.source is None] == plain and cells(varied) == cells(plain), "the ordinary runs"
    extra = [j for j in varied if j.source is not None]
    assert len(extra) == 2 * 2 * 2 and len({j.key for j in varied}) == 4 + 2 * 2 * 1, "base seed shared"
    job = next(j for j in extra if j.arm == "unet" and j.source == "order" and j.seed == 1)
    assert job.overrides[-2:] == ("seed=0", "seeds.order=1")
    assert "seeds.init" not in result_items(compose_config("data=synthetic")), "unset seeds keep old run keys"
    assert run_key(compose_config(*job.overrides)) == job.key
    named = name_jobs(varied, ablations, "ablations", lambda o: compose_config(*o))
    names = {j.key: next(o.split("=", 1)[1] for o in j.overrides if o.startswith("logger.run_name=")) for j in named}
    assert len(set(names.values())) == len(names), "one W&B name per run: a varied source is told apart from a seed"
    assert names[job.key] == "'unet-s0-order1'" and sorted(names.values())[:4] == ["'resnet34_unet-s0'",
                                                                                   "'resnet34_unet-s0-init1'",
                                                                                   "'resnet34_unet-s0-order1'",
                                                                                   "'resnet34_unet-s1'"]  # fmt: skip


def test_each_source_gets_its_share_of_the_spread(tmp_path: Path) -> None:
    dice = {None: [0.70, 0.72, 0.74], "init": [0.70, 0.73, 0.76], "order": [0.70, 0.70, 0.71]}
    jobs = [Job("a", "", "x", seed, (), f"{source}{seed}", source) for source in dice for seed in range(3)]
    for job in jobs:
        run = RunDir(tmp_path / "runs" / job.key)
        run.path.mkdir(parents=True)
        run.write_summary(Summary(Status.COMPLETED, str(run.path), test={"dice": dice[job.source][job.seed]}))
    (spread,) = source_spreads(jobs, load_runs(tmp_path, jobs), "test_dice")
    assert spread.n == {TOGETHER: 3, "init": 3, "order": 3}
    assert spread.std["init"] == pytest.approx(0.03) and spread.std[TOGETHER] == pytest.approx(0.02)
    assert spread.share["init"] == pytest.approx(0.0009 / (0.0009 + 0.0000333), rel=1e-3)
    assert spread.additivity == pytest.approx((0.0009 + 0.0000333) / 0.0004, rel=1e-3)
    assert "| a: x | 0.0300 (n=3, 96%) | 0.0058 (n=3, 4%) | 0.0200 (n=3) | 2.33 |" in variance_lines([spread], "test")
    assert source_spreads(jobs[:3], load_runs(tmp_path, jobs[:3]), "test_dice") == [], "no study.vary: no section"
