"""Training engine: optimisation, the epoch loops, checkpoints, tracking, distributed helpers."""
