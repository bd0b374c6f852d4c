"""Colour scales of map panels from the variable registry: colour map, range, units and a precipitation scale;
where a map lies (`MapFrame`: lat/lon or projected km axes, coastlines from the land-sea mask); one colour
per model in every line and bar figure (`model_colours`).

Shared by stride-plot's quicklooks and stride-eval's family figures (score maps, quicklooks of chosen dates).

Precipitation is drawn on discrete 1-2-5 levels (BoundaryNorm) starting at a small wet level, with values
below it (dry, zero) white: on a linear scale light rain, which is most of the rain, is indistinguishable from
no rain. Other variables use the registry's `plot_range`, so every date of a run shares one scale, unless the
data fall mostly outside it or fill only a sliver of it (a regional March t2m on a global 260-300 K range),
where the 1st-99th percentiles of the data are used instead. Diverging colour maps are centred on zero.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import matplotlib
import numpy as np
import xarray as xr
from matplotlib.axes import Axes
from matplotlib.colors import BoundaryNorm, ListedColormap, Normalize, PowerNorm
from numpy.typing import NDArray

from stride_contracts import SamplesManifest
from stride_core.errors import ConfigError
from stride_core.maps import NAN_COLOUR, Extent, PanelScale, _draw_outline, _show_map
from stride_core.variables import VariableSpec

Extend = Literal["neither", "both", "min", "max"]

DIVERGING_CMAPS = frozenset(
    {
        "PuOr",
        "RdBu",
        "RdBu_r",
        "BrBG",
        "BrBG_r",
        "PuOr_r",
        "coolwarm",
        "bwr",
        "seismic",
        "PiYG",
        "PRGn",
        "RdGy",
    }
)
DRY_COLOUR = "white"
MIN_RANGE_SHARE = 0.5
"""The data's 1st-99th percentile span must cover this share of plot_range for plot_range to be used."""


def is_precipitation(spec: VariableSpec | None, units: str = "") -> bool:
    """A precipitation-like variable: in the registry's 'precipitation' group (pr, precip, prsn, ...)."""
    if spec is not None:
        return "precipitation" in spec.groups or (spec.standard_name or "").endswith("precipitation_rate")
    return units.replace(" ", "") in {"mmh-1", "mm/h", "mmday-1", "mm/day", "mm"}


def precipitation_levels(top: float) -> list[float]:
    """1-2-5 levels from about top/100 (the first wet level) to the first level at or above `top`."""
    top = top if math.isfinite(top) and top > 0 else 10.0
    first = _one_two_five_below(top / 100.0)
    levels = [first]
    while levels[-1] < top * (1 - 1e-9):
        levels.append(_next_one_two_five(levels[-1]))
    return levels


def _one_two_five_below(value: float) -> float:
    decade = 10.0 ** math.floor(math.log10(value))
    return max(step * decade for step in (1.0, 2.0, 5.0) if step * decade <= value * (1 + 1e-9))


def _next_one_two_five(value: float) -> float:
    decade = 10.0 ** math.floor(math.log10(value) + 1e-9)
    mantissa = round(value / decade)
    return {1: 2.0, 2: 5.0}.get(mantissa, 10.0) * decade


def field_style(
    spec: VariableSpec | None,
    units: str,
    data: Sequence[NDArray[Any]],
    *,
    label: str | None = None,
) -> PanelScale:
    """The style of a variable's field panels, from its registry entry and the values to be drawn."""
    name = label or (spec.long_name if spec else "value")
    text = f"{name} [{units}]" if units.strip() else name
    cmap_name = spec.cmap if spec else "viridis"
    finite = _finite(data)
    if is_precipitation(spec, units):
        top = spec.plot_range[1] if spec and spec.plot_range else _percentile(finite, 99.5, 10.0)
        levels = precipitation_levels(top)
        # The lightest wet level must stand out from the white of dry pixels: skip the palest colours.
        base = matplotlib.colormaps[cmap_name]
        colours = base(np.linspace(0.3, 1.0, len(levels) - 1))
        cmap = ListedColormap(colours).with_extremes(under=DRY_COLOUR, over=base(1.0), bad=NAN_COLOUR)
        return PanelScale(cmap, BoundaryNorm(levels, cmap.N), text, "both")
    low, high = _range(spec, finite)
    if cmap_name in DIVERGING_CMAPS and low < 0 < high:
        bound = max(-low, high)
        low, high = -bound, bound
    cmap = matplotlib.colormaps[cmap_name].with_extremes(bad=NAN_COLOUR)
    return PanelScale(cmap, Normalize(low, high), text, _extension(finite, low, high))


def spread_style(spread: NDArray[Any], units: str, precipitation: bool) -> PanelScale:
    """The ensemble spread's own scale from zero: square-root for precipitation (skewed like the rain)."""
    return _from_zero([spread], "viridis", _labelled("spread (std)", units), precipitation)


