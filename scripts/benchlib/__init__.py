"""Helpers of `scripts/bench.py`: one module per kind of measurement, plus timing and the report.

common: statistics over repeats, device-synchronised timing, the suite's composed config, conditions.
compute: the matmul ceiling and the model training-step throughput (FLOPs and utilisation).
data: loader throughput (cache vs decoding) and the end-to-end epoch split into data wait and compute.
overhead: what a sweep job costs besides training (process start, imports, config, data, W&B).
report: bench.md from the results.
"""
