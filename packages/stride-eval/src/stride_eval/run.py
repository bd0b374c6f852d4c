"""`stride-eval` work: read samples.zarr, build baselines, run the configured families, write metrics.parquet."""

from __future__ import annotations

import numpy as np
import pandas as pd

from stride_contracts import METRICS_COLUMNS, MetricRow, MetricsManifest, SamplesManifest
from stride_contracts.samples import SAMPLES_ARRAYS
from stride_core.artifacts import load_variable, open_zarr_artifact, write_parquet_artifact
from stride_core.errors import ArtifactError
from stride_core.metrics import bicubic_upsample
from stride_core.progress import get_logger
from stride_core.tracking import RunContext
from stride_core.variables import VariableRegistry
from stride_eval.config import EvalConfig
from stride_eval.families import REGISTRY
from stride_eval.inputs import EvalInputs, Prediction

log = get_logger("stride-eval")


def run_eval(config: EvalConfig, run: RunContext) -> None:
    samples, manifest = open_zarr_artifact(config.samples, SamplesManifest, SAMPLES_ARRAYS)
    run.record_input("samples", config.samples, manifest)
    if not manifest.has_target:
        raise ArtifactError(f"{config.samples}: has no target values; evaluation needs the truth")
    members = load_variable(samples, "members", config.samples).values
    pmm = load_variable(samples, "pmm", config.samples).values
    truth = load_variable(samples, "target", config.samples).values
    cond = load_variable(samples, "cond_dynamic", config.samples).values
    times = pd.DatetimeIndex(samples["time"].values)
    dynamic_names = [v.name for v in manifest.dynamic]
    registry = VariableRegistry.load(config.variables_file)

    rows: list[MetricRow] = []
    for channel, variable in enumerate(manifest.target):
        predictions = {
            "stride": Prediction(
                point=members[:, :, channel].mean(axis=1),
                members=members[:, :, channel] if manifest.n_members > 1 else None,
                pmm=pmm[:, channel] if manifest.n_members > 1 else None,
            )
        }
        if "bicubic" in config.baselines:
            if variable.name in dynamic_names:
                lr = cond[:, dynamic_names.index(variable.name)]
                predictions["bicubic"] = Prediction(
                    point=bicubic_upsample(lr, manifest.grid.factor).astype(np.float32)
                )
            else:
                log.warning("no LR '%s' among the conditioning: bicubic baseline skipped", variable.name)
        registry_spec = registry.get(variable.name)  # unknown variables get no occurrence rows
        inputs = EvalInputs(
            variable=variable.name,
            units=variable.units,
            times=times,
            truth=truth[:, channel],
            predictions=predictions,
            per_date=config.per_date,
            high_k_fraction=config.high_k_fraction,
            positive_definite=registry_spec is not None and registry_spec.is_positive_definite,
            wet_threshold=config.wet_threshold,
        )
        for family in config.families:
            rows += REGISTRY[family](inputs)

    table = pd.DataFrame([row.model_dump() for row in rows], columns=list(METRICS_COLUMNS))
    models = sorted(set(table["model"]) - {"truth"})
    metrics_manifest = MetricsManifest(
        producer=run.producer(),
        inputs=run.inputs,
        models=models,
        n_dates=len(times),
        families=list(config.families),
    )
    write_parquet_artifact(table, metrics_manifest, config.output, MetricRow)
    run.log_artifact(config.output)
    headline = table[table["date"].isna() & table["wavenumber"].isna()]
    keys = headline["model"] + "." + headline["variable"] + "." + headline["metric"]
    run.log_metrics(dict(zip(keys, headline["value"].astype(float), strict=True)))
    for r in headline.itertuples():
        log.info("%-8s %-5s %-15s %10.4f %s", r.model, r.variable, r.metric, r.value, r.units)
    log.info("wrote %s (%d rows)", config.output, len(table))
