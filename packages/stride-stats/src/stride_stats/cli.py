"""`stride-stats`: offline per-variable statistics of a dataset's train split, as stats.parquet."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from stride_core.cli import Option, Tool, run_tool
from stride_stats.config import StatsConfig
from stride_stats.run import run_stats

TOOL = Tool(
    name="stride-stats",
    summary="Compute offline statistics (moments, quantiles, log/sqrt/Box-Cox moments and lambda, wet "
    "fraction) of a dataset split with Dask.",
    example="stride-stats --dataset demo-out/dataset.zarr --out demo-out/stats.parquet\n"
    "stride-stats --dataset big.zarr --set scheduler=tcp://head-node:8786 --out stats.parquet",
    config_model=StatsConfig,
    run=run_stats,
    options=(
        Option("--dataset", "dataset", "input dataset.zarr (from stride-data build)", Path),
        Option("--out", "output", "output Parquet file", Path),
        Option("--split", "split", "which split to describe"),
    ),
)


def main(argv: Sequence[str] | None = None) -> int:
    return run_tool(TOOL, argv)


if __name__ == "__main__":
    raise SystemExit(main())
