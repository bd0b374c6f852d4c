"""`stride-plot` work: quicklooks and the metrics summary into a plots folder, published atomically."""

from __future__ import annotations

from stride_contracts import MetricRow, MetricsManifest, SamplesManifest
from stride_contracts.samples import SAMPLES_ARRAYS
from stride_core.artifacts import open_zarr_artifact, read_parquet_artifact
from stride_core.atomic import atomic_output
from stride_core.calendars import time_index
from stride_core.progress import get_logger
from stride_core.tracking import RunContext
from stride_core.variables import VariableRegistry
from stride_plot.config import PlotConfig
from stride_plot.figures import metrics_summary_figure, save_figure
from stride_plot.quicklook import choose_dates, draw_quicklooks

log = get_logger("stride-plot")


def run_plot(config: PlotConfig, run: RunContext) -> None:
    samples, manifest = open_zarr_artifact(config.samples, SamplesManifest, SAMPLES_ARRAYS)
    run.record_input("samples", config.samples, manifest)
    table = None
    if config.metrics is not None:
        table, metrics_manifest = read_parquet_artifact(config.metrics, MetricsManifest, MetricRow)
        run.record_input("metrics", config.metrics, metrics_manifest)
    registry = VariableRegistry.load(config.variables_file)
    times = time_index(samples["time"])
    indices = choose_dates(times, list(config.dates), config.n_dates, config.samples)

    with atomic_output(config.output) as staging:
        staging.mkdir()
        written = draw_quicklooks(samples, manifest, indices, registry, staging)
        if table is not None:
            summary = staging / "metrics_summary.png"
            save_figure(metrics_summary_figure(table), summary)
            written.append(summary)
    for path in written:
        run.log_artifact(config.output / path.name, "plots")
    log.info("wrote %d plots to %s", len(written), config.output)
