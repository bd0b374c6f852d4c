"""stride-train: train an EDM diffusion downscaling model."""
