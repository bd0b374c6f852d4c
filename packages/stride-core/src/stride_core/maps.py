"""Map panels shared by stride-plot and stride-train's inline quicklook: LR input, truth, members, PMM, spread."""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import BoundaryNorm, Colormap, Normalize, PowerNorm
from matplotlib.figure import Figure
from numpy.typing import NDArray

Extent = tuple[float, float, float, float]  # (lon_min, lon_max, lat_min, lat_max)

NAN_COLOUR = "lightgrey"
SAVE_DPI = 110


@dataclass(frozen=True)
class PanelScale:
    """How a field is coloured: colour map, norm, colour-bar label and colour-bar extension."""

    cmap: Colormap
    norm: Normalize
    label: str
    extend: Literal["neither", "both", "min", "max"] = "neither"


def quicklook_figure(
    *,
    lr_input: NDArray[Any],
    truth: NDArray[Any] | None,
    members: NDArray[Any],
    pmm: NDArray[Any],
    spread: NDArray[Any] | None,
    lr_extent: Extent,
    hr_extent: Extent,
    title: str,
    variable_label: str,
    units: str,
    cmap: str | Colormap,
    vmin: float | None,
    vmax: float | None,
    spread_cmap: str | Colormap = "viridis",
    lr_label: str = "LR input",
    geographic: bool = True,
    axis_labels: tuple[str, str] = ("lon", "lat"),
    scale: PanelScale | None = None,
    lr_scale: PanelScale | None = None,
    spread_scale: PanelScale | None = None,
    outline: NDArray[Any] | None = None,
    outline_level: float = 0.5,
    row0_north: bool = True,
) -> Figure:
    """One row of panels for one date and variable: LR input, HR truth, members 1-2, PMM, spread.

    All arrays are 2-D (lat, lon) with row 0 the northernmost (`row0_north=False`: row 0 the southernmost;
    the arrays are flipped so north is up either way), drawn on `lr_extent` / `hr_extent` = (lon_min,
    lon_max, lat_min, lat_max). `members` is [m, H, W]; with m == 1 there is one member panel instead of
    two (5 panels, else 6). `truth=None` keeps its panel, which then reads 'no target'. Where the truth is
    not finite (no data, outside coverage) the members, PMM and spread are masked too, as the truth is.
    `spread=None` computes the members' standard deviation (ddof=1; zero for a single member).

    The field panels share one colour scale and colour bar: `scale` when given, else `cmap` on a linear
    vmin..vmax ("variable_label [units]"; None takes the range of the data shown). `lr_scale` gives the LR
    panel a scale and colour bar of its own (an LR variable other than the target). The spread has its
    own scale (`spread_scale`, else linear from zero) and colour bar. NaN pixels are light grey.
    `outline` (an HR land fraction [H, W]) draws its `outline_level` contour, the coastline, on every
    panel. `title` (which should carry the date) becomes the figure title.

    The figure holds the panels plus two colour-bar axes (8 axes, 7 with one member), one more with
    `lr_scale`.
    """
    members = np.asarray(members)
    if members.ndim != 3 or members.shape[0] < 1:
        raise ValueError(f"members must be [m >= 1, H, W], got shape {members.shape}")
    hr_shape = members.shape[1:]
    lr_input = _check_2d("lr_input", lr_input, None, hr_shape)
    pmm = _check_2d("pmm", pmm, hr_shape, hr_shape)
    truth = None if truth is None else _check_2d("truth", truth, hr_shape, hr_shape)
    if spread is None:
        spread = _member_spread(members)
    spread = _check_2d("spread", spread, hr_shape, hr_shape)
    if outline is not None:
        outline = _check_2d("outline", outline, hr_shape, hr_shape)
    if truth is not None:
        # A pixel the truth does not cover was never supervised: show it grey in every panel alike.
        invalid = ~np.isfinite(truth)
        members = np.where(invalid, np.nan, members)
        pmm = np.where(invalid, np.nan, pmm)
        spread = np.where(invalid, np.nan, spread)
    if not row0_north:
        members = members[:, ::-1]
        lr_input, pmm, spread = lr_input[::-1], pmm[::-1], spread[::-1]
        truth = None if truth is None else truth[::-1]
        outline = None if outline is None else outline[::-1]

    m = members.shape[0]
    panels: list[tuple[str, NDArray[Any] | None, Extent]] = [
        (lr_label, lr_input, lr_extent),
        ("HR truth", truth, hr_extent),
        *((f"member {i + 1}", members[i], hr_extent) for i in range(min(m, 2))),
        (f"PMM ({m} member{'s' if m > 1 else ''})", pmm, hr_extent),
    ]
    if scale is None:
        shown = [data for _, data, _ in panels[0 if lr_scale is None else 1 :] if data is not None]
        scale = PanelScale(
            _with_nan_colour(cmap),
            Normalize(*_value_range(shown, vmin, vmax)),
            with_units(variable_label, units),
        )
    if spread_scale is None:
        spread_top = _value_range([spread], None, None)[1]
        spread_scale = PanelScale(
            _with_nan_colour(spread_cmap),
            Normalize(0.0, spread_top if spread_top > 0 else 1.0),
            with_units("spread", units),
        )

    n_panels = len(panels) + 1
    panel_height = 2.8
    panel_width = min(max(panel_height * _display_aspect(hr_extent, hr_shape, geographic), 1.8), 4.5)
    fig = new_figure((panel_width * n_panels + 0.8, panel_height + 1.5))
    axes: list[Axes] = list(fig.subplots(1, n_panels, squeeze=False)[0])
    for i, (ax, (label, data, extent)) in enumerate(zip(axes, panels, strict=False)):
        ax.set_title(label, fontsize=9)
        if data is None:
            placeholder(ax, "no target")
            continue
        panel_scale = lr_scale if i == 0 and lr_scale is not None else scale
        _show_map(ax, data, extent, panel_scale.cmap, panel_scale.norm, geographic)
        _draw_outline(ax, outline, hr_extent, outline_level)
    axes[0].set_xlabel(axis_labels[0], fontsize=8)
    axes[0].set_ylabel(axis_labels[1], fontsize=8)

    spread_ax = axes[-1]
    spread_ax.set_title("ensemble spread (std)", fontsize=9)
    _show_map(spread_ax, spread, hr_extent, spread_scale.cmap, spread_scale.norm, geographic)
    _draw_outline(spread_ax, outline, hr_extent, outline_level, colour="white")  # over dark viridis

    field_axes = axes[:-1] if lr_scale is None else axes[1:-1]
    colour_bar(fig, scale, field_axes, shrink=0.5 if lr_scale is None else 0.6, aspect=40)
    if lr_scale is not None:
        colour_bar(fig, lr_scale, [axes[0]], shrink=0.9, aspect=20)
    colour_bar(fig, spread_scale, [spread_ax], shrink=0.9, aspect=20)
    fig.suptitle(title)
    return fig


