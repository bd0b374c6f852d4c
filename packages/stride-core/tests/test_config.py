from pathlib import Path

import pytest
from pydantic import Field, ValidationError

from stride_core.config import (
    StrictConfig,
    describe_validation_error,
    flatten,
    load_yaml_mapping,
    parse_override,
    set_dotted,
)
from stride_core.errors import ConfigError


class Inner(StrictConfig):
    steps: int = Field(default=1, ge=1)


class Outer(StrictConfig):
    name: str
    inner: Inner = Inner()


def test_unknown_key_names_the_key_and_allowed_keys() -> None:
    with pytest.raises(ValidationError) as info:
        Outer.model_validate({"name": "a", "inner": {"stepz": 3}})
    message = describe_validation_error(info.value, "cfg.yaml", Outer)
    assert message.startswith("cfg.yaml: unknown key 'inner.stepz'")
    assert "allowed here: steps" in message


def test_bad_value_and_missing_key_messages() -> None:
    with pytest.raises(ValidationError) as info:
        Outer.model_validate({"name": "a", "inner": {"steps": 0}})
    assert "'inner.steps'" in describe_validation_error(info.value, "x", Outer)
    assert "(got 0)" in describe_validation_error(info.value, "x", Outer)
    with pytest.raises(ValidationError) as info:
        Outer.model_validate({})
    assert describe_validation_error(info.value, "x", Outer) == (
        "x: 'name' is required; set it in the config or with its option"
    )


def test_overrides_keep_yaml_types() -> None:
    raw: dict[str, object] = {}
    for text in ["inner.steps=5", "name=abc", "list=[1, 2]"]:
        set_dotted(raw, *parse_override(text))
    assert raw == {"inner": {"steps": 5}, "name": "abc", "list": [1, 2]}
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        parse_override("no-equals-sign")


def test_flatten_dotted() -> None:
    assert flatten({"a": {"b": 1, "c": {"d": [1, 2]}}, "e": None}) == {"a.b": 1, "a.c.d": [1, 2], "e": None}


def test_yaml_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_yaml_mapping(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: line \d+ is not valid YAML"):
        load_yaml_mapping(bad)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("3\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_yaml_mapping(scalar)
