"""Unit conversions on reading, against the defining constants (0 degC = 273.15 K, 1 hPa = 100 Pa, a day of
86400 s, 1 kg m-2 of liquid water = 1 mm)."""

from __future__ import annotations

import numpy as np
import pytest

from stride_core.units import conversion, same_units


@pytest.mark.parametrize(
    ("source", "target", "groups", "value", "expected"),
    [
        ("degC", "K", [], 0.0, 273.15),
        ("K", "degC", [], 300.0, 26.85),
        ("°C", "K", [], -40.0, 233.15),
        ("Pa", "hPa", [], 101325.0, 1013.25),
        ("mbar", "Pa", [], 1000.0, 100000.0),
        ("kg m-2 s-1", "mm day-1", ["precipitation"], 1.0 / 86400.0, 1.0),
        ("kg m-2 s-1", "mm h-1", ["surface", "precipitation"], 1e-3, 3.6),
        ("mm h-1", "mm day-1", [], 2.0, 48.0),
        ("%", "1", [], 50.0, 0.5),
        ("g kg-1", "kg kg-1", [], 5.0, 0.005),
    ],
)
def test_conversions_match_the_defining_constants(
    source: str, target: str, groups: list[str], value: float, expected: float
) -> None:
    found = conversion(source, target, groups)
    assert found is not None
    assert found.apply(np.array([value]))[0] == pytest.approx(expected, rel=1e-6)


def test_water_mass_converts_only_for_water_variables_and_unrelated_units_never() -> None:
    assert conversion("kg m-2 s-1", "mm day-1", ["surface"]) is None
    assert conversion("K", "hPa") is None
    assert conversion("furlong", "m") is None
    described = conversion("kg m-2 s-1", "mm day-1", ["precipitation"])
    assert described is not None and described.describe().startswith("kg m-2 s-1 -> mm day-1: x 86400")
    assert same_units("kelvin", "K") and same_units("fraction", "1") and not same_units("K", "degC")
