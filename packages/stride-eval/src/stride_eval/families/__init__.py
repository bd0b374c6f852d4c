"""Evaluation families: each module exposes `compute(inputs) -> list[MetricRow]`; REGISTRY maps names to them."""

from collections.abc import Callable

from stride_contracts import MetricRow
from stride_eval.families import deterministic, occurrence, probabilistic, scale
from stride_eval.inputs import EvalInputs

REGISTRY: dict[str, Callable[[EvalInputs], list[MetricRow]]] = {
    "probabilistic": probabilistic.compute,
    "deterministic": deterministic.compute,
    "scale": scale.compute,
    "occurrence": occurrence.compute,
}
