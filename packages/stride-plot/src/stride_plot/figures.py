"""Quicklook and metric-summary figures, built as Agg Figure objects that never touch pyplot state."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from stride_core.maps import Extent, new_figure, placeholder, quicklook_figure, save_figure, with_units

__all__ = ["Extent", "metrics_summary_figure", "quicklook_figure", "save_figure"]

TRUTH_MODEL = "truth"
METRICS_TABLE_COLUMNS = ("model", "variable", "metric", "family", "date", "wavenumber", "units", "value")


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

    fig = new_figure((12.5, 3.9 * len(variables)))
    grid = fig.subplots(len(variables), 2, squeeze=False, gridspec_kw={"width_ratios": [1.25, 1.0]})
    for row, variable in enumerate(variables):
        rows = table[table["variable"] == variable]
        aggregate = rows[rows["date"].isna() & rows["wavenumber"].isna() & (rows["metric"] != "psd")]
        _metric_bars(grid[row][0], aggregate, colours, f"{variable}: aggregate metrics")
        psd = rows[(rows["metric"] == "psd") & rows["wavenumber"].notna()]
        _spectrum_lines(grid[row][1], psd, colours, f"{variable}: radially averaged power spectrum")
    return fig


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
        placeholder(ax, "no aggregate metrics")
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
            with_units(str(metric), units)
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
        placeholder(ax, "no 'psd' rows")
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
    ax.set_ylabel(with_units("power", _first(psd["units"])), fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(True, which="both", linewidth=0.3, alpha=0.5)
    ax.legend(fontsize=7)


def _first(column: pd.Series) -> Any:
    values = column.dropna()
    return values.iloc[0] if len(values) else None
