"""Checks every CLI makes before any work: the output can never destroy an input.

An output is published by replacing whatever is at its path (stride_core.atomic), so an output that is an
input, lies inside one (a Parquet file written inside dataset.zarr) or contains one (`--out` a folder that
holds the dataset) would destroy that input. Inputs are every path in the config other than the output,
resolved with symlinks followed; relative source paths are also looked up under the data root.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from stride_core.data_root import data_root
from stride_core.errors import ConfigError


def config_paths(value: Any, prefix: str = "") -> Iterator[tuple[str, Path]]:
    """Every (dotted field, path) in a config model, lists of paths included."""
    if isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from config_paths(getattr(value, name), f"{prefix}{name}.")
    elif isinstance(value, Path):
        yield prefix.rstrip("."), value
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from config_paths(item, f"{prefix}{index}.")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from config_paths(item, f"{prefix}{key}.")


def _places(path: Path) -> set[Path]:
    """Where an input path may point: as given (from the working directory) and under the data root."""
    places = {path.resolve()}
    if not path.is_absolute():
        places.add((data_root() / path).resolve())
    return {place for place in places if place.exists()}


def check_output_apart_from_inputs(config: BaseModel, output_field: str) -> None:
    """Refuse an output that is, lies inside, or contains one of the run's inputs."""
    paths = dict(config_paths(config))
    if output_field not in paths:
        return
    output = paths.pop(output_field).resolve()
    for field, path in paths.items():
        for place in _places(path):
            if output == place:
                relation = "is"
            elif output.is_relative_to(place):
                relation = "lies inside"
            elif place.is_relative_to(output):
                relation = "contains"
            else:
                continue
            raise ConfigError(
                f"{output_field} {output} {relation} the input {field} {place}; writing it would destroy "
                f"that input: choose an output path outside the inputs"
            )
