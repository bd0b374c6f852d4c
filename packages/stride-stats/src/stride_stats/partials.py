"""Exactly mergeable partial statistics, and the Dask tree that merges one partial per task."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import reduce
from typing import Protocol, Self, TypeVar

import dask
import numpy as np
from dask.delayed import Delayed

FAN_IN = 8
"""Partials merged per task of the reduction tree."""


class Mergeable(Protocol):
    def merge(self, other: Self) -> Self: ...


PartialT = TypeVar("PartialT", bound=Mergeable)


@dataclass(frozen=True)
class Moments:
    """Count, mean and sum of squared deviations (M2), merged exactly (Chan, Golub & LeVeque 1979).

    Unlike sums of x and x^2 about 0, this loses nothing to cancellation when the mean is large against the
    spread: each slice is summed about a shift c near the mean (the pilot's mean), in float64.
    """

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0

    @classmethod
    def of(cls, x: np.ndarray) -> Moments:
        """Two-pass moments of x (float64)."""
        if x.size == 0:
            return cls()
        mean = float(x.mean(dtype=np.float64))
        deviation = np.asarray(x, dtype=np.float64) - mean
        return cls(int(x.size), mean, float(deviation @ deviation))

    @classmethod
    def of_shifted(cls, d: np.ndarray, shift: float) -> Moments:
        """Moments of x from d = x - shift (float64): sum(d) and d.d about the shift, then moved to the mean.

        M2 = d.d - (sum d)^2 / n loses the digits of ((mean - shift) / std)^2 only, a few when the shift is
        the pilot's mean: still about 1e-12 relative.
        """
        return cls.of_sums(int(d.size), float(d.sum()), float(d @ d), shift)

    @classmethod
    def of_sums(cls, n: int, s1: float, s2: float, shift: float) -> Moments:
        """Moments of n values x from s1 = sum(x - shift) and s2 = sum((x - shift)^2)."""
        if n == 0:
            return cls()
        return cls(n, shift + s1 / n, max(s2 - s1 * s1 / n, 0.0))

    def scaled(self, offset: float, scale: float) -> Moments:
        """Moments of (x + offset) * scale."""
        return Moments(self.n, (self.mean + offset) * scale, self.m2 * scale * scale)

    def merge(self, other: Moments) -> Moments:
        if not other.n:
            return self
        if not self.n:
            return other
        n = self.n + other.n
        delta = other.mean - self.mean
        return Moments(
            n, self.mean + delta * other.n / n, self.m2 + other.m2 + delta**2 * self.n * other.n / n
        )

    @property
    def std(self) -> float:
        """Population standard deviation (ddof 0), 0 without values."""
        return math.sqrt(max(self.m2, 0.0) / self.n) if self.n else 0.0


def merge_tree(parts: Sequence[Delayed]) -> Delayed:
    """One delayed partial: `parts` merged FAN_IN at a time, in a fixed order (the same result on every
    scheduler)."""
    level = list(parts)
    while len(level) > 1:
        level = [dask.delayed(merge_all)(*level[i : i + FAN_IN]) for i in range(0, len(level), FAN_IN)]
    return level[0]


def merge_all(*parts: PartialT) -> PartialT:
    return reduce(lambda left, right: left.merge(right), parts)
