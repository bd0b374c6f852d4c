"""The aligned histogram: parts merge to the histogram of all values (checked with np.histogram on its edges),
whatever the pilot's width, and the width stays under range / bins."""

from __future__ import annotations

import numpy as np
import pytest

from stride_stats.histogram import AlignedHistogram
from stride_stats.kernels import value_sums


def filled(template: AlignedHistogram, x: np.ndarray) -> AlignedHistogram:
    part, inverse = template.empty_for(float(x.min()), float(x.max()))
    # The fill stride-stats uses; low = -inf: no value is an atom, all are counted.
    value_sums(x, template.origin, -np.inf, np.nan, inverse, part.first, part.counts)
    return part


@pytest.mark.parametrize("w0", [0.01, 1e-7])  # right pilot width; one far too fine (rises 17 levels)
def test_parts_merge_to_the_histogram_of_all_values(w0: float) -> None:
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 1, 5000), rng.normal(40, 3, 100)])  # a far second mode
    template = AlignedHistogram(origin=0.3, w0=w0, max_bins=401)
    parts = [filled(template, chunk) for chunk in np.array_split(rng.permutation(x), 7)]
    merged = parts[0]
    for part in parts[1:]:
        merged = merged.merge(part)
    backwards = parts[-1]
    for part in parts[-2::-1]:
        backwards = backwards.merge(part)
    assert merged.level == backwards.level and merged.first == backwards.first
    np.testing.assert_array_equal(merged.counts, backwards.counts)
    assert merged.counts.sum() == x.size and merged.counts.size <= 401
    assert merged.width < 2 * (x.max() - x.min()) / 400  # the level is no higher than needed
    reference, _ = np.histogram(x, bins=merged.edges())
    # np.histogram's own edge arithmetic may put a value at an edge one bin over; nothing more.
    assert np.abs(merged.counts - reference).sum() <= 2
    assert reference.sum() == x.size


def test_a_value_goes_to_the_same_bin_in_every_part() -> None:
    template = AlignedHistogram(origin=0.0, w0=0.1, max_bins=1000)
    a, b = filled(template, np.array([0.05, 0.25, 0.35])), filled(template, np.array([0.25, 7.05]))
    merged = a.merge(b)
    edges = merged.edges()
    index = np.searchsorted(edges, 0.25, side="right") - 1
    assert merged.counts[index] == 2 and merged.counts.sum() == 5


def test_add_at_coarsens_the_bin_number() -> None:
    template = AlignedHistogram(origin=0.0, w0=1.0, max_bins=8)
    fine = filled(template, np.array([0.5, 6.5]))  # level 0, bins 0..6
    coarse = fine.merge(filled(template, np.array([20.0, 30.0])))  # 0..30 needs level 2 (bins of width 4)
    assert coarse.level == 2
    bumped = coarse.add_at(6, 0, 3)  # fine bin 6 lies in coarse bin 1
    assert bumped.counts[1 - bumped.first] == coarse.counts[1 - coarse.first] + 3
