"""Plots of real data end to end: stride-plot's quicklooks and stride-eval's family figures on samples stores
built directly from the real files in $STRIDE_DATA (no training: cheap enough for CI).

Each store's truth is real fields; its "members" are the same source's real fields of the neighbouring time
steps (a plausible, imperfect ensemble) filled with 0 where the truth is NaN, as a model predicts everywhere;
the LR input is real too: the truth conservatively coarsened, or (MeteoNet) ARPEGE t2m, another variable on
the LR grid. The figures are captured as they are saved, so the tests check what is drawn (colour scales,
masks, colour-bar labels from the variable registry, lon/lat axes and coastlines, one colour per model) as
well as the PNG files (non-empty, decodable).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr
from conftest import DATA
from matplotlib.colors import BoundaryNorm, Normalize, to_rgba
from matplotlib.figure import Figure
from matplotlib.image import imread

from stride_contracts import ProducerRef, SamplerSettings, SamplesManifest, VariableRef
from stride_contracts.checkpoint import TransformSet, VariableTransform, ZScoreSpec
from stride_contracts.dataset import GridInfo
from stride_core.artifacts import write_zarr_artifact
from stride_core.grid import coarsen_conservative, latitude_area_weights
from stride_core.maps import NAN_COLOUR
from stride_core.metrics import probability_matched_mean

OFFSETS = (-2, -1, 1, 2)
"""Members of date t: the real fields at t-2, t-1, t+1, t+2."""


def open_real(name: str) -> xr.Dataset:
    path = DATA / name
    if not path.is_file():
        pytest.fail(f"real sample data missing: {path}; set STRIDE_DATA to the folder holding it")
    return xr.open_dataset(path, engine="netcdf4")


def write_store(
    path: Path,
    series: np.ndarray,
    dates: list[int],
    target: VariableRef,
    lr: np.ndarray,
    lr_ref: VariableRef,
    grid: GridInfo,
    coords: dict[str, Any],
    times: np.ndarray,
    lsm: np.ndarray,
) -> Path:
    """samples.zarr of real fields: truth series[dates], members series[dates + OFFSETS] (0 where NaN)."""
    truth = series[dates].astype(np.float32)
    members = np.stack([np.nan_to_num(series[[d + k for k in OFFSETS]], nan=0.0) for d in dates])
    members = members.astype(np.float32)
    n, m = members.shape[:2]
    dataset = xr.Dataset(
        {
            "members": (("time", "member", "var", "y", "x"), members[:, :, None]),
            "pmm": (("time", "var", "y", "x"), probability_matched_mean(members, member_axis=1)[:, None]),
            "target": (("time", "var", "y", "x"), truth[:, None]),
            "cond_dynamic": (("time", "dynamic_var", "y_lr", "x_lr"), lr[:, None].astype(np.float32)),
            "cond_static": (("static_var", "y", "x"), lsm[None].astype(np.float32)),
            "seeds": (("time", "member"), np.arange(n * m).reshape(n, m)),
        },
        coords={
            "time": times[dates],
            "member": np.arange(m),
            "var": np.array([target.name], dtype=object),
            "dynamic_var": np.array([lr_ref.name], dtype=object),
            "static_var": np.array(["lsm"], dtype=object),
            **coords,
        },
    )
    identity = ZScoreSpec(mean=0.0, std=1.0)
    manifest = SamplesManifest(
        producer=ProducerRef(
            tool="tests/test_plots_real_data.py", stride_version="0", created_utc=datetime.now(UTC)
        ),
        target=[target],
        dynamic=[lr_ref],
        static=[VariableRef(name="lsm", units="1")],
        grid=grid,
        split="test",
        n_members=m,
        base_seed=0,
        sampler=SamplerSettings(),
        use_ema=True,
        model_kind="edm",
        checkpoint_step=1,
        transforms=TransformSet(
            target=[VariableTransform(variable=target.name, transform=identity)],
            dynamic=[VariableTransform(variable=lr_ref.name, transform=identity)],
            static=[],
        ),
        has_target=True,
    )
    write_zarr_artifact(dataset, manifest, path)
    return path


@pytest.fixture(scope="module")
def radar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """MeteoSwiss radar, precipitation rate (mm h-1), a 96 x 96 km box of which 27% is outside coverage."""
    source = open_real("radar_mch_2015-05-15.nc")
    rows, cols = slice(336, 432), slice(576, 672)
    series = source["precip"].values[:, rows, cols]
    factor = 4
    lr = coarsen_conservative(np.nan_to_num(series[[10, 12]], nan=0.0), factor, np.ones((96, 96)))
    x, y = source["x"].values[cols], source["y"].values[rows]
    coords = {
        "x": ("x", x),
        "y": ("y", y),
        "x_lr": ("x_lr", x.reshape(-1, factor).mean(axis=1)),
        "y_lr": ("y_lr", y.reshape(-1, factor).mean(axis=1)),
    }
    grid = GridInfo(
        kind="projected",
        crs=str(source["precip"].attrs.get("proj4") or "+proj=somerc"),
        hr_shape=(96, 96),
        lr_shape=(24, 24),
        factor=factor,
        lat_descending=True,
    )
    precip = VariableRef(name="precip", units="mm h-1", long_name="precipitation rate")
    return write_store(
        tmp_path_factory.mktemp("radar") / "samples.zarr",
        series,
        [10, 12],
        precip,
        lr,
        precip,
        grid,
        coords,
        source["time"].values,
        source["lsm"].values[rows, cols],
    )


@pytest.fixture(scope="module")
def meteonet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """MeteoNet AROME hourly precipitation (mm) as the target, ARPEGE t2m (K, 4x coarser) as the LR input."""
    arome = open_real("meteonet_nw_2018-05-01.nc")
    arpege = open_real("meteonet_nw_arpege_t2m_2018-05-01.nc")
    series = arome["tp"].values[:, :224, :312]
    # ARPEGE points coincide with every 4th AROME point; its time 0 is the analysis, AROME's first is +1 h.
    dates = [8, 14]
    lr = arpege["t2m"].values[[d + 1 for d in dates], :56, :78]
    lat, lon = arome["latitude"].values[:224], arome["longitude"].values[:312]
    coords = {
        "lat": ("y", lat),
        "lon": ("x", lon),
        "lat_lr": ("y_lr", arpege["latitude"].values[:56]),
        "lon_lr": ("x_lr", arpege["longitude"].values[:78]),
    }
    grid = GridInfo(
        hr_shape=(224, 312),
        lr_shape=(56, 78),
        factor=4,
        lr_method="regridded",
        lr_regrid_method="nearest",
        lat_descending=True,
    )
    return write_store(
        tmp_path_factory.mktemp("meteonet") / "samples.zarr",
        series,
        dates,
        VariableRef(name="tp", units="mm", long_name="total precipitation"),
        lr,
        VariableRef(name="t2m", units="K", long_name="2 m temperature"),
        grid,
        coords,
        arome["time"].values,
        arome["lsm"].values[:224, :312],
    )


@pytest.fixture(scope="module")
def era5(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ERA5 2 m temperature over the UK (K), its LR input the truth coarsened 4x."""
    source = open_real("era5_uk_t2m_2019-03.nc")
    series = source["t2m"].values[:, :32, :48]
    lat, lon = source["latitude"].values[:32], source["longitude"].values[:48]
    dates = [12, 36]
    weights = np.broadcast_to(latitude_area_weights(lat)[:, None], (32, 48))
    coords = {
        "lat": ("y", lat),
        "lon": ("x", lon),
        "lat_lr": ("y_lr", lat.reshape(-1, 4).mean(axis=1)),
        "lon_lr": ("x_lr", lon.reshape(-1, 4).mean(axis=1)),
    }
    grid = GridInfo(hr_shape=(32, 48), lr_shape=(8, 12), factor=4, lat_descending=True)
    t2m = VariableRef(name="t2m", units="K", long_name="2 m temperature")
    return write_store(
        tmp_path_factory.mktemp("era5") / "samples.zarr",
        series,
        dates,
        t2m,
        coarsen_conservative(series[dates], 4, weights),
        t2m,
        grid,
        coords,
        source["time"].values,
        source["lsm"].values[:32, :48],
    )


