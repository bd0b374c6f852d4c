"""Map panels of the family figures (score maps, quicklooks of chosen dates), styled from the registry.

The colour scales come from `stride_core.map_style`, as stride-plot's quicklooks do: a variable's own field
on its registry colour map and range (precipitation on 1-2-5 levels with dry white), signed differences on
a diverging scale centred on zero, non-negative scores from zero; NaN pixels (outside the truth's
coverage) light grey. Maps are drawn north-up whichever way the grid is stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from numpy.typing import NDArray

from stride_core.maps import PanelScale, colour_bar


def show_panel(ax: Axes, field: NDArray[Any], scale: PanelScale, title: str, lat_descending: bool) -> None:
    """`field` [H, W] on `ax` with `scale`, north up (row 0 is north when `lat_descending`)."""
    ax.imshow(
        np.asarray(field, dtype=np.float64),
        cmap=scale.cmap,
        norm=scale.norm,
        origin="upper" if lat_descending else "lower",
        interpolation="nearest",
    )
    ax.set_title(title, fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])


def panel_colour_bar(fig: Figure, scale: PanelScale, axes: Sequence[Axes]) -> None:
    """One colour bar under `axes`, labelled with the scale's name and units (BoundaryNorm levels ticked)."""
    colour_bar(fig, scale, axes, shrink=0.9, aspect=25)
