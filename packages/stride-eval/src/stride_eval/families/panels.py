"""Map panels of the family figures (score maps, quicklooks of chosen dates), styled from the registry.

The colour scales come from `stride_core.map_style`, as stride-plot's quicklooks do: a variable's own field
on its registry colour map and range (precipitation on 1-2-5 levels with dry white), signed differences on
a diverging scale centred on zero, non-negative scores from zero; NaN pixels (outside the truth's
coverage) light grey. Maps are drawn north-up whichever way the grid is stored, on lat/lon (or projected km)
axes, with the coastline from the land-sea mask (`stride_core.map_style.draw_map`). Line figures colour a
model alike in every figure (`EvalInputs.colours`) and tell thresholds apart by line style and marker
(`threshold_styles`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from stride_core.maps import PanelScale, colour_bar


def panel_colour_bar(fig: Figure, scale: PanelScale, axes: Sequence[Axes]) -> None:
    """One colour bar under `axes`, labelled with the scale's name and units (BoundaryNorm levels ticked)."""
    colour_bar(fig, scale, axes, shrink=0.9, aspect=25)


THRESHOLD_STYLES = (("-", "o"), ("--", "s"), (":", "^"), ("-.", "D"))


def threshold_styles(thresholds: Iterable[float | None]) -> dict[float | None, tuple[str, str]]:
    """(line style, marker) of each threshold, in ascending order (cycling), None first: the colour of a
    line stays its model's."""
    ordered = sorted(set(thresholds), key=lambda t: -math.inf if t is None else t)
    return {t: THRESHOLD_STYLES[i % len(THRESHOLD_STYLES)] for i, t in enumerate(ordered)}
