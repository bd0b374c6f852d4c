"""`stride-eval`: evaluate samples.zarr against its targets and baselines, writing metrics.parquet."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from stride_core.cli import Option, Tool, run_tool
from stride_eval.config import EvalConfig
from stride_eval.run import run_eval

TOOL = Tool(
    name="stride-eval",
    summary="Score samples against the truth in evaluation families (probabilistic, deterministic, "
    "distributions, extremes, spatial, scale, temporal, dates, features) for the model, bicubic and bilinear "
    "baselines and other samples stores side by side; never re-runs inference.",
    example="stride-eval --samples demo-out/samples.zarr --out demo-out/metrics.parquet\n"
    "stride-eval --samples samples.zarr --set families=[probabilistic] --out crps.parquet\n"
    "stride-eval --samples stride/samples.zarr --compare regression=reg/samples.zarr --mode full --out m.parquet",
    config_model=EvalConfig,
    run=run_eval,
    options=(
        Option("--samples", "samples", "samples.zarr from stride-generate", Path),
        Option("--out", "output", "output Parquet table", Path),
        Option("--mode", "mode", "minimal | metrics | plots | full"),
        Option(
            "--compare",
            "compare",
            "another samples store scored side by side, LABEL=PATH (repeatable)",
            metavar="LABEL=PATH",
            repeat=True,
        ),
    ),
)


def main(argv: Sequence[str] | None = None) -> int:
    return run_tool(TOOL, argv)


if __name__ == "__main__":
    raise SystemExit(main())
