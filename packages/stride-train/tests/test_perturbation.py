"""The perturbation diagnostic measures what a model does with an imposed LR change."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stride_contracts.checkpoint import LogZScoreSpec, TransformSet, VariableTransform, ZScoreSpec
from stride_core.transforms import VariableTransforms
from stride_train.perturbation import perturbation_response, perturbed_batch

TRANSFORMS = VariableTransforms(
    TransformSet(
        target=[VariableTransform(variable="t2m", transform=ZScoreSpec(mean=280.0, std=5.0))],
        dynamic=[
            VariableTransform(variable="t2m", transform=ZScoreSpec(mean=280.0, std=5.0)),
            VariableTransform(variable="precip", transform=LogZScoreSpec(eps=0.1, mean=-1.0, std=2.0)),
        ],
        static=[],
    )
)


def _batch() -> dict[str, torch.Tensor]:
    rng = np.random.default_rng(0)
    physical = np.stack(
        [280 + 5 * rng.normal(size=(3, 2, 4, 6)), rng.gamma(0.5, 2.0, size=(3, 2, 4, 6))], axis=2
    ).astype(np.float32)  # [B, T, C, h, w]
    model_space, _ = TRANSFORMS.forward_conditioning(physical)
    return {"cond_dynamic": torch.from_numpy(model_space)}


def _carrying_sampler(gain: float):
    """A stand-in model whose HR t2m is `gain` x the LR t2m anomaly (last step), upsampled x2, 4 members."""

    def sample(batch: dict[str, torch.Tensor]) -> np.ndarray:
        physical, _ = TRANSFORMS.inverse_conditioning(batch["cond_dynamic"].numpy())
        lr = 280 + gain * (physical[:, -1, 0] - 280)
        hr = lr.repeat(2, axis=-2).repeat(2, axis=-1)
        return np.repeat(hr[:, None, None], 4, axis=1)

    return sample


@pytest.mark.parametrize("gain", [1.0, 0.5, 0.0])
def test_ratio_is_the_fraction_of_the_signal_carried_through(gain: float) -> None:
    result = perturbation_response(_carrying_sampler(gain), _batch(), TRANSFORMS, "t2m", add=2.0)
    assert result.imposed == pytest.approx(2.0, abs=1e-3)
    assert result.response == pytest.approx(2.0 * gain, abs=1e-3)
    assert result.ratio == pytest.approx(gain, abs=1e-3)
    assert set(result.metrics()) == {"perturb.t2m.imposed", "perturb.t2m.response", "perturb.t2m.ratio"}


def test_scaling_changes_only_the_named_channel_in_physical_units() -> None:
    batch = _batch()
    changed, imposed = perturbed_batch(batch, TRANSFORMS, 1, scale=1.2)
    before, _ = TRANSFORMS.inverse_conditioning(batch["cond_dynamic"].numpy())
    after, _ = TRANSFORMS.inverse_conditioning(changed["cond_dynamic"].numpy())
    np.testing.assert_allclose(after[:, :, 1], 1.2 * before[:, :, 1], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(after[:, :, 0], before[:, :, 0], rtol=1e-6)
    assert imposed == pytest.approx(0.2 * before[:, :, 1].mean(), rel=1e-3)


def test_a_variable_that_is_not_an_input_is_refused() -> None:
    with pytest.raises(ValueError, match="not an LR input"):
        perturbation_response(_carrying_sampler(1.0), _batch(), TRANSFORMS, "u10", add=1.0)
