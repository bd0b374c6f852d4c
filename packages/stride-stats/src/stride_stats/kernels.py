"""Compiled loops that take every per-value statistic of a slice in one pass over memory (numba).

numba (maintained, already pinned for the project) compiles these loops to machine code that runs without
the GIL, so Dask's threads use every core. One loop replaces about ten NumPy passes and their float64
temporaries: the sums about the shift, the minimum's atom, the smallest value above it, the wet count and
the histogram's bin counts; a second one sums the transforms. The sums are float64 and sequential (no
`fastmath`), so a slice gives the same bits whatever its memory alignment or the scheduler.

The transcendental functions are not here: NumPy's float32 log and exp are SIMD loops (about 2 ns a value
on this machine against 7 ns for float64 log and 6 ns for float64 exp, and more for a scalar libm call in
a compiled loop), so compute.py takes them in float32 and hands their results to `transform_sums`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import numba
import numpy as np

F = TypeVar("F", bound=Callable[..., Any])


def compiled(**options: Any) -> Callable[[F], F]:
    """numba.njit without the GIL, its machine code cached beside the module (or in NUMBA_CACHE_DIR / the
    user's cache); where no cache location is writable (a read-only image) it compiles on each run."""

    def decorate(function: F) -> F:
        try:
            return numba.njit(nogil=True, cache=True, **options)(function)
        except RuntimeError:  # numba: "cannot cache function ...: no locator available"
            return numba.njit(nogil=True, **options)(function)

    return decorate


@compiled()
def bin_position(value: float, shift: float, inverse_width: float, first: int, size: int) -> int:
    """Position in a histogram's counts of one value: floor((value - shift) / width) - first, clipped.

    One function for every value and for the atom (the minimum), so equal values get equal positions."""
    position = int((value - shift) * inverse_width - first)
    return min(max(position, 0), size - 1)


@compiled()
def value_sums(
    x: np.ndarray,
    shift: float,
    low: float,
    wet_threshold: float,
    inverse_width: float,
    first: int,
    counts: np.ndarray,
) -> tuple[float, float, int, float, int]:
    """One pass over the finite values x (all >= low): sum(x - shift), sum((x - shift)^2), the count of
    values equal to `low`, the smallest value above it (inf when none) and the count above
    `wet_threshold` (nan: none counted). Values above `low` are counted into `counts` in place; the
    atom's values are not (they are counted exactly)."""
    s1 = 0.0
    s2 = 0.0
    at_low = 0
    above_low = np.inf
    wet = 0
    size = counts.size
    for i in range(x.size):
        value = np.float64(x[i])
        d = value - shift
        s1 += d
        s2 += d * d
        if value > wet_threshold:
            wet += 1
        if value == low:
            at_low += 1
        else:
            above_low = min(above_low, value)
            counts[bin_position(value, shift, inverse_width, first, size)] += 1
    return s1, s2, at_low, above_low, wet


@compiled(fastmath={"reassoc"})
def transform_sums(
    x: np.ndarray,
    log_x: np.ndarray,
    power: np.ndarray,
    log_centre: float,
    root_centre: float,
    power_centre: float,
) -> tuple[float, float, float, float, float, float]:
    """Sums and sums of squares about their centres of log_x, sqrt(x) (float64, exactly rounded) and
    `power` (exp(lambda log u) for the Box-Cox; an empty array skips it)."""
    l1 = l2 = r1 = r2 = p1 = p2 = 0.0
    for i in range(x.size):
        d = np.float64(log_x[i]) - log_centre
        l1 += d
        l2 += d * d
        d = np.sqrt(np.float64(x[i])) - root_centre
        r1 += d
        r2 += d * d
    for i in range(power.size):
        d = np.float64(power[i]) - power_centre
        p1 += d
        p2 += d * d
    return l1, l2, r1, r2, p1, p2
