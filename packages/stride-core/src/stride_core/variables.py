"""Variable metadata registry: units, colour maps, plot ranges and default transforms in one place."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import Field, ValidationError, model_validator

from stride_core.config import StrictConfig, describe_validation_error, load_yaml_mapping
from stride_core.errors import ConfigError

TransformKind = Literal["zscore", "log_zscore", "boxcox", "sqrt", "minmax"]
"""The kinds of `stride_contracts.checkpoint.TransformSpec`; log_zscore, boxcox and sqrt need x >= 0."""


class VariableSpec(StrictConfig):
    """Everything the code needs to know about a variable besides its values."""

    key: str
    long_name: str
    data_name: str = Field(description="Name of the variable in source files.")
    units: str
    cmap: str = "viridis"
    plot_range: tuple[float, float] | None = None
    groups: list[str] = Field(default_factory=list)
    is_positive_definite: bool = False
    transform_default: TransformKind = "zscore"

    @model_validator(mode="after")
    def _consistent(self) -> VariableSpec:
        # These transforms are only defined for x >= 0 (their inverses clip at zero).
        if self.transform_default in ("log_zscore", "boxcox", "sqrt") and not self.is_positive_definite:
            raise ValueError(f"{self.key}: {self.transform_default} needs is_positive_definite: true")
        return self


class VariableRegistry:
    """The shipped entries, optionally overridden or extended by a user YAML file."""

    def __init__(self, specs: dict[str, VariableSpec]) -> None:
        self._specs = specs

    @classmethod
    def load(cls, user_file: Path | None = None) -> VariableRegistry:
        shipped = yaml.safe_load(resources.files("stride_core").joinpath("variables.yaml").read_text())
        entries: dict[str, dict[str, object]] = dict(shipped)
        source = "shipped variables.yaml"
        if user_file is not None:
            for key, value in load_yaml_mapping(user_file).items():
                entries[key] = {**entries.get(key, {}), **(value or {})}
            source = str(user_file)
        specs = {}
        for key, fields in entries.items():
            try:
                specs[key] = VariableSpec.model_validate({"key": key, **fields})
            except ValidationError as exc:
                raise ConfigError(describe_validation_error(exc, f"{source} [{key}]", VariableSpec)) from None
        return cls(specs)

    def __getitem__(self, key: str) -> VariableSpec:
        try:
            return self._specs[key]
        except KeyError:
            raise ConfigError(
                f"unknown variable '{key}' (known: {', '.join(sorted(self._specs))}); "
                f"add it with a variables YAML file"
            ) from None

    def get(self, key: str) -> VariableSpec | None:
        """The entry for `key`, or None for a variable the registry does not know."""
        return self._specs.get(key)

    def __contains__(self, key: object) -> bool:
        return key in self._specs

    def keys(self) -> list[str]:
        return sorted(self._specs)
