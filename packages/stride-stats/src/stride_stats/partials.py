"""Partial statistics of one chunk at a time and their exact merges, reduced over a Dask array as a tree."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import reduce
from typing import Any, Protocol, Self, TypeVar

import dask
import dask.array as da
import numpy as np
from dask.delayed import Delayed

SLICE_VALUES = 1 << 20
"""Values of a chunk converted to float64 at a time, so the temporaries stay at a few times 8 MiB."""
FAN_IN = 8
"""Partials merged per task of the reduction tree."""


class Mergeable(Protocol):
    def merge(self, other: Self) -> Self: ...


PartialT = TypeVar("PartialT", bound=Mergeable)


@dataclass(frozen=True)
class Moments:
    """Count, mean and sum of squared deviations (M2), merged exactly (Chan, Golub & LeVeque 1979).

    Unlike sums of x and x^2, this loses nothing to cancellation when the mean is large against the spread.
    """

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0

    @classmethod
    def of(cls, x: np.ndarray) -> Moments:
        if x.size == 0:
            return cls()
        mean = float(x.mean())
        deviation = x - mean
        return cls(int(x.size), mean, float(deviation @ deviation))

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


def valid_slices(block: np.ndarray) -> Iterator[np.ndarray]:
    """The finite values of `block` as float64, at most about SLICE_VALUES at a time."""
    rows = block.reshape(1, -1) if block.ndim < 2 else block
    step = max(1, SLICE_VALUES // max(math.prod(rows.shape[1:]), 1))
    for start in range(0, rows.shape[0], step):
        values = np.asarray(rows[start : start + step], dtype=np.float64).ravel()
        yield values[np.isfinite(values)]


def reduce_blocks(values: da.Array, kernel: Callable[..., PartialT], **options: Any) -> Delayed:
    """kernel(block, chunk_location, **options) on every chunk, merged by a tree of `merge` calls.

    Each task holds one chunk and what the kernel makes of it, so memory is bounded by the chunk size
    times the number of workers, whatever the size of the array.
    """
    blocks = values.to_delayed().ravel()
    parts = [
        dask.delayed(kernel)(block, location, **options)
        for block, location in zip(blocks, np.ndindex(*values.numblocks), strict=True)
    ]
    while len(parts) > 1:
        parts = [dask.delayed(_merge_all)(*parts[i : i + FAN_IN]) for i in range(0, len(parts), FAN_IN)]
    return parts[0]


def _merge_all(*parts: PartialT) -> PartialT:
    return reduce(lambda left, right: left.merge(right), parts)
