from pathlib import Path

import pytest

from stride_core.errors import ConfigError
from stride_core.variables import VariableRegistry


def test_shipped_entries() -> None:
    registry = VariableRegistry.load()
    assert registry["precip"].is_positive_definite and registry["precip"].transform_default == "log_zscore"
    assert registry["t2m"].units == "K"
    for key in ("t2m_min", "t2m_max", "u10", "v10", "msl", "z500", "t850", "orography", "lsm"):
        assert key in registry


def test_user_file_overrides_and_adds(tmp_path: Path) -> None:
    user = tmp_path / "vars.yaml"
    user.write_text("t2m: {units: degC}\nsnow: {long_name: snow depth, data_name: sd, units: m}\n")
    registry = VariableRegistry.load(user)
    assert registry["t2m"].units == "degC" and registry["t2m"].cmap == "RdYlBu_r"
    assert registry["snow"].data_name == "sd"


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown variable 'nope'"):
        VariableRegistry.load()["nope"]
    user = tmp_path / "vars.yaml"
    user.write_text("t2m: {transform_default: log_zscore}\n")
    with pytest.raises(ConfigError, match=r"\[t2m\].*log_zscore needs is_positive_definite"):
        VariableRegistry.load(user)


def test_get_returns_none_for_unknown() -> None:
    registry = VariableRegistry.load()
    assert registry.get("t2m") is registry["t2m"] and registry.get("nope") is None


def test_boxcox_and_sqrt_need_positive_definite(tmp_path: Path) -> None:
    user = tmp_path / "vars.yaml"
    for kind in ("boxcox", "sqrt"):
        user.write_text(f"t2m: {{transform_default: {kind}}}\n")
        with pytest.raises(ConfigError, match=f"{kind} needs is_positive_definite"):
            VariableRegistry.load(user)
