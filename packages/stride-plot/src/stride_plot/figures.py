"""Quicklook and metric-summary figures, built as Agg Figure objects that never touch pyplot state."""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Colormap, Normalize
from matplotlib.figure import Figure
from numpy.typing import NDArray

Extent = tuple[float, float, float, float]  # (lon_min, lon_max, lat_min, lat_max)

NAN_COLOUR = "lightgrey"
SAVE_DPI = 110
TRUTH_MODEL = "truth"
METRICS_TABLE_COLUMNS = ("model", "variable", "metric", "family", "date", "wavenumber", "units", "value")


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
) -> Figure:
    """One row of panels for one date and variable: LR input, HR truth, members 1-2, PMM, spread.

    All arrays are 2-D (lat, lon) with row 0 the northernmost, drawn with origin='upper' on
    `lr_extent` / `hr_extent` = (lon_min, lon_max, lat_min, lat_max). `members` is [m, H, W]; with
    m == 1 there is one member panel instead of two (5 panels, else 6). `truth=None` keeps its panel,
    which then reads 'no target'. `spread=None` computes the members' standard deviation (ddof=1;
    zero for a single member). The field panels share one colour scale and colour bar
    ("variable_label [units]"); `vmin`/`vmax` of None take the range of the data shown. The spread
    has its own scale from zero and its own colour bar. NaN pixels are light grey. `title` (which
    should carry the date) becomes the figure title.

    The figure holds the panels plus two colour-bar axes (8 axes, 7 with one member).
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

    m = members.shape[0]
    panels: list[tuple[str, NDArray[Any] | None, Extent]] = [
        (lr_label, lr_input, lr_extent),
        ("HR truth", truth, hr_extent),
        *((f"member {i + 1}", members[i], hr_extent) for i in range(min(m, 2))),
        (f"PMM ({m} member{'s' if m > 1 else ''})", pmm, hr_extent),
    ]
    shown = [data for _, data, _ in panels if data is not None]
    norm = Normalize(*_value_range(shown, vmin, vmax))
    field_cmap = _with_nan_colour(cmap)

    n_panels = len(panels) + 1
    panel_height = 2.8
    panel_width = min(max(panel_height * _display_aspect(hr_extent, hr_shape, geographic), 1.8), 4.5)
    fig = _new_figure((panel_width * n_panels + 0.8, panel_height + 1.3))
    axes: list[Axes] = list(fig.subplots(1, n_panels, squeeze=False)[0])
    for ax, (label, data, extent) in zip(axes, panels, strict=False):
        ax.set_title(label, fontsize=9)
        if data is None:
            _placeholder(ax, "no target")
            continue
        _show_map(ax, data, extent, field_cmap, norm, geographic)
    axes[0].set_xlabel(axis_labels[0], fontsize=8)
    axes[0].set_ylabel(axis_labels[1], fontsize=8)

    spread_ax = axes[-1]
    spread_ax.set_title("ensemble spread (std)", fontsize=9)
    spread_top = _value_range([spread], None, None)[1]
    spread_norm = Normalize(0.0, spread_top if spread_top > 0 else 1.0)
    spread_image = _show_map(spread_ax, spread, hr_extent, _with_nan_colour(spread_cmap), spread_norm)

    fig.colorbar(
        ScalarMappable(norm=norm, cmap=field_cmap),
        ax=axes[:-1],
        location="bottom",
        shrink=0.5,
        aspect=40,
        label=_with_units(variable_label, units),
    )
    fig.colorbar(
        spread_image, ax=spread_ax, location="bottom", shrink=0.9, label=_with_units("spread", units)
    )
    fig.suptitle(title)
    return fig


def metrics_summary_figure(table: pd.DataFrame) -> Figure:
    """Aggregate metrics per model as grouped bars (left) and power spectra (right), one row per variable.

    `table` is the long metrics table with columns model, variable, metric, family, date,
    wavenumber, units, value. Left panel: the rows with no date and no wavenumber (aggregates),
    one group per metric (ordered by family), one bar per model, each bar labelled with its value.
    Right panel: the rows with metric == 'psd' and a wavenumber, one log-log line per model
    (including 'truth', drawn in black); aggregate (undated) spectra are used when present, else the
    dated ones are averaged. A variable without spectrum or aggregate rows gets a panel saying so.
    """
    missing = [column for column in METRICS_TABLE_COLUMNS if column not in table.columns]
    if missing:
        raise ValueError(
            f"metrics table is missing column(s) {missing}; it has {list(table.columns)} "
            f"(expected {list(METRICS_TABLE_COLUMNS)})"
        )
    table = table.assign(
        value=pd.to_numeric(table["value"], errors="coerce"), family=table["family"].fillna("")
    )
    variables: list[Any] = list(pd.unique(table["variable"])) or [""]
    colours = _model_colours(list(pd.unique(table["model"])))

    fig = _new_figure((12.5, 3.9 * len(variables)))
    grid = fig.subplots(len(variables), 2, squeeze=False, gridspec_kw={"width_ratios": [1.25, 1.0]})
    for row, variable in enumerate(variables):
        rows = table[table["variable"] == variable]
        aggregate = rows[rows["date"].isna() & rows["wavenumber"].isna() & (rows["metric"] != "psd")]
        _metric_bars(grid[row][0], aggregate, colours, f"{variable}: aggregate metrics")
        psd = rows[(rows["metric"] == "psd") & rows["wavenumber"].notna()]
        _spectrum_lines(grid[row][1], psd, colours, f"{variable}: radially averaged power spectrum")
    return fig


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


def _new_figure(size: tuple[float, float]) -> Figure:
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


def _placeholder(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])


def _with_units(label: str, units: Any) -> str:
    return f"{label} [{units}]" if isinstance(units, str) and units.strip() else label


def _model_colours(models: Sequence[Any]) -> dict[Any, Any]:
    palette = matplotlib.colormaps["tab10"].colors  # type: ignore[attr-defined]
    others = [model for model in models if model != TRUTH_MODEL]
    colours: dict[Any, Any] = {model: palette[i % len(palette)] for i, model in enumerate(others)}
    colours[TRUTH_MODEL] = "black"
    return colours


def _metric_bars(ax: Axes, aggregate: pd.DataFrame, colours: dict[Any, Any], title: str) -> None:
    ax.set_title(title, fontsize=10)
    aggregate = aggregate[aggregate["value"].notna()]
    if aggregate.empty:
        _placeholder(ax, "no aggregate metrics")
        return
    # Groups ordered by family, then by first appearance; units are taken from a group's first row.
    groups = aggregate.drop_duplicates(["family", "metric"])
    family_rank = {family: i for i, family in enumerate(pd.unique(groups["family"]))}
    groups = groups.sort_values("family", key=lambda s: s.map(family_rank), kind="stable")
    means = aggregate.groupby(["family", "metric", "model"], sort=False, dropna=False)["value"].mean()
    models = list(pd.unique(aggregate["model"]))
    width = 0.8 / len(models)
    positions = np.arange(len(groups))
    for i, model in enumerate(models):
        heights = [
            float(means.get((family, metric, model), np.nan))
            for family, metric in zip(groups["family"], groups["metric"], strict=True)
        ]
        bars = ax.bar(
            positions + (i - (len(models) - 1) / 2) * width,
            heights,
            width,
            label=str(model),
            color=colours.get(model),
        )
        ax.bar_label(bars, labels=[f"{h:.3g}" if math.isfinite(h) else "" for h in heights], fontsize=6)
    ax.set_xticks(
        positions,
        [
            _with_units(str(metric), units)
            for metric, units in zip(groups["metric"], groups["units"], strict=False)
        ],
        rotation=30,
        ha="right",
    )
    ax.tick_params(axis="x", labelsize=7)
    ax.axhline(0.0, color="0.3", linewidth=0.6)
    ax.margins(y=0.15)
    ax.legend(fontsize=7)


def _spectrum_lines(ax: Axes, psd: pd.DataFrame, colours: dict[Any, Any], title: str) -> None:
    ax.set_title(title, fontsize=10)
    if psd["date"].isna().any():
        psd = psd[psd["date"].isna()]
    spectra = psd.groupby(["model", "wavenumber"], sort=False)["value"].mean().reset_index()
    spectra = spectra[spectra["value"] > 0]
    if spectra.empty:
        _placeholder(ax, "no 'psd' rows")
        return
    models = sorted(pd.unique(spectra["model"]), key=lambda model: model != TRUTH_MODEL)
    for model in models:
        line = spectra[spectra["model"] == model].sort_values("wavenumber")
        is_truth = model == TRUTH_MODEL
        ax.loglog(
            line["wavenumber"],
            line["value"],
            label=str(model),
            color=colours.get(model),
            linewidth=2.0 if is_truth else 1.4,
            zorder=3 if is_truth else 2,
        )
    ax.set_xlabel("wavenumber [cycles per domain side]", fontsize=8)
    ax.set_ylabel(_with_units("power", _first(psd["units"])), fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(True, which="both", linewidth=0.3, alpha=0.5)
    ax.legend(fontsize=7)


def _first(column: pd.Series) -> Any:
    values = column.dropna()
    return values.iloc[0] if len(values) else None
