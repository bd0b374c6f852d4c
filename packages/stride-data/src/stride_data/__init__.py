"""stride-data: build a STRIDE dataset.zarr from climate sources."""
