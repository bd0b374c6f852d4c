"""Unit conversions STRIDE applies on reading: affine, unambiguous, and recorded where they happen.

A source variable whose units differ from its registry entry is converted when the two spellings name units
of one quantity related by `value * scale + offset` (K and degC, Pa and hPa, mm h-1 and mm day-1). Mass fluxes
and amounts of water (`kg m-2 s-1`, `kg m-2`) become depths (`mm day-1`, `mm`) with the CF convention of liquid
water equivalent, 1 kg m-2 = 1 mm; that step is taken only for variables of the registry groups in
`WATER_GROUPS`, since a mass flux of anything else (aerosol, carbon) has no depth.

Why a small table rather than pint (or cf_xarray.units, pint with CF spellings): the conversions needed on
reading are few and affine, the one climate data needs most (a precipitation mass flux to a depth rate) is not
dimensional analysis but a physical convention that pint leaves to a custom context, and stride-core stays
free of a unit library's import cost. Anything outside the table stays an error naming both units.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

WATER_GROUPS = frozenset({"precipitation", "water"})
"""Registry groups whose mass fluxes/amounts may be read as liquid water depth (1 kg m-2 = 1 mm)."""

SECONDS = {"s": 1.0, "min": 60.0, "h": 3600.0, "day": 86400.0}

# Each unit: (quantity, factor to the quantity's base unit, offset to it, is a water mass unit).
# base = value * factor + offset. Spellings are normalised by `_normalise` first.
_UNITS: dict[str, tuple[str, float, float]] = {
    "K": ("temperature", 1.0, 0.0),
    "degC": ("temperature", 1.0, 273.15),
    "Pa": ("pressure", 1.0, 0.0),
    "hPa": ("pressure", 100.0, 0.0),
    "kPa": ("pressure", 1000.0, 0.0),
    "m": ("length", 1.0, 0.0),
    "km": ("length", 1000.0, 0.0),
    "1": ("fraction", 1.0, 0.0),
    "%": ("fraction", 0.01, 0.0),
    "m s-1": ("speed", 1.0, 0.0),
    "km h-1": ("speed", 1000.0 / 3600.0, 0.0),
    "m2 s-2": ("geopotential", 1.0, 0.0),
    "W m-2": ("irradiance", 1.0, 0.0),
    "kg kg-1": ("mass_fraction", 1.0, 0.0),
    "g kg-1": ("mass_fraction", 0.001, 0.0),
    # Depths of water in metres of water; rates in metres per second.
    "mm": ("water_depth", 0.001, 0.0),
    "m_water": ("water_depth", 1.0, 0.0),
    **{f"mm {unit}-1": ("water_rate", 0.001 / seconds, 0.0) for unit, seconds in SECONDS.items()},
    **{f"m {unit}-1": ("water_rate", 1.0 / seconds, 0.0) for unit, seconds in SECONDS.items()},
    # Water mass per area: 1 kg m-2 = 1 mm of liquid water (density 1000 kg m-3), only for WATER_GROUPS.
    "kg m-2": ("water_depth", 0.001, 0.0),
    "kg m-2 s-1": ("water_rate", 0.001, 0.0),
}
_WATER_MASS = frozenset({"kg m-2", "kg m-2 s-1"})

_ALIASES = {
    "kelvin": "K",
    "degK": "K",
    "deg_K": "K",
    "C": "degC",
    "°C": "degC",
    "deg_C": "degC",
    "degrees_C": "degC",
    "degree_Celsius": "degC",
    "degrees_Celsius": "degC",
    "celsius": "degC",
    "mbar": "hPa",
    "millibar": "hPa",
    "": "1",
    "fraction": "1",
    "0-1": "1",
    "(0 - 1)": "1",
    "percent": "%",
    "m/s": "m s-1",
    "m s**-1": "m s-1",
    "kg/kg": "kg kg-1",
    "g/kg": "g kg-1",
    "W/m2": "W m-2",
    "W m**-2": "W m-2",
    "m**2 s**-2": "m2 s-2",
    "kg m**-2 s**-1": "kg m-2 s-1",
    "kg/m2/s": "kg m-2 s-1",
    "kg m**-2": "kg m-2",
    "kg/m2": "kg m-2",
    "mm/h": "mm h-1",
    "mm/hr": "mm h-1",
    "mm hr-1": "mm h-1",
    "mm/day": "mm day-1",
    "mm/d": "mm day-1",
    "mm d-1": "mm day-1",
    "m/day": "m day-1",
}


def _normalise(units: str) -> str:
    text = " ".join(str(units).split())
    return _ALIASES.get(text, text)


def same_units(a: str, b: str) -> bool:
    """Two spellings of the same unit (e.g. 'K' and 'kelvin', '1' and 'fraction')."""
    return _normalise(a) == _normalise(b)


@dataclass(frozen=True)
class Conversion:
    """`converted = value * scale + offset`, from `source` to `target` units."""

    source: str
    target: str
    scale: float
    offset: float
    water_equivalent: bool

    def apply(self, values: NDArray[np.floating]) -> NDArray[np.float32]:
        converted = np.asarray(values, dtype=np.float64) * self.scale + self.offset
        return converted.astype(np.float32)

    def describe(self) -> str:
        """One line for manifests and logs, e.g. 'kg m-2 s-1 -> mm day-1: x 86400 (1 kg m-2 = 1 mm water)'."""
        parts = []
        if self.scale != 1.0:
            parts.append(f"x {self.scale:.10g}")
        if self.offset != 0.0:
            parts.append(f"{'+' if self.offset > 0 else '-'} {abs(self.offset):.10g}")
        note = " (liquid water equivalent: 1 kg m-2 = 1 mm)" if self.water_equivalent else ""
        return f"{self.source} -> {self.target}: {' '.join(parts) or 'unchanged'}{note}"


def conversion(source: str, target: str, groups: Iterable[str] = ()) -> Conversion | None:
    """The conversion from `source` to `target` units, or None when there is no unambiguous one.

    Same units (any spelling) give the identity. `groups` are the variable's registry groups: water mass
    fluxes and amounts convert to depths only for variables in `WATER_GROUPS`.
    """
    src, dst = _normalise(source), _normalise(target)
    if src == dst:
        return Conversion(source, target, 1.0, 0.0, water_equivalent=False)
    if src not in _UNITS or dst not in _UNITS:
        return None
    water = bool({src, dst} & _WATER_MASS)
    if water and not WATER_GROUPS & set(groups):
        return None
    (quantity_a, factor_a, offset_a), (quantity_b, factor_b, offset_b) = _UNITS[src], _UNITS[dst]
    if quantity_a != quantity_b:
        return None
    # base = v * factor_a + offset_a = w * factor_b + offset_b  ->  w = v * (fa / fb) + (oa - ob) / fb
    scale = factor_a / factor_b
    offset = (offset_a - offset_b) / factor_b
    return Conversion(source, target, scale, offset, water_equivalent=water)
