"""`stride-eval`: evaluate samples.zarr against its targets and baselines, writing metrics.parquet."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from stride_core.cli import Option, Tool, run_tool
from stride_eval.config import EvalConfig
from stride_eval.run import run_eval

TOOL = Tool(
    name="stride-eval",
    summary="Compute fair CRPS, spread-skill, RMSE/MAE/bias of the ensemble mean and the PMM, and power spectra "
    "for the model and a bicubic baseline; never re-runs inference.",
    example="stride-eval --samples demo-out/samples.zarr --out demo-out/metrics.parquet\n"
    "stride-eval --samples samples.zarr --set families=[probabilistic] --out crps.parquet",
    config_model=EvalConfig,
    run=run_eval,
    options=(
        Option("--samples", "samples", "samples.zarr from stride-generate", Path),
        Option("--out", "output", "output Parquet table", Path),
    ),
)


def main(argv: Sequence[str] | None = None) -> int:
    return run_tool(TOOL, argv)


if __name__ == "__main__":
    raise SystemExit(main())
