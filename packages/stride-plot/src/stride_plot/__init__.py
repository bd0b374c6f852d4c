"""stride-plot: quicklooks and metric plots."""
