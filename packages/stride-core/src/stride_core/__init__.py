"""Shared STRIDE library: CLI framework, artifact I/O, tracking, variables, transforms, grids, metrics."""

__version__ = "0.1.0"
