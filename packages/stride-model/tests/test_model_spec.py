"""ModelSpec validation of the optional parts: each flag needs its input size, and older specs still load."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from stride_contracts.checkpoint import ModelSpec

BASE: dict[str, Any] = {
    "in_dynamic_channels": 2,
    "in_static_channels": 1,
    "out_channels": 1,
    "lr_shape": (4, 6),
    "hr_shape": (16, 24),
}


def test_a_spec_without_the_new_fields_still_validates() -> None:
    # What a checkpoint written before the optional parts existed holds.
    old = {**BASE, "use_context_encoder": False, "use_rain_gate": False, "model_channels": 8}
    spec = ModelSpec.model_validate(old)
    assert spec.factor == 4 and spec.context_margin == 0 and not spec.uses_film
    assert spec.n_time_features == 0 and spec.num_var_labels is None and spec.rain_gate_threshold is None


def test_full_spec_properties() -> None:
    spec = ModelSpec(
        **BASE,
        use_context_encoder=True,
        context_shape=(10, 12),
        use_film_doy=True,
        n_time_features=4,
        use_film_vars=True,
        num_var_labels=3,
        use_rain_gate=True,
        rain_gate_threshold=0.1,
    )
    assert spec.context_margin == 3 and spec.uses_film
    assert ModelSpec.model_validate_json(spec.model_dump_json()) == spec


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"use_film_doy": True}, "use_film_doy=True needs n_time_features > 0"),
        ({"n_time_features": 2}, "use_film_doy=False needs n_time_features > 0 exactly when it is on"),
        ({"use_film_vars": True}, "use_film_vars=True needs num_var_labels"),
        ({"use_film_vars": True, "num_var_labels": 0}, "greater than or equal to 1"),
        ({"use_rain_gate": True}, "use_rain_gate=True needs rain_gate_threshold"),
        ({"rain_gate_threshold": 0.1}, "use_rain_gate=False needs rain_gate_threshold set exactly when"),
        ({"use_rain_gate": True, "rain_gate_threshold": float("nan")}, "finite number"),
        ({"use_context_encoder": True}, "use_context_encoder=True needs context_shape"),
        ({"use_context_encoder": True, "context_shape": (6, 10)}, "one integer margin >= 1"),
        ({"use_context_encoder": True, "context_shape": (5, 7)}, "one integer margin >= 1"),
        ({"use_context_encoder": True, "context_shape": (4, 6)}, "one integer margin >= 1"),
        ({"hr_shape": (16, 20)}, r"not an integer factor times lr_shape \(4, 6\)"),
        ({"hr_shape": (18, 27), "channel_mult": (1,)}, "not an integer factor"),
    ],
)
def test_inconsistent_specs_are_refused(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ModelSpec(**{**BASE, **fields})
