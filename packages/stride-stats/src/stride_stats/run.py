"""Read a dataset's split lazily, compute the stats of every variable, write stats.parquet."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

import numpy as np
import pandas as pd

from stride_contracts import STATS_COLUMNS, DatasetManifest, StatsManifest, StatsRow
from stride_contracts.dataset import DATASET_ARRAYS, SPLIT_CODES
from stride_core.artifacts import load_variable, open_zarr_artifact, write_parquet_artifact
from stride_core.errors import ArtifactError, ConfigError, StrideError
from stride_core.progress import get_logger, progress
from stride_core.tracking import RunContext
from stride_core.variables import VariableRegistry
from stride_stats.compute import NoValidValuesError, variable_stats
from stride_stats.config import StatsConfig
from stride_stats.sources import ZarrSource

log = get_logger("stride-stats")

LOGGED_COLUMNS = ("mean", "std", "boxcox_lambda", "wet_fraction")
"""Stats columns also logged as MLflow metrics (the whole table is logged as an artifact)."""


def check_valid_count(
    manifest: DatasetManifest, role: str, name: str, split: str, count: int, path: Path
) -> None:
    """A deleted or unreadable chunk reads as NaN: compare the valid values with those the build wrote."""
    built = manifest.valid_counts.get(f"{role}.{name}", {})
    expected = built.get("all" if role == "static" else split)
    if expected is not None and count != expected:
        raise ArtifactError(
            f"{path}: {role} '{name}' has {count} valid values in split '{split}' where stride-data build wrote "
            f"{expected}: the store is damaged (a chunk is missing or unreadable); restore it or re-create it with "
            f"stride-data build"
        )


def run_stats(config: StatsConfig, run: RunContext) -> None:
    registry = VariableRegistry.load(config.variables_file)
    dataset, manifest = open_zarr_artifact(config.dataset, DatasetManifest, DATASET_ARRAYS)
    run.record_input("dataset", config.dataset, manifest)
    split = load_variable(dataset, "split", config.dataset).values
    times = np.flatnonzero(split == SPLIT_CODES[config.split])
    if times.size == 0:
        raise StrideError(f"{config.dataset}: split '{config.split}' is empty; choose another --split")
    path = str(config.dataset)
    jobs: list[tuple[str, object, ZarrSource, str]] = [
        ("target", name, ZarrSource(path, "target", i, times), ref.units)
        for i, (name, ref) in enumerate(zip(dataset["target_var"].values, manifest.target, strict=True))
    ]
    jobs += [
        ("dynamic", name, ZarrSource(path, "cond_dynamic", i, times), ref.units)
        for i, (name, ref) in enumerate(zip(dataset["dynamic_var"].values, manifest.dynamic, strict=True))
    ]
    jobs += [
        ("static", name, ZarrSource(path, "cond_static", i), ref.units)
        for i, (name, ref) in enumerate(zip(dataset["static_var"].values, manifest.static, strict=True))
    ]

    client_context = nullcontext()
    if config.scheduler:
        from distributed import Client

        try:
            client_context = Client(config.scheduler)  # type: ignore[assignment]
        except (OSError, TimeoutError, ValueError) as exc:
            raise ConfigError(
                f"scheduler={config.scheduler}: no Dask scheduler answered ({type(exc).__name__}: {exc}); start "
                f"one there (dask scheduler, then dask worker ADDRESS) or drop --set scheduler for local threads"
            ) from None
    rows = []
    with client_context:
        for role, name, source, units in progress(jobs, desc="variables"):
            try:
                spec = registry.get(str(name))
                stats = variable_stats(
                    source,
                    log_eps=config.log_eps,
                    bins=config.histogram_bins,
                    wet_threshold=config.wet_threshold if spec and spec.is_positive_definite else None,
                    boxcox_shift=config.boxcox_shift,
                    max_samples=config.boxcox_samples,
                    seed=config.seed,
                    task_values=round(config.task_mb * 1e6 / 4),
                )
            except NoValidValuesError:
                raise ArtifactError(
                    f"{config.dataset}: {role} variable '{name}' has no valid value in split '{config.split}'"
                ) from None
            except Exception as exc:
                raise ArtifactError(
                    f"{config.dataset}: reading {role} '{name}' failed ({type(exc).__name__}: {exc}); the store "
                    f"is corrupt or incomplete, re-create it with stride-data build"
                ) from None
            check_valid_count(manifest, role, str(name), config.split, int(stats["count"]), config.dataset)
            rows.append(StatsRow(role=role, variable=str(name), units=units, **stats).model_dump())
    table = pd.DataFrame(rows, columns=list(STATS_COLUMNS))
    stats_manifest = StatsManifest(
        producer=run.producer(), inputs=run.inputs, split=config.split, n_times=int(times.size)
    )
    write_parquet_artifact(table, stats_manifest, config.output, StatsRow)
    run.log_artifact(config.output)
    for row in rows:
        prefix = f"{row['role']}.{row['variable']}"
        metrics = {f"{prefix}.{column}": row[column] for column in LOGGED_COLUMNS if row[column] is not None}
        run.log_metrics(metrics)
    log.info(
        "wrote %s (%d variables over %d %s time steps)", config.output, len(rows), times.size, config.split
    )
