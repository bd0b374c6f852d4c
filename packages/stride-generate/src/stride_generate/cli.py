"""`stride-generate`: sample downscaled ensembles (EDM Heun sampler) and their PMM into samples.zarr."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from stride_core.cli import Option, Tool, command, group, invoke
from stride_generate.config import GenerateConfig
from stride_generate.export import ExportConfig, run_export
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


EXPORT = Tool(
    name="stride-generate export",
    summary="Write a samples.zarr as a CF-1.8 NetCDF file (members on a realization dimension, PMM, ensemble "
    "mean and std, coordinates, grid mapping, units, cell_methods, provenance; the calendar kept).",
    example="stride-generate export --samples demo-out/samples.zarr --out demo-out/samples.nc",
    config_model=ExportConfig,
    run=run_export,
    options=(
        Option("--samples", "samples", "samples.zarr from stride-generate", Path),
        Option("--out", "output", "output NetCDF file", Path),
        Option("--format", "format", "output format (netcdf)"),
    ),
)


CLI = group(
    "stride-generate",
    "Sample downscaled ensembles into samples.zarr (`sample`, the default: `stride-generate --checkpoint ...` "
    "samples) or export a samples.zarr to CF NetCDF (`export`).",
    TOOL.example + "\n" + EXPORT.example,
    [
        command(TOOL, "sample", "Sample ensembles and their PMM into samples.zarr (the default command)."),
        command(EXPORT, "export", "Write a samples.zarr as a CF-1.8 NetCDF file."),
    ],
    default="sample",
)


def main(argv: Sequence[str] | None = None) -> int:
    return invoke(CLI, argv)


if __name__ == "__main__":
    raise SystemExit(main())
