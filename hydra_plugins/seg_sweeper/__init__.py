"""seg's sweepers, found by Hydra's plugin discovery in the `hydra_plugins` namespace package:
`hydra/sweeper=seg_optuna` (seg_optuna_sweeper.SegOptunaSweeper) and `hydra/sweeper=seg_study`
(seg_study_sweeper.SegStudySweeper)."""
