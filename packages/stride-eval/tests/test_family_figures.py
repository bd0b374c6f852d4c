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

from stride_core.maps import NAN_COLOUR
from stride_core.variables import VariableRegistry
from stride_eval.cli import main
from stride_eval.families import REGISTRY
from stride_eval.inputs import EvalInputs, Prediction, masked_inputs
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