@pytest.fixture(name="saved")
def saved_fixture(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Figure]]:
    """Every figure saved by stride-plot and stride-eval during the test, by file name."""
    import stride_eval.run
    import stride_plot.quicklook
    import stride_plot.run

    figures: dict[str, Figure] = {}
    real_save = stride_plot.quicklook.save_figure

    def capture(figure: Figure, path: Any) -> Path:
        figures[Path(path).name] = figure
        return real_save(figure, path)

    for module in (stride_plot.quicklook, stride_plot.run, stride_eval.run):
        monkeypatch.setattr(module, "save_figure", capture)
    yield figures


def quicklooks(samples: Path, out: Path, saved: dict[str, Figure]) -> list[tuple[Path, Figure]]:
    """stride-plot's two quicklooks of `samples` (checked decodable) and the figures drawn for them."""
    from stride_plot.cli import main

    assert main(["--samples", str(samples), "--out", str(out), "--set", "n_dates=2"]) == 0
    files = sorted(out.glob("quicklook_*.png"))
    assert len(files) == 2
    for path in files:
        decodable(path)
    return [(path, saved[path.name]) for path in files]


def decodable(path: Path) -> np.ndarray:
    assert path.stat().st_size > 10_000, f"{path} is {path.stat().st_size} bytes"
    image = imread(path)
    assert image.ndim == 3 and min(image.shape[:2]) > 200 and image[..., :3].std() > 0.05, path
    return image