def colour_bar(fig: Figure, scale: PanelScale, axes: Sequence[Axes], *, shrink: float, aspect: float) -> None:
    bar = fig.colorbar(
        ScalarMappable(norm=scale.norm, cmap=scale.cmap),
        ax=list(axes),
        location="bottom",
        shrink=shrink,
        aspect=aspect,
        extend=scale.extend,
        label=scale.label,
    )
    bar.ax.tick_params(labelsize=7)
    if isinstance(scale.norm, BoundaryNorm):
        bar.set_ticks(list(scale.norm.boundaries), labels=[f"{b:g}" for b in scale.norm.boundaries])
    elif isinstance(scale.norm, PowerNorm):
        ticks = power_ticks(scale.norm)
        bar.set_ticks(ticks, labels=[f"{t:g}" for t in ticks])


def power_ticks(norm: PowerNorm, n: int = 4) -> list[float]:
    """Colour-bar ticks of a power-law (square-root) bar: its lower end and the top `n` values of the 1-2-5
    series up to its upper end (linear ticks crowd at the top of such a bar)."""
    low, high = float(norm.vmin), float(norm.vmax)  # type: ignore[arg-type]
    if not high > low:
        return [low]
    top = math.floor(math.log10(high)) if high > 0 else 0
    series = [m * 10.0**e for e in range(top - 3, top + 1) for m in (1, 2, 5)]
    return [low, *[float(f"{v:.3g}") for v in series if low < v <= high][-n:]]