def difference_style(
    data: Sequence[NDArray[Any]], units: str, label: str, precipitation: bool = False
) -> PanelScale:
    """A signed difference (a bias map): diverging, centred on zero, symmetric about the 99th percentile
    of |value| (one outlier pixel does not wash the map out). Brown-green for precipitation (too dry /
    too wet), blue-red otherwise (too cold / too warm)."""
    magnitude = np.abs(_finite(data))
    bound = _percentile(magnitude, 99.0, 1.0)
    bound = bound if bound > 0 else 1.0
    cmap = matplotlib.colormaps["BrBG" if precipitation else "RdBu_r"].with_extremes(bad=NAN_COLOUR)
    extend: Extend = "both" if magnitude.size and magnitude.max() > bound else "neither"
    return PanelScale(cmap, Normalize(-bound, bound), _labelled(label, units), extend)


def magnitude_style(
    data: Sequence[NDArray[Any]], units: str, label: str, precipitation: bool = False
) -> PanelScale:
    """A non-negative score map (RMSE, MAE): its own scale from zero (see `_from_zero`)."""
    return _from_zero(data, "magma_r", _labelled(label, units), precipitation)


def _from_zero(data: Sequence[NDArray[Any]], cmap_name: str, label: str, precipitation: bool) -> PanelScale:
    """Zero to the data's 99th percentile, square-root for precipitation (its errors and spread are as
    skewed as the rain), NaN grey."""
    top = _percentile(_finite(data), 99.0, 1.0)
    top = top if top > 0 else 1.0
    norm: Normalize = PowerNorm(0.5, 0.0, top) if precipitation else Normalize(0.0, top)
    cmap = matplotlib.colormaps[cmap_name].with_extremes(bad=NAN_COLOUR)
    return PanelScale(cmap, norm, label, "max")


def _labelled(label: str, units: str) -> str:
    return f"{label} [{units}]" if units.strip() else label


def _finite(data: Sequence[NDArray[Any]]) -> NDArray[np.float64]:
    parts = [np.asarray(a, dtype=np.float64).ravel() for a in data]
    values = np.concatenate(parts) if parts else np.empty(0)
    return values[np.isfinite(values)]


def _percentile(values: NDArray[np.float64], q: float, default: float) -> float:
    return float(np.percentile(values, q)) if values.size else default


def _range(spec: VariableSpec | None, finite: NDArray[np.float64]) -> tuple[float, float]:
    """plot_range when the data sit in it and span a fair share of it, else the data's 1st-99th percentiles."""
    if finite.size:
        p1, p99 = (float(v) for v in np.percentile(finite, [1, 99]))
    else:
        p1, p99 = 0.0, 1.0
    if spec is not None and spec.plot_range is not None:
        low, high = spec.plot_range
        inside = low <= p1 and p99 <= high
        if (inside and (p99 - p1) >= MIN_RANGE_SHARE * (high - low)) or not finite.size:
            return float(low), float(high)
    if p99 <= p1:
        p99 = p1 + (abs(p1) * 1e-3 or 1.0)
    return p1, p99


def _extension(finite: NDArray[np.float64], low: float, high: float) -> Extend:
    below = bool(finite.size and finite.min() < low)
    above = bool(finite.size and finite.max() > high)
    return "both" if below and above else "min" if below else "max" if above else "neither"


MODEL_COLOURS = {
    "truth": "black",
    "stride": "tab:blue",
    "regression": "tab:orange",
    "bicubic": "tab:green",
    "bilinear": "tab:olive",
    "climatology": "tab:gray",
    "qdm": "tab:purple",
}
"""The fixed colour of each model label stride-eval writes by itself (the truth black)."""
OTHER_COLOURS = ("tab:red", "tab:brown", "tab:pink", "tab:cyan", "gold", "navy", "lime", "teal", "salmon")
"""Colours of the other labels (--compare, --label), given in sorted order of those labels."""


def model_colours(models: Iterable[Any]) -> dict[str, str]:
    """One colour per model, keyed in the order given: MODEL_COLOURS for the known labels, OTHER_COLOURS to
    the others in sorted order (cycling), so a label keeps its colour in every figure drawn from the same set
    of models whatever order the figures list them in."""
    names = [str(m) for m in dict.fromkeys(models)]
    others = sorted(n for n in names if n not in MODEL_COLOURS)
    other = {n: OTHER_COLOURS[i % len(OTHER_COLOURS)] for i, n in enumerate(others)}
    return {n: MODEL_COLOURS.get(n) or other[n] for n in names}


LAND_MASKS = ("lsm", "sftlf", "lsm_era5")
"""Statics taken as the land fraction to outline when none is named: ERA5's lsm, CMIP's sftlf (in %)."""


