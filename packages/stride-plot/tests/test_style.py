"""Map styling from the registry: precipitation levels, plot ranges, LR scale, coastlines, orientation, masking."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from matplotlib.colors import BoundaryNorm, to_rgba
from matplotlib.figure import Figure

from stride_core.map_style import field_style, precipitation_levels, spread_style
from stride_core.maps import NAN_COLOUR, quicklook_figure
from stride_core.variables import VariableRegistry

REGISTRY = VariableRegistry.load()


def render(fig: Figure) -> np.ndarray:
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba()).copy()  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("top", "levels"),
    [
        (10.0, [0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0]),
        (30.0, [0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0]),
        (1.0, [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0]),
    ],
)
def test_precipitation_levels_are_one_two_five_from_a_hundredth_of_the_top(
    top: float, levels: list[float]
) -> None:
    assert precipitation_levels(top) == pytest.approx(levels)


def test_precipitation_scale_shows_light_rain_and_draws_zero_white() -> None:
    scale = field_style(REGISTRY["precip"], "mm h-1", [np.array([0.0, 0.3, 8.0])])
    assert isinstance(scale.norm, BoundaryNorm) and scale.label == "precipitation rate [mm h-1]"
    colour = {value: scale.cmap(scale.norm(np.array([value])))[0] for value in (0.0, 0.15, 0.4, 3.0, 50.0)}
    assert colour[0.0] == pytest.approx(to_rgba("white"))
    # Light rain (0.15 mm/h) is a clear blue, not a near-white one; heavier rain is darker still.
    assert np.mean(colour[0.15][:3]) < 0.85
    assert np.mean(colour[0.4][:3]) < np.mean(colour[0.15][:3])
    assert np.mean(colour[3.0][:3]) < np.mean(colour[0.4][:3])
    assert np.mean(colour[50.0][:3]) <= np.mean(colour[3.0][:3])
    assert scale.cmap(np.ma.masked_invalid([np.nan]))[0] == pytest.approx(to_rgba(NAN_COLOUR))
    spread = spread_style(np.linspace(0.0, 2.0, 101), "mm h-1", True).norm
    assert spread.vmax == pytest.approx(1.98)  # the 99th percentile, so one outlier does not flatten the map
    assert spread(0.495) == pytest.approx(0.5)  # square-root scale: a quarter of the top sits halfway


def test_plot_range_is_used_unless_the_data_fill_only_a_sliver_of_it() -> None:
    rng = np.random.default_rng(1)
    wide = field_style(REGISTRY["t2m"], "K", [rng.uniform(262, 298, 1000)])
    assert (wide.norm.vmin, wide.norm.vmax) == (260.0, 300.0) and wide.label == "2 m temperature [K]"
    narrow = rng.uniform(276, 282, 1000)  # a March day over the UK: 6 K of a 40 K range
    scale = field_style(REGISTRY["t2m"], "K", [narrow])
    assert scale.norm.vmin == pytest.approx(np.percentile(narrow, 1))
    assert scale.norm.vmax == pytest.approx(np.percentile(narrow, 99))
    assert scale.extend == "both"  # values beyond the 1st-99th percentiles show as arrows
    pressure = field_style(REGISTRY["msl"], "Pa", [np.array([99000.0, 101500.0, 103000.0])])
    assert 96000.0 <= pressure.norm.vmin < pressure.norm.vmax <= 104000.0


def test_diverging_colour_maps_are_centred_on_zero() -> None:
    scale = field_style(REGISTRY["u10"], "m s-1", [np.linspace(-3.0, 9.0, 100)])
    assert scale.norm.vmin == pytest.approx(-scale.norm.vmax)
    assert scale.norm(0.0) == pytest.approx(0.5)


def fields(h: int = 12, w: int = 16) -> dict[str, Any]:
    """Precipitation whose northern half (row 0 north) rains hard and southern half is dry."""
    truth = np.zeros((h, w))
    truth[: h // 2] = 8.0
    members = np.stack([truth, truth * 0.9])
    precip = field_style(REGISTRY["precip"], "mm h-1", [truth])
    return {
        "lr_input": np.full((h // 4, w // 4), 101000.0),
        "truth": truth,
        "members": members,
        "pmm": members.mean(axis=0),
        "spread": None,
        "lr_extent": (-8.0, 0.0, 50.0, 56.0),
        "hr_extent": (-8.0, 0.0, 50.0, 56.0),
        "title": "precip",
        "variable_label": "precip",
        "units": "mm h-1",
        "cmap": precip.cmap,
        "vmin": None,
        "vmax": None,
        "scale": precip,
        "lr_scale": field_style(REGISTRY["msl"], "Pa", [np.array([99000.0, 103000.0])], label="LR msl"),
    }


def test_south_up_grid_is_drawn_north_up() -> None:
    north_up = fields()
    south_up = dict(north_up)
    for name in ("lr_input", "truth", "pmm"):
        south_up[name] = north_up[name][::-1]
    south_up["members"] = north_up["members"][:, ::-1]
    reference = render(quicklook_figure(**north_up))
    flipped_fig = quicklook_figure(**south_up, row0_north=False)
    np.testing.assert_array_equal(render(flipped_fig), reference)
    # And north really is up: the truth panel's top half is the rainy (dark blue) one.
    truth_ax = next(ax for ax in flipped_fig.axes if ax.get_title() == "HR truth")
    shown = truth_ax.images[0].get_array()
    assert shown[0, 0] == 8.0 and shown[-1, 0] == 0.0
    assert truth_ax.get_ylim() == (50.0, 56.0)
    # Drawn the old way (row 0 taken as north) the south-up field puts the rain in the south.
    wrong = quicklook_figure(**south_up)
    assert not np.array_equal(render(wrong), reference)


def test_members_pmm_and_spread_are_grey_where_the_truth_is_invalid() -> None:
    inputs = fields()
    inputs["truth"] = inputs["truth"].copy()
    inputs["truth"][:, :5] = np.nan  # outside the radar coverage
    fig = quicklook_figure(**inputs)
    for ax in fig.axes:
        if ax.images and ax.get_title() not in ("HR truth",) and not ax.get_title().startswith("LR"):
            shown = np.ma.getmaskarray(np.ma.masked_invalid(ax.images[0].get_array()))
            assert shown[:, :5].all(), ax.get_title()
            assert not shown[:, 5:].any(), ax.get_title()


def test_lr_panel_of_another_variable_has_its_own_scale_and_units() -> None:
    fig = quicklook_figure(**fields())
    lr_ax = fig.axes[0]
    assert lr_ax.images[0].norm.vmin >= 96000.0  # pressure on a pressure scale, not 0-10 mm/h
    member_ax = next(ax for ax in fig.axes if ax.get_title() == "member 1")
    assert isinstance(member_ax.images[0].norm, BoundaryNorm)
    labels = [ax.get_xlabel() for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert labels == ["precipitation rate [mm h-1]", "LR msl [Pa]", "spread [mm h-1]"]
    assert len(fig.axes) == 6 + 3


def test_coastline_is_the_half_contour_of_the_land_fraction() -> None:
    inputs = fields()
    land = np.zeros((12, 16))
    land[:, 8:] = 1.0  # land in the east half
    fig = quicklook_figure(**inputs, outline=land)
    member_ax = next(ax for ax in fig.axes if ax.get_title() == "member 1")
    (contour,) = [c for c in member_ax.collections if hasattr(c, "levels")]
    assert list(contour.levels) == [0.5]
    xs = np.concatenate([path.vertices[:, 0] for path in contour.get_paths()])
    # The coast lies halfway between the centres of columns 7 and 8 of the -8..0 degree box: -4.0 E.
    assert np.allclose(xs, -4.0)
    assert member_ax.get_xlim() == (-8.0, 0.0)  # the contour does not shrink the map to cell centres
    all_sea = quicklook_figure(**inputs, outline=np.zeros((12, 16)))
    assert not [c for ax in all_sea.axes for c in ax.collections if hasattr(c, "levels")]


def test_square_root_spread_bar_is_ticked_on_one_two_five_values() -> None:
    """Linear ticks crowd at the top of a square-root bar (0, 2.5, ..., 12.5 ran into each other)."""
    inputs = fields()
    spread = np.linspace(0.0, 13.5, 12 * 16).reshape(12, 16)
    inputs["spread"] = spread
    inputs["spread_scale"] = spread_style(spread, "mm h-1", precipitation=True)
    fig = quicklook_figure(**inputs)
    (bar,) = [ax for ax in fig.axes if ax.get_xlabel() == "spread (std) [mm h-1]"]
    assert list(bar.get_xticks()) == pytest.approx([0.0, 1.0, 2.0, 5.0, 10.0])
