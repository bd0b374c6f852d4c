"""`stride-plot` work: quicklooks, the metrics summary and report.html into a plots folder, published atomically."""

from __future__ import annotations

from pathlib import Path

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
from stride_plot.report import ReportFigure, write_report

log = get_logger("stride-plot")
REPORT = "report.html"


def eval_figures(config: PlotConfig) -> list[ReportFigure]:
    """stride-eval's family figures (<family>_<variable>.png) from `eval_figures` or beside metrics.parquet."""
    folder = config.eval_figures
    if folder is None and config.metrics is not None:
        folder = config.metrics.parent / f"{config.metrics.stem}_figures"
    if folder is None or not folder.is_dir():
        return []
    figures = []
    for path in sorted(folder.glob("*.png")):
        family, _, variable = path.stem.partition("_")
        caption = f"{family} family, {variable}" if variable else path.stem
        figures.append(ReportFigure(path, caption, "Evaluation families"))
    return figures


def run_plot(config: PlotConfig, run: RunContext) -> None:
    samples, manifest = open_zarr_artifact(config.samples, SamplesManifest, SAMPLES_ARRAYS)
    run.record_input("samples", config.samples, manifest)
    table = metrics_manifest = None
    if config.metrics is not None:
        table, metrics_manifest = read_parquet_artifact(config.metrics, MetricsManifest, MetricRow)
        run.record_input("metrics", config.metrics, metrics_manifest)
    registry = VariableRegistry.load(config.variables_file, embedded=getattr(manifest, "registry", None))
    times = time_index(samples["time"])
    indices = choose_dates(times, list(config.dates), config.n_dates, config.samples)

    with atomic_output(config.output) as staging:
        staging.mkdir()
        written = draw_quicklooks(
            samples,
            manifest,
            indices,
            registry,
            staging,
            land_mask=config.land_mask,
            outline=config.outlines,
            validity_mask=config.validity_mask,
        )
        figures = [ReportFigure(path, _quicklook_caption(path), "Quicklooks") for path in written]
        if table is not None:
            summary = staging / "metrics_summary.png"
            save_figure(metrics_summary_figure(table), summary)
            written.append(summary)
            figures.append(
                ReportFigure(summary, "headline metrics per model and power spectra", "Metrics summary")
            )
        if config.report:
            written.append(
                write_report(
                    staging / REPORT,
                    samples_path=config.samples,
                    samples_manifest=manifest,
                    metrics_path=config.metrics,
                    metrics_manifest=metrics_manifest,
                    table=table,
                    figures=[*figures, *eval_figures(config)],
                )
            )
    for path in written:
        run.log_artifact(config.output / path.name, "plots")
    log.info("wrote %d plots to %s", len(written), config.output)
    if config.report:
        log.info("report: %s", (config.output / REPORT).resolve().as_uri())


def _quicklook_caption(path: Path) -> str:
    """'t2m_min on 2019-03-26 12:00' from quicklook_t2m_min_20190326T1200.png."""
    variable, _, stamp = path.stem.removeprefix("quicklook_").rpartition("_")
    if len(stamp) != 13:
        return path.stem
    return f"{variable} on {stamp[:4]}-{stamp[4:6]}-{stamp[6:8]} {stamp[9:11]}:{stamp[11:13]}"
