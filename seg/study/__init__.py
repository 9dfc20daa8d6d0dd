"""Multi-seed studies: paired comparisons of ablation arms and their verdicts."""
