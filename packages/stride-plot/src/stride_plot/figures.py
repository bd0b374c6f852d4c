"""Quicklook and metric-summary figures, built as Agg Figure objects that never touch pyplot state."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from stride_contracts import METRIC_QUALIFIERS
from stride_core.map_style import model_colours
from stride_core.maps import Extent, new_figure, placeholder, quicklook_figure, save_figure, with_units

__all__ = ["Extent", "metrics_summary_figure", "quicklook_figure", "save_figure"]

TRUTH_MODEL = "truth"
METRICS_TABLE_COLUMNS = ("model", "variable", "metric", "family", "date", "wavenumber", "units", "value")


def metrics_summary_figure(table: pd.DataFrame, *, columns: int = 5) -> Figure:
    """Headline metrics per model as small bar panels (one per metric, each on its own scale) and the power
    spectra, one block of panels per variable.

    `table` is the long metrics table (model, variable, metric, family, date, wavenumber, units, value and,
    where present, the other METRIC_QUALIFIERS). Bars: the headline aggregates, the rows with no qualifier
    set (a Brier score at 1 mm/h and one at 10 mm/h, or a score pooled at 4x, are other quantities and
    never share a bar), one panel per (family, metric) titled 'metric [units]', one bar per model labelled
    with its value. Spectrum: the rows with metric == 'psd', a wavenumber and no qualifier but the date,
    one log-log line per model ('truth' in black); undated spectra when present, else the dated ones
    averaged. A variable without headline or spectrum rows gets a panel saying so.
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
    qualifiers = [column for column in METRIC_QUALIFIERS if column in table.columns]
    unqualified = table[qualifiers].isna().all(axis=1)
    others_unset = table[[q for q in qualifiers if q not in ("date", "wavenumber")]].isna().all(axis=1)
    variables: list[Any] = list(pd.unique(table["variable"])) or [""]
    colours: dict[Any, Any] = model_colours(pd.unique(table["model"]))

    blocks = []
    for variable in variables:
        of_variable = table["variable"] == variable
        aggregate = table[of_variable & unqualified & (table["metric"] != "psd") & table["value"].notna()]
        psd = table[of_variable & others_unset & (table["metric"] == "psd") & table["wavenumber"].notna()]
        groups = aggregate.drop_duplicates(["family", "metric"])[["family", "metric", "units"]]
        blocks.append((variable, aggregate, psd, groups))
    rows_of = [max(1, math.ceil(len(groups) / columns)) for *_, groups in blocks]
    fig = new_figure((3.1 * (columns + 2), sum(2.3 * r + 0.5 for r in rows_of)))
    subfigs = fig.subfigures(len(blocks), 1, squeeze=False, height_ratios=[2.3 * r + 0.5 for r in rows_of])
    for (variable, aggregate, psd, groups), n_rows, subfig in zip(
        blocks, rows_of, subfigs[:, 0], strict=True
    ):
        grid = subfig.add_gridspec(n_rows, columns + 2)
        _spectrum_lines(
            subfig.add_subplot(grid[:, :2]), psd, colours, f"{variable}: radially averaged power spectrum"
        )
        if groups.empty:
            placeholder(subfig.add_subplot(grid[:, 2:]), "no headline metrics")
        for i, (family, metric, units) in enumerate(groups.itertuples(index=False)):
            ax = subfig.add_subplot(grid[i // columns, 2 + i % columns])
            rows = aggregate[(aggregate["family"] == family) & (aggregate["metric"] == metric)]
            _metric_bars(ax, rows, colours, f"{with_units(str(metric), units)} ({family})")
        subfig.suptitle(f"{variable}: headline metrics (no threshold, scale, quantile or lag)", fontsize=10)
        handles = [Patch(color=colours[m], label=str(m)) for m in colours if m in set(aggregate["model"])]
        if handles:
            subfig.legend(handles=handles, loc="upper right", fontsize=7, ncols=len(handles))
    return fig


def _metric_bars(ax: Axes, rows: pd.DataFrame, colours: dict[Any, Any], title: str) -> None:
    """One bar per model (in first-appearance order) with its value written on it."""
    ax.set_title(title, fontsize=8)
    means = rows.groupby("model", sort=False)["value"].mean()
    models = [str(model) for model in means.index]
    bars = ax.bar(range(len(means)), means.to_numpy(), color=[colours.get(m) for m in means.index])
    ax.bar_label(bars, labels=[f"{v:.3g}" for v in means.to_numpy()], fontsize=6)
    ax.set_xticks(range(len(means)), models, rotation=30, ha="right", fontsize=6)
    ax.tick_params(axis="y", labelsize=6)
    ax.axhline(0.0, color="0.3", linewidth=0.6)
    ax.margins(y=0.2)


def _spectrum_lines(ax: Axes, psd: pd.DataFrame, colours: dict[Any, Any], title: str) -> None:
    ax.set_title(title, fontsize=9)
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
