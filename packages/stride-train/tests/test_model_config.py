"""The model section's optional parts: defaults off, RainGate threshold and weight validated."""

import pytest
from pydantic import ValidationError

from stride_train.config import ModelConfig, RainGateConfig


def test_optional_parts_default_off() -> None:
    config = ModelConfig()
    assert (config.context_encoder, config.film_vars, config.film_doy, config.rain_gate) == (
        False,
        False,
        False,
        None,
    )


def test_rain_gate_section() -> None:
    config = ModelConfig.model_validate(
        {"context_encoder": True, "film_doy": True, "rain_gate": {"threshold": 0.1}}
    )
    assert config.rain_gate == RainGateConfig(threshold=0.1, weight=1.0)
    with pytest.raises(ValidationError, match="threshold"):
        ModelConfig.model_validate({"rain_gate": {"weight": 2.0}})
    with pytest.raises(ValidationError, match="greater than 0"):
        ModelConfig.model_validate({"rain_gate": {"threshold": 0.1, "weight": 0}})
    with pytest.raises(ValidationError, match="greater than or equal to 0"):
        ModelConfig.model_validate({"rain_gate": {"threshold": -1.0}})
    with pytest.raises(ValidationError, match="Extra inputs"):
        ModelConfig.model_validate({"rain_gate": {"threshold": 0.1, "wieght": 2.0}})
