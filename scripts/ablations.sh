#!/usr/bin/env bash
# `make ablations [PROFILE=quick|full] [ARGS="key=value ..."]`: the augmentation, scheduler and architecture
# ablations over seeds (conf/experiment/ablation_*.yaml), then `python -m seg.report` on the three sweeps.
#   PROFILE  quick (default; 2-core CPU, < 30 min, synthetic data unless ARGS picks data=oxford_pet ...)
#            | full (the reports' settings: 256 px, 50 epochs, batch 32; for a GPU)
#   ARGS     extra Hydra overrides for every job, e.g. data=oxford_pet data.root=../shared/data/oxford-iiit-pet-sample
# Sweeps go to outputs/ablations/<ablation>/<time>/; the report to outputs/ablations/report.md (+ PNGs).
set -euo pipefail

profile=${1:-quick}
shift || true
python=${PYTHON:-.venv/bin/python}
out=${SEG_ROOT:-.}/outputs/ablations
stamp=$(date +%Y-%m-%d_%H-%M-%S)

sweeps=()
for ablation in ablation_augmentation ablation_scheduler ablation_architecture; do
  sweep_dir=$out/$ablation/$stamp
  "$python" -m seg.train -m "experiment=$ablation" "experiment/profile@_global_=$profile" \
    "hydra.sweep.dir=$sweep_dir" "$@"
  sweeps+=("$sweep_dir")
done
"$python" -m seg.report "${sweeps[@]}" --out "$out"
