"""Helpers of `scripts/bench.py`: one module per kind of measurement, plus timing and the report.

common: statistics over repeats, device-synchronised timing, the suite's checked config and `build_training`.
compute: the matmul ceiling and the model training-step throughput (FLOPs and utilisation).
data: loader throughput (cache vs decoding) and epochs of `fit` split into data wait and compute, plus the test pass.
overhead: what a sweep job costs besides training (process start, imports, config, data, W&B).
report: the targets and bench.md from the results.
"""
