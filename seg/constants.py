"""Constants shared by data, losses and metrics."""

IGNORE_INDEX = 255
"""Mask value of pixels excluded from every loss and metric (trimap border with `data.uncertain=ignore`)."""

CHECKPOINTS = ("best", "last", "ema")
"""The checkpoints a run tests after fit (ema with trainer.ema_decay); a study judges one (study.checkpoint)."""

UNCERTAIN_MODES = ("foreground", "background", "ignore", "random")
"""What the trimap's border becomes (`data.uncertain`, applied by seg.data.trimap): pet (1), background (0),
IGNORE_INDEX (255), or per sample either 0 or 1."""

TESTS = ("t", "sign_flip")
"""A study's paired test over seeds (study.test, seg.study.rules): paired Student t over the per-seed differences, or
the exact sign-flip test of their mean."""
FAMILIES = ("ablation", "study")
"""A study's Holm family (study.family): within each ablation (one table of the report), or across every comparison."""
SPENDING = ("obrien_fleming", "pocock", "bonferroni")
"""How a sequential study shares alpha over its looks (study.spending, seg.study.sequential)."""

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
