"""Sweeps: Optuna search with resume, failure guards and pruning; per-sweep summaries.

Importing the package (seg.train does) registers the `seg_optuna` sweeper with Hydra.
"""

from seg.sweep.optuna_sweeper import register

register()
