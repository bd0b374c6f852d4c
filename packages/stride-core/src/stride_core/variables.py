"""Variable metadata registry: units, colour maps, plot ranges and default transforms in one place."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Literal

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
    standard_name: str | None = Field(default=None, description="CF standard name, where one exists.")
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
    def load(
        cls, user_file: Path | None = None, embedded: Mapping[str, Mapping[str, Any]] | None = None
    ) -> VariableRegistry:
        """Shipped entries, then `embedded` ones (a dataset manifest's `registry`), then the user file's.

        An artifact built with a variables_file carries those entries in its manifest, so later tools pass
        `embedded=manifest.registry` and need no variables_file of their own.
        """
        shipped = yaml.safe_load(resources.files("stride_core").joinpath("variables.yaml").read_text())
        entries: dict[str, dict[str, object]] = dict(shipped)
        source = "shipped variables.yaml"
        for key, value in (embedded or {}).items():
            entries[key] = {name: item for name, item in value.items() if name != "key"}
            source = "the dataset manifest's registry"
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

    def entries(self, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The entries of `keys` as plain JSON-able mappings, for a manifest's `registry` field."""
        return {key: self[key].model_dump(mode="json", exclude={"key"}) for key in keys}
