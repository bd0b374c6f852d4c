"""Tests for the quicklook and metric-summary figures and atomic PNG saving."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from matplotlib._pylab_helpers import Gcf
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from stride_plot.figures import metrics_summary_figure, quicklook_figure, save_figure

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def quicklook_inputs(m: int, *, with_truth: bool = True) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    members = rng.gamma(1.0, 2.0, size=(m, 16, 20))
    members[:, :3, :4] = np.nan  # a masked corner, drawn grey
    truth = rng.gamma(1.0, 2.0, size=(16, 20)) if with_truth else None
    return {
        "lr_input": rng.gamma(1.0, 2.0, size=(4, 5)),
        "truth": truth,
        "members": members,
        "pmm": members.mean(axis=0),
        "spread": None if m == 1 else np.std(members, axis=0, ddof=1),
        "lr_extent": (-8.0, 2.0, 49.0, 59.0),
        "hr_extent": (-8.0, 2.0, 49.0, 59.0),
        "title": "pr 2020-01-15",
        "variable_label": "precipitation",
        "units": "mm/day",
        "cmap": "Blues",
        "vmin": 0.0,
        "vmax": None,
        "lr_label": "ERA5 (0.25°)",
    }


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert len(data) > 1000
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")], "staging file left behind"


def row(
    model: str, variable: str, metric: str, family: str, date: Any, wavenumber: float, value: float
) -> dict[str, Any]:
    units = "mm2/day2" if metric == "psd" else "mm/day"
    return {
        "model": model,
        "variable": variable,
        "metric": metric,
        "family": family,
        "date": date,
        "wavenumber": wavenumber,
        "units": units,
        "value": value,
    }


def metrics_table(variables: tuple[str, ...] = ("pr",), *, with_psd: bool = True) -> pd.DataFrame:
    rows: list[dict[str, Any]] = []
    for variable in variables:
        for model, offset in (("stride", 0.0), ("bicubic", 0.4)):
            for family, metric, value in (
                ("deterministic", "rmse", 1.2),
                ("deterministic", "bias", -0.1),
                ("probabilistic", "crps", 0.6),
                ("scale", "spectrum_error", 0.2),
            ):
                rows.append(row(model, variable, metric, family, None, np.nan, value + offset))
            # A dated row must not enter the aggregate bars.
            rows.append(
                row(model, variable, "rmse", "deterministic", pd.Timestamp("2020-01-15"), np.nan, 99.0)
            )
        if with_psd:
            for model, slope in (("truth", -3.0), ("stride", -3.1), ("bicubic", -4.5)):
                rows.extend(
                    row(model, variable, "psd", "scale", pd.NaT, float(k), float(k) ** slope)
                    for k in range(1, 33)
                )
    return pd.DataFrame(rows)


@pytest.mark.parametrize(("m", "n_axes"), [(1, 5 + 2), (2, 6 + 2), (5, 6 + 2)])
def test_quicklook_axes_and_png(tmp_path: Path, m: int, n_axes: int) -> None:
    fig = quicklook_figure(**quicklook_inputs(m))
    assert isinstance(fig, Figure)
    assert len(fig.axes) == n_axes
    titles = [ax.get_title() for ax in fig.axes]
    assert "ERA5 (0.25°)" in titles and "HR truth" in titles and "member 1" in titles
    assert ("member 2" in titles) == (m >= 2)
    assert fig.get_suptitle() == "pr 2020-01-15"
    path = save_figure(fig, tmp_path / "quicklook.png")
    assert path == tmp_path / "quicklook.png"
    assert_png(path)


def test_quicklook_without_truth_says_no_target(tmp_path: Path) -> None:
    fig = quicklook_figure(**quicklook_inputs(3, with_truth=False))
    assert len(fig.axes) == 8
    truth_ax = next(ax for ax in fig.axes if ax.get_title() == "HR truth")
    assert [t.get_text() for t in truth_ax.texts] == ["no target"]
    assert not truth_ax.images
    assert_png(save_figure(fig, tmp_path / "sub" / "no_target.png"))


def test_quicklook_nan_is_light_grey_and_colourbars_have_units() -> None:
    fig = quicklook_figure(**quicklook_inputs(2))
    image = fig.axes[2].images[0]
    assert image.cmap.get_bad()[:3] == pytest.approx((0.827, 0.827, 0.827), abs=0.01)
    labels = [ax.get_xlabel() for ax in fig.axes[-2:]]
    assert labels == ["precipitation [mm/day]", "spread [mm/day]"]


def test_quicklook_rejects_mismatched_shapes() -> None:
    inputs = quicklook_inputs(2)
    inputs["pmm"] = np.zeros((16, 21))
    with pytest.raises(ValueError, match=r"\(16, 20\).*\(16, 21\)"):
        quicklook_figure(**inputs)


def bar_panels(fig: Figure) -> dict[str, Any]:
    return {ax.get_title(): ax for ax in fig.axes if ax.patches}


def test_metrics_summary_one_variable(tmp_path: Path) -> None:
    fig = metrics_summary_figure(metrics_table())
    panels = bar_panels(fig)
    assert set(panels) == {
        "rmse [mm/day] (deterministic)",
        "bias [mm/day] (deterministic)",
        "crps [mm/day] (probabilistic)",
        "spectrum_error [mm/day] (scale)",
    }
    rmse = [
        bar.get_height()
        for bar in panels["rmse [mm/day] (deterministic)"].patches
        if isinstance(bar, Rectangle)
    ]
    assert rmse == pytest.approx([1.2, 1.6])  # the dated 99.0 rows stay out
    assert [t.get_text() for t in panels["rmse [mm/day] (deterministic)"].get_xticklabels()] == [
        "stride",
        "bicubic",
    ]
    legend_texts = [t.get_text() for sub in fig.subfigs for legend in sub.legends for t in legend.get_texts()]
    assert legend_texts == ["stride", "bicubic"]
    # The models' colours are stride-eval's family figures' (stride_core.map_style.model_colours).
    bars = [b for b in panels["rmse [mm/day] (deterministic)"].patches if isinstance(b, Rectangle)]
    assert [to_rgba(b.get_facecolor()) for b in bars] == [to_rgba("tab:blue"), to_rgba("tab:green")]
    (psd_ax,) = [ax for ax in fig.axes if ax.get_yscale() == "log"]
    assert {line.get_label() for line in psd_ax.get_lines()} == {"truth", "stride", "bicubic"}
    assert psd_ax.get_xscale() == "log" and psd_ax.get_yscale() == "log"
    assert_png(save_figure(fig, tmp_path / "metrics.png"))


def test_metrics_summary_keeps_qualified_rows_out_of_the_bars() -> None:
    table = metrics_table()
    qualified = []
    for column, value in (
        ("threshold", 1.0),
        ("threshold", 10.0),
        ("scale", 4.0),
        ("quantile", 0.99),
        ("lag", 1.0),
    ):
        qualified.append({**row("stride", "pr", "rmse", "deterministic", None, np.nan, 50.0), column: value})
    qualified.append({**row("stride", "pr", "psd", "scale", None, 3.0, 1e6), "scale": 4.0})
    table = pd.concat([table, pd.DataFrame(qualified)], ignore_index=True)
    fig = metrics_summary_figure(table)
    rmse = [bar.get_height() for bar in bar_panels(fig)["rmse [mm/day] (deterministic)"].patches]
    assert rmse == pytest.approx([1.2, 1.6])
    (psd_ax,) = [ax for ax in fig.axes if ax.get_yscale() == "log"]
    stride = next(line for line in psd_ax.get_lines() if line.get_label() == "stride")
    assert max(stride.get_ydata()) < 1e6  # the 4x-pooled spectrum is not averaged in


def test_metrics_summary_several_variables(tmp_path: Path) -> None:
    fig = metrics_summary_figure(metrics_table(("pr", "tas")))
    assert len(bar_panels(fig)) == 4  # titles repeat per variable; one block of 4 panels each
    assert len([ax for ax in fig.axes if ax.patches]) == 8
    spectra = [ax.get_title() for ax in fig.axes if ax.get_yscale() == "log"]
    assert [title.split(":")[0] for title in spectra] == ["pr", "tas"]
    assert_png(save_figure(fig, tmp_path / "metrics.png"))


def test_metrics_summary_without_psd_still_has_bars(tmp_path: Path) -> None:
    fig = metrics_summary_figure(metrics_table(with_psd=False))
    assert sum(len(ax.patches) for ax in fig.axes) == 8
    assert [t.get_text() for ax in fig.axes for t in ax.texts if t.get_text().startswith("no")] == [
        "no 'psd' rows"
    ]
    assert_png(save_figure(fig, tmp_path / "metrics.png"))


def test_metrics_summary_missing_column() -> None:
    with pytest.raises(ValueError, match=r"missing column.*'wavenumber'"):
        metrics_summary_figure(metrics_table().drop(columns="wavenumber"))


def test_save_figure_replaces_and_rejects_other_formats(tmp_path: Path) -> None:
    target = tmp_path / "plot.png"
    target.write_bytes(b"old")
    fig = metrics_summary_figure(metrics_table())
    save_figure(fig, str(target))
    assert_png(target)
    with pytest.raises(ValueError, match=r"plot\.pdf.*\.png"):
        save_figure(fig, tmp_path / "plot.pdf")


def test_no_pyplot_figures_are_left_open() -> None:
    before = Gcf.get_num_fig_managers()
    quicklook_figure(**quicklook_inputs(2))
    metrics_summary_figure(metrics_table())
    assert Gcf.get_num_fig_managers() == before
