"""Evaluation families, one module each with `compute(inputs)`, `plot(rows, inputs)` and `compute_and_plot`.

REGISTRY maps each name to its `Family` (calling one computes its rows). ORDER is the default run order,
most valuable first. `occurrence` is kept for old configs; `distributions` includes its rows.
"""

from stride_eval.families import (
    dates,
    deterministic,
    distributions,
    extremes,
    features,
    occurrence,
    probabilistic,
    scale,
    spatial,
    temporal,
)
from stride_eval.families.base import Family

REGISTRY: dict[str, Family] = {
    module.FAMILY.name: module.FAMILY
    for module in (
        probabilistic,
        deterministic,
        distributions,
        extremes,
        spatial,
        scale,
        temporal,
        dates,
        features,
        occurrence,
    )
}
MINIMAL_FAMILIES = ("probabilistic", "deterministic")
"""The `minimal` mode: headline scores only."""

__all__ = ["MINIMAL_FAMILIES", "REGISTRY", "Family"]