def _draw_outline(
    ax: Axes, field: NDArray[Any] | None, extent: Extent, level: float, colour: str = "0.15"
) -> None:
    """The `level` contour of `field` (row 0 north) over the panel: coastlines from a land-sea mask."""
    if field is None or not np.isfinite(field).any():
        return
    finite = field[np.isfinite(field)]
    if not finite.min() < level < finite.max():
        return  # all land or all sea: no coastline in this box
    ax.contour(
        np.nan_to_num(field, nan=0.0),
        levels=[level],
        extent=extent,
        origin="upper",
        colors=colour,
        linewidths=0.6,
    )
    # contour autoscales to the cell centres; keep the image's cell-edge limits.
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])


def save_figure(fig: Figure, path: str | os.PathLike[str]) -> Path:
    """Write `fig` as a PNG at 110 dpi to `path` atomically, creating its folder; return the path.

    The image goes to a hidden temporary file in the same folder first and is moved onto `path`
    with os.replace, so a reader never sees a half-written file.
    """
    final = Path(path)
    if final.suffix.lower() != ".png":
        raise ValueError(f"{final}: save_figure writes PNG images; give a file name ending in .png")
    final.parent.mkdir(parents=True, exist_ok=True)
    handle, staging = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".partial", dir=final.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            fig.savefig(stream, format="png", dpi=SAVE_DPI)
        os.chmod(staging, 0o644)  # mkstemp makes it private; a plot is for everyone to read
        os.replace(staging, final)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise
    return final


def new_figure(size: tuple[float, float]) -> Figure:
    """A Figure drawn by Agg and unknown to pyplot, so nothing accumulates in pyplot's figure list."""
    fig = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _check_2d(
    name: str, data: NDArray[Any], expected: tuple[int, ...] | None, members_shape: tuple[int, ...]
) -> NDArray[Any]:
    array = np.asarray(data)
    if array.ndim != 2 or (expected is not None and array.shape != expected):
        want = "2-D" if expected is None else f"shape {expected}"
        raise ValueError(
            f"{name} must be {want} (members shape [m, H, W] has H, W = {members_shape}), "
            f"got shape {array.shape}"
        )
    return array


def _member_spread(members: NDArray[Any]) -> NDArray[Any]:
    if members.shape[0] == 1:
        return np.where(np.isnan(members[0]), np.nan, 0.0)
    return np.std(members, axis=0, ddof=1)


def _value_range(
    arrays: Sequence[NDArray[Any]], vmin: float | None, vmax: float | None
) -> tuple[float, float]:
    """(vmin, vmax) with None replaced by the finite range of `arrays`; never an empty interval."""
    finite = [a[np.isfinite(a)] for a in arrays]
    values = np.concatenate(finite) if finite else np.empty(0)
    low = vmin if vmin is not None else (float(values.min()) if values.size else 0.0)
    high = vmax if vmax is not None else (float(values.max()) if values.size else 1.0)
    if high <= low:
        high = low + 1.0
    return low, high


def _with_nan_colour(cmap: str | Colormap) -> Colormap:
    base = matplotlib.colormaps[cmap] if isinstance(cmap, str) else cmap
    return base.with_extremes(bad=NAN_COLOUR)


def _lat_aspect(extent: Extent, geographic: bool) -> float | None:
    """Axes aspect (y unit / x unit) that shows lon/lat degrees at true local scale; None for projected x/y."""
    mid_lat = 0.5 * (extent[2] + extent[3])
    return 1.0 / math.cos(math.radians(mid_lat)) if geographic and abs(mid_lat) < 85 else None


def _display_aspect(extent: Extent, shape: tuple[int, ...], geographic: bool = True) -> float:
    """Width / height of a map panel drawn with `_show_map`."""
    width, height = abs(extent[1] - extent[0]), abs(extent[3] - extent[2])
    aspect = _lat_aspect(extent, geographic)
    if width == 0 or height == 0:
        return shape[1] / shape[0]
    return width / (height * (aspect if aspect is not None else 1.0))


def _show_map(
    ax: Axes, data: NDArray[Any], extent: Extent, cmap: Colormap, norm: Normalize, geographic: bool = True
) -> Any:
    # Degrees of longitude shrink with latitude; projected metres are drawn at equal scale.
    aspect = _lat_aspect(extent, geographic)
    image = ax.imshow(
        data,
        origin="upper",
        extent=extent,
        cmap=cmap,
        norm=norm,
        interpolation="nearest",
        aspect="equal" if aspect is None else aspect,
    )
    ax.tick_params(labelsize=7)
    return image


def placeholder(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])


def with_units(label: str, units: Any) -> str:
    return f"{label} [{units}]" if isinstance(units, str) and units.strip() else label
