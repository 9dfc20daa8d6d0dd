"""Sweeps: Optuna search with resume, failure guards and pruning; per-sweep summaries."""