def map_images(figure: Figure) -> dict[str, Any]:
    """The image of each titled map panel (LR input, HR truth, member 1, ..., ensemble spread)."""
    return {ax.get_title(): ax.images[0] for ax in figure.axes if ax.images and ax.get_title()}


def colour_bar_labels(figure: Figure) -> list[str]:
    return [ax.get_xlabel() for ax in figure.axes if ax.get_label() == "<colorbar>"]


def test_radar_quicklook_greys_out_of_coverage_cells_in_every_panel(
    radar: Path, tmp_path: Path, saved: dict[str, Figure]
) -> None:
    truth = xr.open_zarr(radar)["target"].values[:, 0]
    for i, (path, figure) in enumerate(quicklooks(radar, tmp_path / "plots", saved)):
        image = imread(path)
        grey = np.all(np.abs(image[..., :3] - np.array(to_rgba(NAN_COLOUR)[:3])) < 0.02, axis=-1)
        assert grey.mean() > 0.02, f"{path.name}: almost no grey pixels"
        panels = map_images(figure)
        invalid = np.isnan(truth[i])
        assert 0.2 < invalid.mean() < 0.4  # the box is 27% out of coverage
        for title in ("HR truth", "member 1", "member 2", "PMM (4 members)", "ensemble spread (std)"):
            drawn = panels[title]
            # The members were 0 there (a model predicts everywhere): the plot must mask them as the truth.
            np.testing.assert_array_equal(np.ma.getmaskarray(drawn.get_array()), invalid, err_msg=title)
            assert drawn.cmap.get_bad() == pytest.approx(to_rgba(NAN_COLOUR)), title
        truth_panel = panels["HR truth"]
        assert isinstance(truth_panel.norm, BoundaryNorm)  # precipitation levels, not linear
        assert truth_panel.norm.boundaries[0] <= 0.1  # light rain is drawn, not lost in the lowest colour
        assert truth_panel.cmap.get_under() == pytest.approx(to_rgba("white"))  # dry is white
        assert "precipitation rate [mm h-1]" in colour_bar_labels(figure)


def test_meteonet_lr_temperature_gets_its_own_scale_and_units(
    meteonet: Path, tmp_path: Path, saved: dict[str, Figure]
) -> None:
    for _, figure in quicklooks(meteonet, tmp_path / "plots", saved):
        labels = colour_bar_labels(figure)
        assert "total precipitation [mm]" in labels
        assert "LR 2 m temperature [K]" in labels
        panels = map_images(figure)
        lr_panel = next(image for title, image in panels.items() if title.startswith("LR input"))
        assert type(lr_panel.norm) is Normalize and 270 < lr_panel.norm.vmin < lr_panel.norm.vmax < 295
        assert isinstance(panels["HR truth"].norm, BoundaryNorm)
        # Coastlines from the AROME land-sea mask on the HR panels (NW France: land and sea).
        assert any(ax.collections for ax in figure.axes if ax.get_title() == "HR truth")


def test_era5_temperature_quicklook_uses_the_registry_scale(
    era5: Path, tmp_path: Path, saved: dict[str, Figure]
) -> None:
    for _, figure in quicklooks(era5, tmp_path / "plots", saved):
        assert "2 m temperature [K]" in colour_bar_labels(figure)
        truth_panel = map_images(figure)["HR truth"]
        assert type(truth_panel.norm) is Normalize
        assert 255 <= truth_panel.norm.vmin < truth_panel.norm.vmax <= 300
        assert truth_panel.cmap.name.startswith("RdYlBu_r")  # the registry's colour map of t2m


