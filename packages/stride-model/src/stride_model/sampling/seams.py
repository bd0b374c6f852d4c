"""How visible tile seams are: neighbour differences across seam lines against those well inside tiles.

`seam_ratio(fields, layout, lines)`: the mean absolute difference between neighbouring pixels that straddle
the layout's seam lines, divided by the same mean over neighbour pairs at least 3 pixels from any line,
pooled over rows and columns and every leading dimension (dates, members). 1: the seams cannot be told from
the rest of the field. Lines: 'cuts' (the middle of each overlap, where stitched tiles switch from one tile
to the next) or 'edges' (every inner tile edge, where a blended tile starts to contribute).
"""

from __future__ import annotations

import itertools
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from stride_model.sampling.tiling import TileLayout

Lines = Literal["cuts", "edges"]


def seam_lines(starts: tuple[int, ...], tile: int) -> tuple[list[int], list[int]]:
    """Along one axis: the stitch cuts and the inner tile edges, each as the index of the first pixel after
    the line (the pair straddling line i is (i - 1, i))."""
    cuts: list[int] = []
    edges: set[int] = set()
    for previous, start in itertools.pairwise(starts):
        overlap = previous + tile - start
        cuts.append(start + overlap // 2)
        edges.update((start, previous + tile))
    return cuts, sorted(edges)


def _pair_means(
    field: NDArray[np.floating], axis: int, lines: list[int], away_from: list[int]
) -> tuple[float, float]:
    diff = np.abs(np.diff(np.asarray(field, dtype=np.float64), axis=axis))  # pair (i - 1, i) at index i - 1
    far = np.ones(diff.shape[axis], dtype=bool)
    for line in away_from:
        far[max(0, line - 4) : line + 3] = False
    across = np.take(diff, [line - 1 for line in lines], axis=axis)
    inside = np.compress(far, diff, axis=axis)
    return float(across.mean()) if across.size else 0.0, float(inside.mean())


def seam_ratio(fields: NDArray[np.floating], layout: TileLayout, lines: Lines = "cuts") -> float:
    """Seam ratio of fields [..., H, W] (H, W: the layout's domain) at its 'cuts' or inner 'edges'."""
    if tuple(fields.shape[-2:]) != layout.domain:
        raise ValueError(
            f"fields {list(fields.shape[-2:])} are not the layout's domain {list(layout.domain)}"
        )
    rows_cut, rows_edge = seam_lines(layout.row_starts, layout.tile[0])
    cols_cut, cols_edge = seam_lines(layout.col_starts, layout.tile[1])
    rows, cols = (rows_cut, cols_cut) if lines == "cuts" else (rows_edge, cols_edge)
    if not rows and not cols:
        raise ValueError("seam_ratio: the layout has a single tile, so no seam")
    across_rows, inside_rows = _pair_means(fields, fields.ndim - 2, rows, sorted({*rows_cut, *rows_edge}))
    across_cols, inside_cols = _pair_means(fields, fields.ndim - 1, cols, sorted({*cols_cut, *cols_edge}))
    weights = np.array([len(rows), len(cols)], dtype=np.float64)
    across = float(np.average([across_rows, across_cols], weights=weights))
    inside = float(np.average([inside_rows, inside_cols], weights=weights))
    return across / inside
