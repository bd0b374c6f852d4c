"""stride-generate: sample downscaled ensembles from a checkpoint."""
