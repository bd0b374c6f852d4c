"""A mergeable histogram on one global grid of bins whose width doubles when the values outgrow it.

Bin k covers [origin + k w, origin + (k + 1) w) with w = w0 2^level. Every part (one task's values) uses the
same origin and w0, so two parts merge exactly: the finer one is coarsened to the other's level by
integer halving of its bin numbers (k >> steps, floor for negative k too) and the counts are added. The width
w0 comes from a small pilot sample (stride_stats.compute) and may be too fine for the whole data; the level
then rises until the bins holding [min, max] number at most `max_bins`, so the final width is below
2 (max - min) / (max_bins - 1) whatever the pilot saw, and never above w0 when the pilot's range was right.
Filling is one compiled loop (stride_stats.kernels.value_sums) that computes each value's bin number and
counts it: no search over the edges as np.histogram does.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np

_SAFE_INDEX = 2.0**50
"""Largest bin number computed in float64: beyond it the level rises, so floor() stays exact."""


@dataclass(frozen=True)
class AlignedHistogram:
    """Counts of bins first .. first + len(counts) - 1 at `level` (empty: no counts)."""

    origin: float
    w0: float
    max_bins: int
    level: int = 0
    first: int = 0
    counts: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @property
    def width(self) -> float:
        return self.w0 * 2.0**self.level

    def bin_of(self, x: float) -> int:
        return math.floor((x - self.origin) / self.width)

    def level_for(self, low: float, high: float, level: int = 0) -> int:
        """The lowest level >= `level` whose bins over [low, high] number at most max_bins."""
        while True:
            width = self.w0 * 2.0**level
            a, b = (low - self.origin) / width, (high - self.origin) / width
            if max(abs(a), abs(b)) < _SAFE_INDEX and math.floor(b) - math.floor(a) + 1 <= self.max_bins:
                return level
            level += 1

    def empty_for(self, low: float, high: float) -> tuple[AlignedHistogram, float]:
        """An empty histogram spanning [low, high] and the reciprocal of its width (kernels.bin_position)."""
        level = self.level_for(low, high, self.level)
        part = AlignedHistogram(self.origin, self.w0, self.max_bins, level)
        first, last = part.bin_of(low), part.bin_of(high)
        counts = np.zeros(last - first + 1, dtype=np.int64)
        return AlignedHistogram(self.origin, self.w0, self.max_bins, level, first, counts), 1.0 / part.width

    def add_at(self, bin_number: int, level: int, count: int) -> AlignedHistogram:
        """A copy with `count` more in the bin that holds bin `bin_number` of `level` (<= self.level)."""
        counts = self.counts.copy()
        counts[(bin_number >> (self.level - level)) - self.first] += count
        return dataclasses.replace(self, counts=counts)

    def coarsened(self, level: int) -> AlignedHistogram:
        if level == self.level:
            return self
        if self.counts.size == 0:
            return dataclasses.replace(self, level=level, first=0)
        steps = level - self.level
        index = (self.first + np.arange(self.counts.size, dtype=np.int64)) >> steps
        first = int(index[0])
        counts = np.bincount(index - first, weights=self.counts).astype(np.int64)
        return AlignedHistogram(self.origin, self.w0, self.max_bins, level, first, counts)

    def merge(self, other: AlignedHistogram) -> AlignedHistogram:
        if other.counts.size == 0:
            return self if self.level >= other.level else self.coarsened(other.level)
        if self.counts.size == 0:
            return other if other.level >= self.level else other.coarsened(self.level)
        level = max(self.level, other.level)
        while True:
            a, b = self.coarsened(level), other.coarsened(level)
            first = min(a.first, b.first)
            last = max(a.first + a.counts.size, b.first + b.counts.size)
            if last - first <= self.max_bins:
                break
            level += 1
        counts = np.zeros(last - first, dtype=np.int64)
        counts[a.first - first : a.first - first + a.counts.size] += a.counts
        counts[b.first - first : b.first - first + b.counts.size] += b.counts
        return AlignedHistogram(self.origin, self.w0, self.max_bins, level, first, counts)

    def edges(self) -> np.ndarray:
        """Bin edges of `counts` (len(counts) + 1 values)."""
        return self.origin + (self.first + np.arange(self.counts.size + 1, dtype=np.float64)) * self.width
