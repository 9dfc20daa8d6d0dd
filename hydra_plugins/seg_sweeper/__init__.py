"""seg's Optuna sweeper (`hydra/sweeper=seg_optuna`: seg_optuna_sweeper.SegOptunaSweeper), found by Hydra's plugin
discovery in the `hydra_plugins` namespace package."""
