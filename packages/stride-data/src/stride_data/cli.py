"""`stride-data`: build a STRIDE dataset.zarr from climate sources, or inspect any STRIDE artifact."""

from __future__ import annotations

from collections.abc import Sequence

from stride_core.cli import Option, Tool, command, group, invoke
from stride_data.build import build_dataset
from stride_data.config import DataBuildConfig

EXAMPLE = """\
stride-data build --config configs/era5_uk.yaml --out demo-out/dataset.zarr
STRIDE_DATA=/scratch/era5 stride-data build --config era5.yaml --set coarsen.factor=8
stride-data build --config configs/meteonet_nw.yaml --set lr_source.method=nearest
"""

BUILD = Tool(
    name="stride-data build",
    summary="Build dataset.zarr: HR target, LR conditioning (coarsened, or a regridded LR source), HR statics, "
    "splits.",
    example=EXAMPLE,
    config_model=DataBuildConfig,
    run=build_dataset,
    options=(
        Option("--out", "output", "output Zarr store"),
        Option("--source", "source.path", "source file (relative paths are under $STRIDE_DATA)"),
        Option("--factor", "coarsen.factor", "HR cells per LR cell along each axis", int),
    ),
)


CLI = group(
    "stride-data",
    "Build STRIDE datasets from NetCDF/Zarr (and, with stride-data[grib], GRIB) climate sources.",
    EXAMPLE,
    [command(BUILD, "build")],
)


def main(argv: Sequence[str] | None = None) -> int:
    return invoke(CLI, argv)


if __name__ == "__main__":
    raise SystemExit(main())