@pytest.mark.parametrize("streamed", [False, True], ids=["in-memory", "chunk_dates"])
def test_radar_family_figures_from_stride_eval(
    radar: Path, tmp_path: Path, saved: dict[str, Figure], streamed: bool
) -> None:
    from stride_eval.cli import main

    out = tmp_path / "metrics.parquet"
    extra = ["--set", "chunk_dates=1"] if streamed else []
    assert main(["--samples", str(radar), "--out", str(out), "--mode", "plots", *extra]) == 0
    written = sorted(p.name for p in (tmp_path / "metrics_figures").glob("*.png"))
    assert {"spatial_precip.png", "dates_precip.png", "distributions_precip.png", "scale_precip.png"} <= set(
        written
    )
    for name in written:
        decodable(tmp_path / "metrics_figures" / name)
    invalid = np.isnan(xr.open_zarr(radar)["target"].values[:, 0]).all(axis=0)
    spatial = saved["spatial_precip.png"]
    assert colour_bar_labels(spatial) == ["bias (model - truth) [mm h-1]", "RMSE [mm h-1]"]
    for ax in spatial.axes:
        if ax.images:
            np.testing.assert_array_equal(np.ma.getmaskarray(ax.images[0].get_array()), invalid)
            assert ax.images[0].cmap.get_bad() == pytest.approx(to_rgba(NAN_COLOUR))
    dates = saved["dates_precip.png"]
    assert colour_bar_labels(dates) == ["precipitation rate [mm h-1]"]
    assert all(isinstance(ax.images[0].norm, BoundaryNorm) for ax in dates.axes if ax.images)


def test_era5_family_figures_have_lat_lon_axes_coastlines_and_one_colour_per_model(
    era5: Path, tmp_path: Path, saved: dict[str, Figure]
) -> None:
    """stride-eval's maps on the store's lon/lat with the ERA5 land-sea mask's coastline, and each model
    (stride, a compared store, the baselines) in one colour in its line figures and stride-plot's summary."""
    from stride_eval.cli import main as eval_main
    from stride_plot.cli import main as plot_main

    out = tmp_path / "metrics.parquet"
    assert (
        eval_main(
            [
                "--samples",
                str(era5),
                "--compare",
                f"regression={era5}",
                "--out",
                str(out),
                "--mode",
                "full",
                "--set",
                "families=[probabilistic,distributions,extremes,spatial,scale,dates]",
            ]
        )
        == 0
    )
    assert plot_main(["--samples", str(era5), "--metrics", str(out), "--out", str(tmp_path / "plots")]) == 0
    lat, lon = (xr.open_zarr(era5)[name].values for name in ("lat", "lon"))
    for name in ("spatial_t2m.png", "dates_t2m.png"):
        maps = [ax for ax in saved[name].axes if ax.images]
        assert maps, name
        for ax in maps:
            left, right = ax.get_xlim()
            bottom, top = ax.get_ylim()
            assert left < lon.min() < lon.max() < right and right - left < 1.1 * (lon.max() - lon.min()) + 1
            assert bottom < lat.min() < lat.max() < top
            assert ax.collections, f"{name}: no coastline over the UK"
        assert "longitude [deg E]" in {ax.get_xlabel() for ax in maps}
        assert "latitude [deg N]" in {ax.get_ylabel() for ax in maps}
    summary = saved["metrics_summary.png"]
    crps = next(ax for ax in summary.axes if ax.get_title().startswith("crps ["))
    bar_colours = {
        tick.get_text(): to_rgba(bar.get_facecolor())
        for tick, bar in zip(crps.get_xticklabels(), crps.patches, strict=True)
    }
    assert {"stride", "regression", "bicubic", "bilinear"} <= set(bar_colours)
    assert len(set(bar_colours.values())) == len(bar_colours)
    for name in ("scale_t2m.png", "extremes_t2m.png", "distributions_t2m.png"):
        lines = [
            line for ax in saved[name].axes for line in ax.get_lines() if line.get_label() in bar_colours
        ]
        assert lines, name
        for line in lines:
            assert to_rgba(line.get_color()) == bar_colours[str(line.get_label())], (name, line.get_label())
