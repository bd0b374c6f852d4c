"""stride-eval: evaluate samples against targets and baselines."""
