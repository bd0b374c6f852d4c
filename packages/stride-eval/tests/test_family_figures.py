"""The family figures: styled from the variable registry, and written by streamed runs (chunk_dates) too."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import BoundaryNorm, PowerNorm, to_rgba
from matplotlib.figure import Figure
from matplotlib.image import imread

from stride_core.map_style import map_frame
from stride_core.maps import NAN_COLOUR
from stride_core.variables import VariableRegistry
from stride_eval.cli import main
from stride_eval.families import REGISTRY
from stride_eval.inputs import EvalInputs, Prediction, masked_inputs
from stride_eval.stores import open_samples
from stride_eval.streaming import StreamingEvaluation

FAMILIES_WITH_FIGURES = [
    "dates",
    "distributions",
    "extremes",
    "probabilistic",
    "scale",
    "spatial",
    "temporal",
]
"""Every default family but deterministic and features (whose scores the spatial figure maps)."""


def precipitation_store(tmp_path: Path, write_samples: Callable[..., Path]) -> Path:
    """12 daily precipitation fields (mm day-1, registry key 'pr') with 6 columns outside coverage (NaN)."""
    rng = np.random.default_rng(3)
    t, m, h, w = 12, 4, 32, 32
    truth = (rng.gamma(0.4, 3.0, (t, h, w)) * (rng.random((t, h, w)) > 0.4)).astype(np.float32)
    truth[:, :, :6] = np.nan
    members = np.nan_to_num(truth[:, None] * rng.lognormal(0, 0.4, (t, m, h, w)), nan=1.0)
    return write_samples(
        tmp_path / "pr.zarr", members.astype(np.float32), truth, variable="pr", units="mm day-1"
    )


def image_panels(figure_path: Path) -> np.ndarray:
    image = imread(figure_path)
    assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 200
    return image


@pytest.fixture(name="runs")
def runs_fixture(tmp_path: Path, write_samples: Callable[..., Path]) -> dict[str, Path]:
    store = precipitation_store(tmp_path, write_samples)
    folders = {}
    for name, extra in (("whole", []), ("streamed", ["--set", "chunk_dates=5"])):
        out = tmp_path / f"{name}.parquet"
        assert main(["--samples", str(store), "--out", str(out), "--mode", "plots", *extra]) == 0
        folders[name] = tmp_path / f"{name}_figures"
    return folders


def test_a_streamed_run_writes_every_family_figure_of_the_in_memory_run(runs: dict[str, Path]) -> None:
    whole = sorted(p.name for p in runs["whole"].glob("*.png"))
    streamed = sorted(p.name for p in runs["streamed"].glob("*.png"))
    assert whole == sorted(f"{family}_pr.png" for family in FAMILIES_WITH_FIGURES)
    assert streamed == whole
    for name in streamed:
        image = image_panels(runs["streamed"] / name)  # decodable PNGs of a readable size
        assert image[..., :3].std() > 0.05, f"{name} is blank"


def test_out_of_coverage_cells_are_grey_in_the_map_figures(runs: dict[str, Path]) -> None:
    grey = np.array(to_rgba(NAN_COLOUR)[:3])
    for folder in runs.values():
        for name in ("spatial_pr.png", "dates_pr.png"):
            pixels = image_panels(folder / name)[..., :3]
            share = np.mean(np.all(np.abs(pixels - grey) < 0.02, axis=-1))
            # 6 of 32 columns of every map panel: a few percent of the whole figure, never none.
            assert share > 0.02, f"{folder.name}/{name}: {share:.3%} grey pixels"


def spatial_and_dates(chunk_dates: int | None) -> dict[str, Figure]:
    """The in-memory (None) or streamed figures of one generated precipitation variable."""
    rng = np.random.default_rng(1)
    truth = (rng.gamma(0.5, 2.0, (8, 24, 24)) * (rng.random((8, 24, 24)) > 0.3)).astype(np.float32)
    truth[:, :4] = np.nan  # the 4 northernmost rows
    members = (np.nan_to_num(truth)[:, None] * rng.lognormal(0, 0.3, (8, 3, 24, 24))).astype(np.float32)
    prediction = Prediction(point=members.mean(axis=1), members=members, pmm=members.mean(axis=1))
    spec = VariableRegistry.load().get("pr")
    inputs = EvalInputs(
        variable="pr",
        units="mm day-1",
        times=pd.date_range("2021-06-01", periods=8, freq="D"),
        truth=truth,
        predictions={"stride": prediction},
        thresholds=(1.0,),
        threshold_quantiles=(None,),
        spec=spec,
        top_dates=2,
    )
    inputs = masked_inputs(inputs)
    if chunk_dates is None:
        return {
            name: REGISTRY[name].plot(REGISTRY[name].compute(inputs), inputs) for name in ("spatial", "dates")
        }
    stream = StreamingEvaluation(inputs, ["spatial", "dates"])
    for start in range(0, 8, chunk_dates):
        part = slice(start, start + chunk_dates)
        chunk = replace(
            inputs,
            times=inputs.times[part],
            truth=inputs.truth[part],
            predictions={"stride": Prediction(members[part].mean(axis=1), members[part])},
        )
        stream.update(masked_inputs(chunk))
    return stream.figures(stream.rows())


def colour_bar_labels(figure: Figure) -> list[str]:
    return [ax.get_xlabel() for ax in figure.axes if ax.get_label() == "<colorbar>"]


def test_map_figures_take_units_and_scales_from_the_registry() -> None:
    whole, streamed = spatial_and_dates(None), spatial_and_dates(3)
    for figures in (whole, streamed):
        spatial, dates = figures["spatial"], figures["dates"]
        assert colour_bar_labels(spatial) == ["bias (model - truth) [mm day-1]", "RMSE [mm day-1]"]
        assert colour_bar_labels(dates) == ["precipitation [mm day-1]"]  # the registry's long name
        date_image = dates.axes[0].images[0]
        assert isinstance(date_image.norm, BoundaryNorm)  # 1-2-5 levels, not a linear scale
        assert date_image.cmap.get_under() == pytest.approx(to_rgba("white"))  # dry is white
        rmse_image = spatial.axes[1].images[0]
        assert isinstance(rmse_image.norm, PowerNorm)
        for image in (date_image, spatial.axes[0].images[0], rmse_image):
            assert image.cmap.get_bad() == pytest.approx(to_rgba(NAN_COLOUR))
            mask = np.ma.getmaskarray(image.get_array())
            assert mask[:4].all() and not mask[4:].all()  # out of coverage (only): drawn as bad
    # The streamed figure shows the same maps as the in-memory one (sums over chunks are exact).
    for name in ("spatial", "dates"):
        for a, b in zip(whole[name].axes, streamed[name].axes, strict=True):
            for image_a, image_b in zip(a.images, b.images, strict=True):
                np.testing.assert_allclose(
                    np.ma.filled(image_a.get_array(), np.nan),
                    np.ma.filled(image_b.get_array(), np.nan),
                    rtol=1e-6,
                )


def line_colours(figure: Figure) -> dict[str, tuple[float, ...]]:
    """The colour of each labelled line of a figure, by model label (a threshold's line in a panel titled
    'model: ...' is that model's)."""
    colours: dict[str, tuple[float, ...]] = {}
    for ax in figure.axes:
        for line in ax.get_lines():
            label = str(line.get_label()).split(" (mean")[0].split(" > ")[0]
            if label.startswith(">"):
                label = ax.get_title().split(":")[0]
            if not label.startswith("_") and label not in ("flat",):
                colours.setdefault(label, to_rgba(line.get_color()))
                assert colours[label] == to_rgba(line.get_color()), f"{label}: two colours in one figure"
    return colours


def test_a_model_keeps_its_colour_in_every_family_figure() -> None:
    rng = np.random.default_rng(5)
    t, h, w = 10, 16, 16
    truth = (rng.gamma(0.6, 2.0, (t, h, w)) * (rng.random((t, h, w)) > 0.3)).astype(np.float32)
    members = (truth[:, None] * rng.lognormal(0, 0.3, (t, 3, h, w))).astype(np.float32)
    point = truth * 1.1
    predictions = {
        "v2": Prediction(point=members.mean(axis=1) * 0.9, members=members * 0.9),
        "stride": Prediction(point=members.mean(axis=1), members=members),
        "bicubic": Prediction(point=point),
    }
    inputs = EvalInputs(
        variable="pr",
        units="mm day-1",
        times=pd.date_range("2021-06-01", periods=t, freq="D"),
        truth=truth,
        predictions=predictions,
        thresholds=(1.0, 4.0),
        threshold_quantiles=(None, None),
        spec=VariableRegistry.load().get("pr"),
        model_labels=("stride", "v2", "bicubic"),
    )
    seen: dict[str, dict[str, tuple[float, ...]]] = {}
    for name in ("distributions", "extremes", "scale", "temporal", "probabilistic", "spatial"):
        family = REGISTRY[name]
        figure = family.plot(family.compute(inputs), inputs)
        assert figure is not None, name
        seen[name] = line_colours(figure)
    # In the order given or not, a model is drawn in one colour across the families (truth black).
    for model in ("stride", "v2", "bicubic", "truth"):
        drawn = {name: colours[model] for name, colours in seen.items() if model in colours}
        assert len(drawn) >= 3, (model, sorted(drawn))
        assert len(set(drawn.values())) == 1, (model, drawn)
    assert seen["scale"]["stride"] == to_rgba("tab:blue")
    assert seen["scale"]["bicubic"] == to_rgba("tab:green")
    assert seen["scale"]["truth"] == to_rgba("black")
    assert len({seen["scale"][m] for m in ("stride", "v2", "bicubic", "truth")}) == 4


@pytest.mark.parametrize("projected", [False, True], ids=["lat-lon", "projected"])
def test_map_panels_have_the_grid_coordinates_on_their_axes_and_the_coastline(
    tmp_path: Path, write_samples: Callable[..., Path], projected: bool
) -> None:
    """The spatial and dates maps sit on the store's lon/lat (or projected x/y in km) cell edges, north up
    (also for a grid stored south-up), with the 0.5 contour of its land fraction drawn."""
    rng = np.random.default_rng(2)
    truth = rng.normal(280, 3, (4, 16, 24)).astype(np.float32)
    truth[:, -1] += 50.0  # a marked southernmost row (lat 50), drawn at the bottom
    members = (truth[:, None] + rng.normal(0, 1, (4, 2, 16, 24))).astype(np.float32)
    store = open_samples(write_samples(tmp_path / "s.zarr", members, truth), None)
    dataset, manifest = store.dataset, store.manifest
    if projected:
        dataset = dataset.assign_coords(
            y=("y", np.arange(16)[::-1] * 2000.0), x=("x", np.arange(24) * 2000.0)
        )
        manifest = manifest.model_copy(
            update={"grid": manifest.grid.model_copy(update={"kind": "projected"})}
        )
    south_up = dataset.isel(y=slice(None, None, -1))
    south_up_manifest = manifest.model_copy(
        update={"grid": manifest.grid.model_copy(update={"lat_descending": False})}
    )
    for ds, mf, rows in ((dataset, manifest, truth), (south_up, south_up_manifest, truth[:, ::-1])):
        frame = map_frame(ds, mf)
        inputs = EvalInputs(
            variable="t2m",
            units="K",
            times=pd.date_range("2021-01-01", periods=4, freq="D"),
            truth=np.ascontiguousarray(rows),
            predictions={"stride": Prediction(point=np.ascontiguousarray(rows) + 0.5, members=None)},
            thresholds=(280.0,),
            threshold_quantiles=(None,),
            frame=frame,
            top_dates=1,
        )
        for name in ("spatial", "dates"):
            figure = REGISTRY[name].plot(REGISTRY[name].compute(inputs), inputs)
            assert figure is not None
            maps = [ax for ax in figure.axes if ax.images]
            assert maps, name
            for ax in maps:
                if projected:  # y 0..30 km, x 0..46 km at 2 km cells: edges a cell half beyond
                    assert ax.get_xlim() == pytest.approx((-1.0, 47.0))
                    assert ax.get_ylim() == pytest.approx((-1.0, 31.0))
                else:  # the conftest grid: lat 58..50 over 16 rows, lon -10..2 over 24 columns
                    half_lat, half_lon = 8 / 15 / 2, 12 / 23 / 2
                    assert ax.get_xlim() == pytest.approx((-10 - half_lon, 2 + half_lon))
                    assert ax.get_ylim() == pytest.approx((50 - half_lat, 58 + half_lat))
                ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
                assert len(ticks) >= 3 and ax.xaxis.get_ticklabels()  # coordinate ticks, not hidden
                assert ax.collections, f"{name}: no coastline"  # the lsm's 0.5 contour (half land)
                image = np.ma.filled(ax.images[0].get_array(), np.nan)
                if name == "dates":  # north up: the +50 K southern row at the bottom either way
                    assert np.nanmean(image[-1]) > np.nanmean(image[:-1]) + 20
            labelled = {ax.get_xlabel() for ax in maps} | {ax.get_ylabel() for ax in maps}
            assert (
                {"x [km]", "y [km]"} if projected else {"longitude [deg E]", "latitude [deg N]"}
            ) <= labelled
