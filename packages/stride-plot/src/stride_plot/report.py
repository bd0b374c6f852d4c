"""`report.html`: one self-contained page per run (figures embedded as base64 PNG, no network, no files beside).

The page holds the headline metrics (rows of metrics.parquet with no qualifier set, one column per model),
the figures (quicklooks, the metrics summary, stride-eval's family figures) and the lineage read from the
samples and metrics manifests: the dataset and checkpoint the samples came from, the sampler settings,
and the runs that produced each artifact. Plain HTML and CSS written with the standard library: a template
engine would add a dependency for one page.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

import pandas as pd

from stride_contracts import METRIC_QUALIFIERS, MetricsManifest, SamplesManifest
from stride_contracts.base import ArtifactHeader

STYLE = """
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 1.5em auto; max-width: 1500px;
       padding: 0 1em; color: #1b1b1b; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; } h2 { font-size: 1.2em; border-bottom: 1px solid #ccc;
     padding-bottom: 0.2em; margin-top: 1.6em; }
p.sub { color: #555; margin-top: 0; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f3f3f3; }
figure { margin: 0.8em 0 1.4em 0; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.85em; color: #444; }
code { font-size: 0.9em; background: #f5f5f5; padding: 0 0.2em; }
nav a { margin-right: 1em; }
"""


@dataclass(frozen=True)
class ReportFigure:
    """A PNG to embed, with the caption shown under it and the section it belongs to."""

    path: Path
    caption: str
    section: str


def headline_table(table: pd.DataFrame) -> pd.DataFrame:
    """The headline aggregates (no qualifier set) as one row per (variable, family, metric, units) and one
    column per model ('truth' last); empty when the table has none."""
    qualifiers = [column for column in METRIC_QUALIFIERS if column in table.columns]
    headline = table[table[qualifiers].isna().all(axis=1)] if qualifiers else table
    if headline.empty:
        return pd.DataFrame()
    wide = headline.pivot_table(
        index=["variable", "family", "metric", "units"],
        columns="model",
        values="value",
        aggfunc="mean",
        sort=False,
    )
    models = sorted(wide.columns, key=lambda model: (model == "truth", model != "stride", str(model)))
    return wide[models]


def write_report(
    path: Path,
    *,
    samples_path: Path,
    samples_manifest: SamplesManifest,
    metrics_path: Path | None,
    metrics_manifest: MetricsManifest | None,
    table: pd.DataFrame | None,
    figures: Sequence[ReportFigure],
) -> Path:
    """Write the report page to `path` (inside a folder published atomically by the caller)."""
    targets = ", ".join(v.long_name or v.name for v in samples_manifest.target)
    title = f"STRIDE report: {targets} ({samples_manifest.split} split)"
    sections: list[str] = [
        f"<h1>{escape(title)}</h1>",
        f'<p class="sub">{escape(samples_manifest.model_kind)} model, checkpoint step '
        f"{samples_manifest.checkpoint_step}, {samples_manifest.n_members} member(s); page written "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC by stride-plot.</p>",
    ]
    names = ["Headline metrics", *dict.fromkeys(figure.section for figure in figures), "Lineage"]
    sections.append(
        "<nav>" + "".join(f'<a href="#{_anchor(name)}">{escape(name)}</a>' for name in names) + "</nav>"
    )
    sections.append(_headline_section(table))
    for name in names[1:-1]:
        sections.append(f'<h2 id="{_anchor(name)}">{escape(name)}</h2>')
        sections += [_figure_html(figure) for figure in figures if figure.section == name]
    sections.append(_lineage_section(samples_path, samples_manifest, metrics_path, metrics_manifest))
    page = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        + "\n".join(sections)
        + "\n</body>\n</html>\n"
    )
    path.write_text(page, encoding="utf-8")
    return path


def _anchor(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower())


def _headline_section(table: pd.DataFrame | None) -> str:
    head = f'<h2 id="{_anchor("Headline metrics")}">Headline metrics</h2>'
    if table is None:
        return head + "<p>No metrics.parquet was given (<code>--metrics</code>).</p>"
    wide = headline_table(table)
    if wide.empty:
        return head + "<p>metrics.parquet holds no headline aggregates (rows without qualifiers).</p>"
    models = list(wide.columns)
    rows = [
        "<tr>"
        + "".join(f"<th>{escape(h)}</th>" for h in ("variable", "family", "metric", "units"))
        + "".join(f"<th>{escape(str(model))}</th>" for model in models)
        + "</tr>"
    ]
    for key, values in wide.iterrows():
        variable, family, metric, units = (str(level) for level in key)  # type: ignore[attr-defined]
        cells = "".join(f'<td class="num">{_number(values[model])}</td>' for model in models)
        rows.append(
            f"<tr><td>{escape(str(variable))}</td><td>{escape(str(family))}</td><td>{escape(str(metric))}</td>"
            f"<td>{escape(str(units))}</td>{cells}</tr>"
        )
    note = (
        "<p>Aggregates over all dates and pixels (rows of metrics.parquet with no date, wavenumber, threshold, "
        "scale, quantile, lag, bin or reference); the qualified rows are in the file and in the figures.</p>"
    )
    return head + note + "<table>" + "".join(rows) + "</table>"


def _number(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    return escape(f"{float(value):.4g}")


def _figure_html(figure: ReportFigure) -> str:
    data = base64.b64encode(figure.path.read_bytes()).decode("ascii")
    caption = escape(figure.caption)
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{caption}">'
        f"<figcaption>{caption}</figcaption></figure>"
    )


def _lineage_section(
    samples_path: Path,
    samples: SamplesManifest,
    metrics_path: Path | None,
    metrics: MetricsManifest | None,
) -> str:
    parts = [f'<h2 id="{_anchor("Lineage")}">Lineage</h2>']
    parts.append(_artifact_table("samples", samples_path, samples))
    grid = samples.grid
    details = {
        "model kind": samples.model_kind,
        "checkpoint step": samples.checkpoint_step,
        "EMA weights": samples.use_ema,
        "members": samples.n_members,
        "base seed": samples.base_seed,
        "seed rule": samples.seed_rule or "",
        "split": samples.split,
        "target": ", ".join(f"{v.name} [{v.units}]" for v in samples.target),
        "LR inputs": ", ".join(f"{v.name} [{v.units}]" for v in samples.dynamic),
        "statics": ", ".join(f"{v.name} [{v.units}]" for v in samples.static),
        "grid": f"{grid.kind}, HR {grid.hr_shape[0]} x {grid.hr_shape[1]}, LR x{grid.factor} coarser "
        f"({grid.lr_method}), row 0 {'north' if grid.lat_descending else 'south'}"
        + (f", region {grid.region}" if grid.region else ""),
    }
    parts.append("<h3>Samples</h3>" + _key_values(details))
    parts.append("<h3>Sampler settings</h3>" + _key_values(samples.sampler.model_dump()))
    if metrics is not None and metrics_path is not None:
        parts.append(_artifact_table("metrics", metrics_path, metrics))
        parts.append(
            "<h3>Evaluation</h3>"
            + _key_values(
                {
                    "models": ", ".join(metrics.models),
                    "families": ", ".join(metrics.families),
                    "dates": metrics.n_dates,
                }
            )
        )
    return "\n".join(parts)


def _artifact_table(role: str, path: Path, manifest: ArtifactHeader) -> str:
    producer = manifest.producer
    rows = [
        ("this artifact", role, Path(path).resolve().as_uri(), manifest.contract, producer.mlflow_run_id),
        *((f"input of {role}", i.role, i.uri, i.contract, i.mlflow_run_id) for i in manifest.inputs),
    ]
    body = "".join(
        "<tr>"
        + "".join(f"<td>{escape(str(cell) if cell is not None else '')}</td>" for cell in row)
        + "</tr>"
        for row in rows
    )
    return (
        f"<h3>{escape(role)} ({escape(producer.tool)} {escape(producer.stride_version)}, "
        f"{producer.created_utc:%Y-%m-%d %H:%M} UTC)</h3><table><tr><th></th><th>role</th><th>uri</th>"
        f"<th>contract</th><th>MLflow run</th></tr>{body}</table>"
    )


def _key_values(items: dict[str, Any]) -> str:
    body = "".join(f"<tr><th>{escape(str(k))}</th><td>{escape(str(v))}</td></tr>" for k, v in items.items())
    return f"<table>{body}</table>"
