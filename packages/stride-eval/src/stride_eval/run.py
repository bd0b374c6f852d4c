"""`stride-eval` work: read samples.zarr (and stores to compare), build baselines, run the families, write
metrics.parquet and the family figures."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from stride_contracts import METRIC_QUALIFIERS, METRICS_COLUMNS, MetricRow, MetricsManifest
from stride_core.artifacts import write_parquet_artifact
from stride_core.errors import ConfigError
from stride_core.map_style import map_frame
from stride_core.maps import save_figure
from stride_core.progress import get_logger
from stride_core.tracking import RunContext
from stride_core.variables import VariableRegistry
from stride_eval.baselines import TRAINED_BASELINES, baseline_predictions
from stride_eval.baselines.quantile_mapping import UPSAMPLERS
from stride_eval.baselines.training import lineage_dataset
from stride_eval.config import EvalConfig
from stride_eval.families import MINIMAL_FAMILIES, REGISTRY
from stride_eval.inputs import EvalInputs, Prediction, masked_inputs
from stride_eval.stores import SamplesStore, check_comparable, open_samples, static_validity
from stride_eval.streaming import STREAMING_FAMILIES, StreamingEvaluation

log = get_logger("stride-eval")


def selected_families(config: EvalConfig) -> list[str]:
    families: list[str] = list(dict.fromkeys(config.families))
    if config.mode == "minimal":
        families = [f for f in families if f in MINIMAL_FAMILIES] or list(MINIMAL_FAMILIES)
    if "distributions" in families and "occurrence" in families:
        families.remove("occurrence")  # distributions writes the occurrence rows itself
    return families


def store_prediction(store: SamplesStore, channel: int, members: np.ndarray, pmm: np.ndarray) -> Prediction:
    ensemble = members[:, :, channel]
    if store.manifest.n_members > 1:
        return Prediction(point=ensemble.mean(axis=1), members=ensemble, pmm=pmm[:, channel])
    return Prediction(point=ensemble[:, 0])


def thresholds_for(
    config: EvalConfig, variable: str, units: str, truth: np.ndarray
) -> tuple[tuple[float, ...], tuple[float | None, ...]]:
    """Configured thresholds of `variable` (checked against the truth's range) or the truth's quantiles."""
    finite = truth[np.isfinite(truth)]
    if variable in config.thresholds:
        values = tuple(float(t) for t in config.thresholds[variable])
        if finite.size:
            low, high = float(finite.min()), float(finite.max())
            for threshold in values:
                if not low <= threshold <= high:
                    raise ConfigError(
                        f"thresholds.{variable}: {threshold} lies outside the truth's range [{low:.4g}, {high:.4g}] "
                        f"{units}; give thresholds in the variable's units ({units})"
                    )
        return values, (None,) * len(values)
    if not finite.size:
        return (), ()
    levels = tuple(config.threshold_quantiles)
    return tuple(float(q) for q in np.quantile(finite.astype(np.float64), levels)), levels


def predictions_for(
    config: EvalConfig, main: SamplesStore, others: list[SamplesStore], channel: int, dates: slice | None
) -> tuple[dict[str, Prediction], dict[str, np.ndarray]]:
    """Every model's prediction of target `channel` (all dates, or a slice), and each store's own LR input of
    the variable, by label (where it is one; the evaluated store's is the variable's LR input)."""
    variable = main.manifest.target[channel]
    predictions: dict[str, Prediction] = {}
    lr_by_model: dict[str, np.ndarray] = {}
    for store in (main, *others):
        index = [v.name for v in store.manifest.target].index(variable.name)
        predictions[store.label] = store_prediction(
            store, index, store.load("members", dates), store.load("pmm", dates)
        )
        inputs = [v.name for v in store.manifest.dynamic]
        if variable.name in inputs:
            lr_by_model[store.label] = store.load("cond_dynamic", dates)[:, inputs.index(variable.name)]
    interpolations = [name for name in config.baselines if name in UPSAMPLERS]
    lr = lr_by_model.get(main.label)
    if lr is not None:
        for baseline in interpolations:
            upsample = UPSAMPLERS[baseline]
            predictions[baseline] = Prediction(
                point=upsample(lr, main.manifest.grid.factor).astype(np.float32)
            )
    elif interpolations:
        log.warning("no LR '%s' among the conditioning: interpolation baselines skipped", variable.name)
    times = main.times if dates is None else main.times[dates]
    predictions |= baseline_predictions(
        config.baselines, main.manifest, variable.name, times, lr, config.baseline
    )
    return predictions, lr_by_model


def with_available_baselines(config: EvalConfig, main: SamplesStore) -> EvalConfig:
    """`config` without the trained baselines (climatology, qdm) when no training split can be found: one
    warning here rather than one per variable and chunk. A moved dataset is an error only when the baselines
    were asked for; the default list (climatology on) then warns and goes on without them."""
    trained = [name for name in config.baselines if name in TRAINED_BASELINES]
    if not trained:
        return config
    try:
        found = lineage_dataset(main.manifest, config.baseline.dataset) is not None
    except ConfigError as error:
        if "baselines" in config.model_fields_set or config.baseline.dataset is not None:
            raise
        log.warning("%s: baselines %s skipped", error, trained)
        found = False
    else:
        if not found:
            log.warning(
                "the samples name no input dataset: baselines %s skipped (set baseline.dataset=PATH/dataset.zarr)",
                trained,
            )
    if found:
        return config
    return config.model_copy(
        update={"baselines": [b for b in config.baselines if b not in TRAINED_BASELINES]}
    )


def run_eval(config: EvalConfig, run: RunContext) -> None:
    families = selected_families(config)
    unknown = [f for f in families if f not in REGISTRY]
    if unknown:
        raise ConfigError(f"families: unknown {unknown}; known: {sorted(REGISTRY)}")
    main = open_samples(config.samples, config.label)
    run.record_input("samples", config.samples, main.manifest)
    config = with_available_baselines(config, main)
    others = []
    for label, path in config.compare.items():
        if label == main.label:
            raise ConfigError(
                f"--compare {label}={path}: label '{label}' is the label of --samples; choose another"
            )
        other = open_samples(path, label)
        check_comparable(main, other)
        run.record_input(f"compare.{label}", path, other.manifest)
        others.append(other)
    manifest = main.manifest
    registry = VariableRegistry.load(config.variables_file, embedded=getattr(manifest, "registry", None))
    static_valid = static_validity(main, config.validity_mask)
    times = main.times
    truth_all = main.load("target")
    weights = main.area_weights()
    try:
        frame = map_frame(main.dataset, manifest, config.land_mask)
    except ConfigError as error:
        raise ConfigError(f"land_mask: {error}") from None
    labels = (main.label, *(o.label for o in others), *config.baselines)

    rows: list[MetricRow] = []
    figures: list[Path] = []
    if config.chunk_dates is not None:
        skipped = [f for f in families if f not in STREAMING_FAMILIES]
        if skipped:
            log.warning("chunk_dates: families %s do not stream yet and are skipped", skipped)
        families = [f for f in families if f in STREAMING_FAMILIES]
    for channel, variable in enumerate(manifest.target):
        truth = truth_all[:, channel]
        if static_valid is not None:
            truth = np.where(static_valid, truth, np.nan).astype(truth.dtype)
        spec = registry.get(variable.name)
        thresholds, levels = thresholds_for(config, variable.name, variable.units, truth)
        template = EvalInputs(
            variable=variable.name,
            units=variable.units,
            times=times,
            truth=truth,
            per_date=config.per_date and config.mode != "minimal",
            high_k_fraction=config.high_k_fraction,
            positive_definite=spec is not None and spec.is_positive_definite,
            positive_definite_known=spec is not None,
            wet_threshold=config.wet_threshold,
            area_weights=weights,
            thresholds=thresholds,
            threshold_quantiles=levels,
            quantile_levels=tuple(config.quantiles),
            fss_scales=tuple(config.fss_scales),
            pool_factors=tuple(config.pool_factors),
            variogram_lags=tuple(config.variogram_lags),
            lags=tuple(config.lags),
            dates=tuple(config.dates),
            top_dates=config.top_dates,
            factor=manifest.grid.factor,
            references=tuple(config.baselines),
            evaluated=main.label,
            frame=frame,
            model_labels=labels,
            spec=spec,
        )
        if config.chunk_dates is not None:
            stream = StreamingEvaluation(template, families)
            for start in range(0, len(times), config.chunk_dates):
                dates = slice(start, min(start + config.chunk_dates, len(times)))
                predictions, lr_by_model = predictions_for(config, main, others, channel, dates)
                chunk = replace(
                    template,
                    times=times[dates],
                    truth=truth[dates],
                    predictions=predictions,
                    lr=lr_by_model.get(main.label),
                    lr_by_model=lr_by_model,
                )
                stream.update(masked_inputs(chunk, static_valid))
            variable_rows = stream.rows()
            rows += variable_rows
            if config.mode in ("plots", "full"):
                for name, drawn in stream.figures(variable_rows).items():
                    figures.append(family_figure(config, name, variable.name, drawn))
            continue
        predictions, lr_by_model = predictions_for(config, main, others, channel, None)
        inputs = masked_inputs(
            replace(
                template,
                predictions=predictions,
                lr=lr_by_model.get(main.label),
                lr_by_model=lr_by_model,
            ),
            static_valid,
        )
        for name in families:
            family = REGISTRY[name]
            if config.mode in ("plots", "full"):
                family_rows, figure = family.compute_and_plot(inputs)
                if figure is not None:
                    figures.append(family_figure(config, name, variable.name, figure))
            else:
                family_rows = family.compute(inputs)
            rows += family_rows
            log.info("%s %s: %d rows", name, variable.name, len(family_rows))

    for figure_path in figures:
        run.log_artifact(figure_path, "figures")
    if config.mode == "plots":
        log.info("wrote %d figures to %s", len(figures), config.figures_dir())
        return
    write_table(config, run, rows, families, len(times))


def family_figure(config: EvalConfig, family: str, variable: str, figure: Figure) -> Path:
    """Write one family's figure of one variable as <figures_dir>/<family>_<variable>.png."""
    return save_figure(figure, config.figures_dir() / f"{family}_{variable}.png")


def write_table(
    config: EvalConfig, run: RunContext, rows: Sequence[MetricRow], families: list[str], n_dates: int
) -> None:
    table = pd.DataFrame([row.model_dump() for row in rows], columns=list(METRICS_COLUMNS))
    models = sorted(set(table["model"]) - {"truth"})
    metrics_manifest = MetricsManifest(
        producer=run.producer(), inputs=run.inputs, models=models, n_dates=n_dates, families=families
    )
    write_parquet_artifact(table, metrics_manifest, config.output, MetricRow)
    run.log_artifact(config.output)
    headline = table[table[list(METRIC_QUALIFIERS)].isna().all(axis=1)]
    keys = headline["model"] + "." + headline["variable"] + "." + headline["metric"]
    run.log_metrics(dict(zip(keys, headline["value"].astype(float), strict=True)))
    for r in headline.itertuples():
        log.info("%-10s %-6s %-24s %12.4f %s", r.model, r.variable, r.metric, r.value, r.units)
    log.info("wrote %s (%d rows)", config.output, len(table))
