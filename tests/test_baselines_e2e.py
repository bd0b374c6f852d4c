"""The statistical baselines in a real chain: stride-eval on the ERA5-UK demo samples with
`baselines: [bicubic, climatology, qdm]` scores them in every family and STRIDE's CRPS skill against
the climatological ensemble."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import Chain, run_cli


@pytest.fixture(scope="module")
def table(chain: Chain) -> pd.DataFrame:
    out = chain.path("metrics_baselines.parquet")
    completed = run_cli(
        [
            "stride-eval",
            "--samples",
            str(chain.path("samples.zarr")),
            "--out",
            str(out),
            "--set",
            "baselines=[bicubic,climatology,qdm]",
            "--set",
            "families=[probabilistic,deterministic,distributions]",
        ],
        chain.env,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return pd.read_parquet(out)


def headline(table: pd.DataFrame, model: str, metric: str, reference: str | None = None) -> float:
    rows = table[(table["model"] == model) & (table["metric"] == metric) & table["date"].isna()]
    rows = rows[rows["reference"] == reference] if reference else rows[rows["reference"].isna()]
    assert len(rows) == 1, f"{model} {metric}: {len(rows)} rows"
    return float(rows["value"].iloc[0])


def test_every_baseline_is_scored(table: pd.DataFrame) -> None:
    assert {"stride", "bicubic", "climatology", "qdm"} <= set(table["model"])
    for model in ("bicubic", "climatology", "qdm"):
        assert headline(table, model, "crps") > 0
    # The climatological ensemble is an ensemble: it has a spread, and a spread-skill ratio.
    assert headline(table, "climatology", "spread_skill") > 0


def test_crps_skill_against_climatology(table: pd.DataFrame) -> None:
    crpss = headline(table, "stride", "crpss", reference="climatology")
    expected = 1 - headline(table, "stride", "crps") / headline(table, "climatology", "crps")
    assert crpss == pytest.approx(expected, rel=1e-6)
    # On 2 m temperature a day's LR input says far more than the March climate: interpolation beats it.
    assert headline(table, "bicubic", "crpss", reference="climatology") > 0.5


def test_quantile_mapping_corrects_the_interpolation(table: pd.DataFrame) -> None:
    """Bicubic interpolation of the block-mean LR field smooths the orographic contrast (too few cold and warm
    cells); quantile mapping per cell, fitted on the training split, restores the truth's distribution."""
    assert headline(table, "qdm", "wasserstein") < headline(table, "bicubic", "wasserstein")
    assert headline(table, "qdm", "crps") < headline(table, "bicubic", "crps")
