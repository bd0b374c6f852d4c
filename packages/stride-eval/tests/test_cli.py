"""stride-eval end to end on generated samples stores: modes, --compare, labels and one-line bad-input errors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from stride_contracts import METRIC_QUALIFIERS
from stride_core.tracking import TRACKING_DB
from stride_eval.cli import main


def precip_case(n_times: int = 8, size: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = rng.gamma(0.5, 1.0, size=(n_times, size, size)).astype(np.float32)
    truth[truth < 0.3] = 0
    truth[:, :, :8] = np.nan  # outside coverage
    members = truth[:, None] * rng.lognormal(0, 0.3, size=(n_times, 4, size, size))
    return np.nan_to_num(members, nan=7.0).astype(np.float32), truth


Writer = Callable[..., Path]


@pytest.fixture
def stores(tmp_path: Path, write_samples: Writer) -> dict[str, Path]:
    members, truth = precip_case()
    return {
        "edm": write_samples(tmp_path / "edm.zarr", members, truth, variable="precip", units="mm h-1"),
        "regression": write_samples(
            tmp_path / "reg.zarr",
            members[:, :1],
            truth,
            variable="precip",
            units="mm h-1",
            model_kind="regression",
        ),
    }


def headline(table: pd.DataFrame) -> pd.DataFrame:
    return table[table[list(METRIC_QUALIFIERS)].isna().all(axis=1)]


def test_full_mode_with_a_comparison_store(stores: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "metrics.parquet"
    rc = main(
        [
            "--samples",
            str(stores["edm"]),
            "--out",
            str(out),
            "--mode",
            "full",
            "--compare",
            f"reg={stores['regression']}",
        ]
    )
    assert rc == 0
    table = pd.read_parquet(out)
    assert set(table["model"]) == {"stride", "reg", "bicubic", "bilinear", "truth"}
    assert set(table["family"]) >= {
        "probabilistic",
        "deterministic",
        "distributions",
        "extremes",
        "spatial",
        "scale",
    }
    assert np.isfinite(table["value"]).all()
    top = headline(table)
    keys = set(zip(top["model"], top["metric"], strict=True))
    assert {
        ("stride", "crps"),
        ("reg", "crps"),
        ("stride", "spread_skill"),
        ("stride", "spectrum_error"),
    } <= keys
    assert ("reg", "spread_skill") not in keys  # one member: no spread
    crpss = table[table["metric"] == "crpss"]
    assert set(crpss["reference"]) == {"bicubic", "bilinear"} and set(crpss["model"]) >= {"stride", "reg"}
    figures = sorted(p.name for p in (tmp_path / "metrics_figures").glob("*.png"))
    assert "probabilistic_precip.png" in figures and "scale_precip.png" in figures
    # MLflow: a model-training experiment (the UI opens on its runs table), the figures as artifacts.
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / TRACKING_DB}")
    (experiment,) = [e for e in client.search_experiments() if e.name != "Default"]
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    (run,) = client.search_runs([experiment.experiment_id])
    logged = {a.path for a in client.list_artifacts(run.info.run_id, "figures")}
    assert {f"figures/{name}" for name in figures} == logged


def test_regression_store_is_labelled_regression_and_plots_mode_writes_no_table(
    stores: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "m.parquet"
    assert main(["--samples", str(stores["regression"]), "--out", str(out), "--set", "baselines=[]"]) == 0
    assert set(pd.read_parquet(out)["model"]) == {"regression", "truth"}
    plots = tmp_path / "p.parquet"
    assert main(["--samples", str(stores["edm"]), "--out", str(plots), "--mode", "plots"]) == 0
    assert not plots.exists() and any((tmp_path / "p_figures").glob("*.png"))


def test_minimal_mode_has_only_headline_families(stores: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "m.parquet"
    assert main(["--samples", str(stores["edm"]), "--out", str(out), "--mode", "minimal"]) == 0
    table = pd.read_parquet(out)
    assert set(table["family"]) == {"probabilistic", "deterministic"} and table["date"].isna().all()


def test_comparison_on_another_grid_or_other_dates_is_a_one_line_error(
    stores: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], write_samples: Writer
) -> None:
    members, truth = precip_case(size=16)
    small = write_samples(tmp_path / "small.zarr", members, truth, variable="precip", units="mm h-1")
    members, truth = precip_case()
    shifted = write_samples(
        tmp_path / "late.zarr", members, truth, variable="precip", units="mm h-1", start="2021-01-01"
    )
    out = tmp_path / "m.parquet"
    for other, message in ((small, "grid latlon (16, 16) differs"), (shifted, "covers other dates")):
        capsys.readouterr()
        assert main(["--samples", str(stores["edm"]), "--out", str(out), "--compare", f"v2={other}"]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1 and "--compare v2=" in err
        assert not out.exists()


def test_perturbation_response_of_a_store_from_perturbed_inputs(
    tmp_path: Path, write_samples: Writer
) -> None:
    # The same seeds on inputs 2 K warmer: members 1.6 K warmer carry 80% of the imposed change.
    rng = np.random.default_rng(5)
    truth = (280 + rng.normal(size=(6, 16, 16))).astype(np.float32)
    members = (truth[:, None] + rng.normal(size=(6, 3, 16, 16))).astype(np.float32)
    base = write_samples(tmp_path / "base.zarr", members, truth)
    warm = write_samples(tmp_path / "warm.zarr", members + 1.6, truth, lr_offset=2.0)
    twin = write_samples(tmp_path / "twin.zarr", members + 0.5, truth)  # same inputs: no perturbation
    out = tmp_path / "m.parquet"
    args = [
        "--samples",
        str(base),
        "--out",
        str(out),
        "--compare",
        f"warm={warm}",
        "--compare",
        f"twin={twin}",
    ]
    assert main([*args, "--set", "families=[features]", "--set", "baselines=[]"]) == 0
    table = pd.read_parquet(out)
    rows = table[table["metric"].str.startswith("perturbation")]
    values = dict(zip(rows["metric"], rows["value"], strict=True))
    assert set(rows["model"]) == {"warm"} and set(rows["reference"]) == {"stride"}
    assert values["perturbation_imposed"] == pytest.approx(2.0, rel=1e-5)
    assert values["perturbation_response"] == pytest.approx(1.6, rel=1e-4)
    assert values["perturbation_ratio"] == pytest.approx(0.8, rel=1e-4)
    lr_bias = table[(table["metric"] == "lr_bias")].set_index("model")["value"]
    assert lr_bias["warm"] == pytest.approx(lr_bias["stride"] - 0.4, abs=1e-4)  # against its own input


def test_climatology_on_by_default_goes_without_a_moved_dataset_unless_asked_for(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], write_samples: Writer
) -> None:
    members, truth = precip_case()
    moved = write_samples(
        tmp_path / "moved.zarr",
        members,
        truth,
        variable="precip",
        units="mm h-1",
        lineage=tmp_path / "gone.zarr",
    )
    out = tmp_path / "m.parquet"
    assert main(["--samples", str(moved), "--out", str(out), "--mode", "minimal"]) == 0
    assert "climatology" not in set(pd.read_parquet(out)["model"])
    asked = tmp_path / "asked.parquet"
    assert main(["--samples", str(moved), "--out", str(asked), "--set", "baselines=[climatology]"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "gone.zarr does not exist" in err and "baseline.dataset=" in err and not asked.exists()


def test_samples_without_a_target_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], write_samples: Writer
) -> None:
    members, truth = precip_case()
    blind = write_samples(
        tmp_path / "blind.zarr", members, truth, variable="precip", units="mm h-1", has_target=False
    )
    out = tmp_path / "m.parquet"
    assert main(["--samples", str(blind), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "has no target values" in err and "generate from a dataset with targets" in err
    assert len(err.splitlines()) == 1 and not out.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--set", "thresholds={precip: [500.0]}"],
            "thresholds.precip: 500.0 lies outside the truth's range",
        ),
        (["--mode", "everything"], "mode"),
        (["--set", "families=[colours]"], "families"),
        (["--compare", "nolabel"], "is not LABEL=PATH"),
        (["--set", "validity_mask=land"], "validity_mask: 'land' is not a static variable"),
    ],
)
def test_bad_options_are_one_line_errors(
    stores: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    out = tmp_path / "m.parquet"
    assert main(["--samples", str(stores["edm"]), "--out", str(out), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not out.exists()
