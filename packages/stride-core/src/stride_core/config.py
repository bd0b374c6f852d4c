"""Config models that validate on construction, and YAML loading with dotted overrides."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from stride_core.errors import ConfigError


class StrictConfig(BaseModel):
    """Base for every config section: unknown keys are errors, values are validated on construction."""

    model_config = ConfigDict(extra="forbid", validate_default=True)


class _Loader(yaml.SafeLoader):
    """SafeLoader whose dates that the standard calendar lacks (2000-02-30 of a `360_day` config) stay strings,
    read later in the data's own calendar (stride_core.calendars), instead of failing inside PyYAML."""

    def construct_yaml_timestamp(self, node: yaml.Node) -> Any:
        try:
            return super().construct_yaml_timestamp(node)  # type: ignore[arg-type]
        except ValueError:
            return self.construct_scalar(node)  # type: ignore[arg-type]


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_yaml_timestamp)


def safe_load(text: str) -> Any:
    """yaml.safe_load, except that impossible standard-calendar dates are returned as strings."""
    return yaml.load(text, Loader=_Loader)  # a SafeLoader subclass: no arbitrary objects


def load_yaml_mapping(path: Path) -> dict[str, Any]:
    """Read a YAML file that must hold a mapping."""
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found; pass an existing YAML file to --config")
    try:
        data = safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}:{where} is not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys, got {type(data).__name__}")
    return data


def set_dotted(target: dict[str, Any], dotted_key: str, value: Any) -> None:
    """Set `a.b.c` in a nested dict, creating the intermediate mappings."""
    keys = dotted_key.split(".")
    node = target
    for key in keys[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = {}
            node[key] = child
        node = child
    node[keys[-1]] = value


def parse_override(text: str) -> tuple[str, Any]:
    """Parse `key.path=value`, reading the value as YAML so numbers, lists and booleans keep their types."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE, e.g. --set training.steps=200")
    try:
        value = safe_load(raw)
    except yaml.YAMLError:
        value = raw
    return key.strip(), value


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """Flatten nested mappings into dotted keys (lists stay values), e.g. for MLflow params."""
    if not isinstance(data, dict):
        return {prefix: data}
    flat: dict[str, Any] = {}
    for key, value in data.items():
        dotted = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) and value:
            flat.update(flatten(value, dotted))
        else:
            flat[dotted] = value
    return flat


def describe_validation_error(exc: ValidationError, source: str, model: type[BaseModel]) -> str:
    """One line naming the source, the dotted field, the problem and the way out."""
    error = exc.errors()[0]
    location = ".".join(str(part) for part in error["loc"]) or "(top level)"
    if error["type"] == "extra_forbidden":
        parent = _model_at(model, [str(p) for p in error["loc"][:-1]])
        allowed = ", ".join(parent.model_fields) if parent is not None else "see --help"
        message = f"{source}: unknown key '{location}' (allowed here: {allowed})"
    elif error["type"] == "missing":
        message = f"{source}: '{location}' is required; set it in the config or with its option"
    else:
        value = error.get("input")
        shown = "" if isinstance(value, dict) else f" (got {value!r})"
        problem = str(error["msg"]).removeprefix("Value error, ")
        message = f"{source}: '{location}': {problem}{shown}"
    more = len(exc.errors()) - 1
    return message + (f" [+{more} more problem(s); fix this one first]" if more else "")


def _model_at(model: type[BaseModel], path: list[str]) -> type[BaseModel] | None:
    current: type[BaseModel] = model
    for key in path:
        field = current.model_fields.get(key)
        annotation = field.annotation if field is not None else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        current = annotation
    return current


def to_yaml(config: BaseModel) -> str:
    """The resolved config as YAML (JSON-compatible values: paths and dates become strings)."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
