"""`stride-plot`: quicklook PNGs of chosen dates and a metrics summary plot."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from stride_core.cli import Option, Tool, run_tool
from stride_plot.config import PlotConfig
from stride_plot.run import run_plot

TOOL = Tool(
    name="stride-plot",
    summary="Draw quicklooks (LR input, HR truth, two members, PMM, ensemble spread) for chosen dates and a "
    "summary of metrics.parquet.",
    example="stride-plot --samples demo-out/samples.zarr --metrics demo-out/metrics.parquet --out demo-out/plots\n"
    "stride-plot --samples samples.zarr --set 'dates=[2019-03-28T12:00]' --out plots",
    config_model=PlotConfig,
    run=run_plot,
    options=(
        Option("--samples", "samples", "samples.zarr from stride-generate", Path),
        Option("--metrics", "metrics", "metrics.parquet from stride-eval", Path),
        Option("--out", "output", "output folder for PNG files", Path),
        Option("--n-dates", "n_dates", "number of dates to draw when none are listed", int),
    ),
)


def main(argv: Sequence[str] | None = None) -> int:
    return run_tool(TOOL, argv)


if __name__ == "__main__":
    raise SystemExit(main())