@dataclass(frozen=True)
class MapFrame:
    """Where the HR map panels lie: the cell-edge `extent` (left, right, bottom, top) in degrees on lat/lon
    grids or km on projected ones (None: pixel indices), and the land fraction [H, W] (rows as stored)
    whose 0.5 contour is drawn as the coastline (None: no outline)."""

    extent: Extent | None = None
    geographic: bool = True
    land: NDArray[Any] | None = None
    row0_north: bool = True

    @property
    def axis_labels(self) -> tuple[str, str]:
        if self.extent is None:
            return "x [pixel]", "y [pixel]"
        return ("longitude [deg E]", "latitude [deg N]") if self.geographic else ("x [km]", "y [km]")


def cell_extent(rows: NDArray[Any], cols: NDArray[Any]) -> Extent:
    """Cell-edge extent (left, right, bottom, top) from 1-D cell-centre coordinates."""
    half_row = abs(rows[1] - rows[0]) / 2 if len(rows) > 1 else 0.5
    half_col = abs(cols[1] - cols[0]) / 2 if len(cols) > 1 else 0.5
    return (
        float(cols.min() - half_col),
        float(cols.max() + half_col),
        float(rows.min() - half_row),
        float(rows.max() + half_row),
    )


def grid_extent(rows: NDArray[Any], cols: NDArray[Any], projected: bool) -> Extent:
    """Cell-edge extent of 1-D cell centres: degrees on lat/lon grids, kilometres (from metres) on projected ones."""
    unit = 1000.0 if projected else 1.0
    return cell_extent(np.asarray(rows, dtype=np.float64) / unit, np.asarray(cols, dtype=np.float64) / unit)


def map_extents(samples: xr.Dataset, projected: bool) -> tuple[Extent, Extent]:
    """HR and LR extents: degrees on lat/lon grids, kilometres of the projection on projected ones."""
    rows, cols = ("y", "x") if projected else ("lat", "lon")
    return (
        grid_extent(samples[rows].values, samples[cols].values, projected),
        grid_extent(samples[f"{rows}_lr"].values, samples[f"{cols}_lr"].values, projected),
    )


def static_field(samples: xr.Dataset, manifest: SamplesManifest, name: str) -> NDArray[np.float64]:
    statics = [v.name for v in manifest.static]
    if name not in statics:
        raise ConfigError(
            f"static '{name}' is not in the samples (they hold {statics or 'no statics'}); name one of them"
        )
    return np.asarray(samples["cond_static"].values[statics.index(name)], dtype=np.float64)


def land_fraction(
    samples: xr.Dataset, manifest: SamplesManifest, name: str | None
) -> NDArray[np.float64] | None:
    """The land fraction (0..1) of static `name`, or of the first of LAND_MASKS present; None without one."""
    statics = {v.name: v for v in manifest.static}
    if name is None:
        name = next((candidate for candidate in LAND_MASKS if candidate in statics), None)
        if name is None:
            return None
    field = static_field(samples, manifest, name)
    return field / 100.0 if statics[name].units.strip() == "%" else field


def map_frame(
    samples: xr.Dataset, manifest: SamplesManifest, land_mask: str | None = None, *, outline: bool = True
) -> MapFrame:
    """The HR `MapFrame` of a samples store: its 1-D lat/lon (or projected y/x in metres) cell centres, the
    land fraction of `land_mask` (else the first of LAND_MASKS), the grid's orientation. Without 1-D
    coordinates the panels keep pixel axes."""
    projected = manifest.grid.kind == "projected"
    names = ("y", "x") if projected else ("lat", "lon")
    coords = [samples.coords.get(n, samples.get(n)) for n in names]
    extent = None
    if all(c is not None and c.ndim == 1 and c.size for c in coords):
        extent = grid_extent(coords[0].values, coords[1].values, projected)
    return MapFrame(
        extent=extent,
        geographic=not projected,
        land=land_fraction(samples, manifest, land_mask) if outline else None,
        row0_north=manifest.grid.lat_descending,
    )


def draw_map(
    ax: Axes,
    field: NDArray[Any],
    scale: PanelScale,
    frame: MapFrame,
    title: str,
    *,
    xlabel: bool = True,
    ylabel: bool = True,
) -> None:
    """`field` [H, W] (rows as stored) on `ax`, north up, on the frame's lat/lon or km axes (labelled where
    asked), with the coastline of its land fraction; NaN pixels grey (the scale's bad colour)."""
    data = np.asarray(field, dtype=np.float64)
    land = frame.land
    if not frame.row0_north:
        data = data[::-1]
        land = None if land is None else land[::-1]
    if frame.extent is None:
        ax.imshow(data, cmap=scale.cmap, norm=scale.norm, origin="upper", interpolation="nearest")
        ax.tick_params(labelsize=6)
    else:
        _show_map(ax, data, frame.extent, scale.cmap, scale.norm, frame.geographic)
        ax.tick_params(labelsize=6)
        if land is not None and land.shape == data.shape:
            _draw_outline(ax, land, frame.extent, 0.5)
    ax.set_title(title, fontsize=8)
    if xlabel:
        ax.set_xlabel(frame.axis_labels[0], fontsize=7)
    if ylabel:
        ax.set_ylabel(frame.axis_labels[1], fontsize=7)
