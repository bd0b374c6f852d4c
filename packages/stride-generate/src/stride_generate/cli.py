"""`stride-generate`: sample downscaled ensembles (EDM Heun sampler) and their PMM into samples.zarr."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from stride_core.cli import Option, Tool, run_tool
from stride_generate.config import GenerateConfig
from stride_generate.run import run_generate

TOOL = Tool(
    name="stride-generate",
    summary="Sample an ensemble per date with the EDM Heun sampler (Karras et al. 2022, Alg. 2), compute the "
    "probability-matched mean, and write samples.zarr in physical units. A killed run resumes.",
    example="stride-generate --checkpoint demo-out/checkpoint --dataset demo-out/dataset.zarr "
    "--out demo-out/samples.zarr --members 8\n"
    "stride-generate --config gen.yaml --set sampler.steps=32 --set sampler.S_churn=10",
    config_model=GenerateConfig,
    run=run_generate,
    options=(
        Option("--checkpoint", "checkpoint", "checkpoint folder from stride-train", Path),
        Option("--dataset", "dataset", "dataset.zarr providing the conditioning (and targets)", Path),
        Option("--out", "output", "output samples.zarr", Path),
        Option("--members", "members", "ensemble members per date", int),
        Option("--steps", "sampler.steps", "sampler steps", int),
        Option("--split", "split", "which split's dates to downscale"),
    ),
)


def main(argv: Sequence[str] | None = None) -> int:
    return run_tool(TOOL, argv)


if __name__ == "__main__":
    raise SystemExit(main())
