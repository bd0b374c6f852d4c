"""stride-stats: offline statistics of a dataset's train split."""
