"""Sweeps: Optuna search with resume, failure guards and pruning; per-sweep summaries.

The `seg_optuna` sweeper itself is a Hydra plugin (hydra_plugins/seg_sweeper/), found by Hydra's plugin discovery.
"""
