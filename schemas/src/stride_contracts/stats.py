"""Contract for `stats.parquet`: offline per-variable statistics of the train split."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, model_validator

from stride_contracts.base import ArtifactHeader, StrictModel

QUANTILE_LEVELS = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)

_TOGETHER = (
    ("log_mean", "log_std", "log_eps"),
    ("boxcox_lambda", "boxcox_shift", "boxcox_mean", "boxcox_std"),
    ("sqrt_mean", "sqrt_std"),
    ("wet_fraction", "wet_threshold"),
)
"""Nullable columns that describe one thing and are therefore either all set or all None."""


class StatsRow(StrictModel):
    """One row of the stats table: one variable in one role.

    The log, Box-Cox and sqrt columns are set only for variables whose valid train values are all >= 0;
    the wet columns only for variables the registry marks positive-definite.
    """

    role: Literal["target", "dynamic", "static"]
    variable: str
    units: str
    count: int = Field(ge=0, description="Number of valid (non-NaN) values.")
    valid_fraction: float = Field(ge=0, le=1)
    mean: float
    std: float = Field(ge=0)
    min: float
    max: float
    q01: float
    q05: float
    q25: float
    q50: float
    q75: float
    q95: float
    q99: float
    log_mean: float | None = Field(
        default=None, description="Mean of log(x + log_eps); None if x < 0 occurs."
    )
    log_std: float | None = Field(default=None, ge=0)
    log_eps: float | None = Field(default=None, gt=0)
    boxcox_lambda: float | None = Field(
        default=None,
        description="Box-Cox exponent fitted by maximum likelihood to x + boxcox_shift on a reproducible "
        "random subsample of the valid values; None if x < 0 occurs.",
    )
    boxcox_shift: float | None = Field(
        default=None, gt=0, description="Shift added to x before the Box-Cox power (keeps zeros valid)."
    )
    boxcox_mean: float | None = Field(
        default=None, description="Mean of the Box-Cox-transformed values, over every valid value."
    )
    boxcox_std: float | None = Field(default=None, ge=0)
    sqrt_mean: float | None = Field(default=None, description="Mean of sqrt(x); None if x < 0 occurs.")
    sqrt_std: float | None = Field(default=None, ge=0)
    wet_fraction: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Share of valid values > wet_threshold; None unless the variable is positive-definite.",
    )
    wet_threshold: float | None = Field(
        default=None, ge=0, description="Threshold of wet_fraction, in the variable's units."
    )

    @model_validator(mode="after")
    def _groups_complete(self) -> StatsRow:
        for group in _TOGETHER:
            present = [name for name in group if getattr(self, name) is not None]
            if present and len(present) != len(group):
                missing = [name for name in group if name not in present]
                raise ValueError(
                    f"{', '.join(group)} are set together: {', '.join(present)} given, "
                    f"{', '.join(missing)} missing"
                )
        return self


STATS_COLUMNS = tuple(StatsRow.model_fields)


def _with_row_schema(schema: dict[str, Any]) -> None:
    # The rows are most of this contract; carrying their schema makes the committed JSON drift-tested too.
    schema["x-stride-row"] = StatsRow.model_json_schema()


class StatsManifest(ArtifactHeader):
    """Parquet schema metadata key `stride` of `stats.parquet`; its rows follow StatsRow (`x-stride-row`)."""

    model_config = ConfigDict(json_schema_extra=_with_row_schema)

    contract: Literal["stride.stats"] = "stride.stats"
    version: Literal[1] = 1
    split: Literal["train", "val", "test"] = "train"
    n_times: int = Field(ge=1, description="Time steps the statistics were computed over.")
    quantile_levels: tuple[float, ...] = QUANTILE_LEVELS
