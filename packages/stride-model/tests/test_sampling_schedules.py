"""Noise-level schedules: bounds, order, the exact final 0, and each against its defining formula."""

from __future__ import annotations

import math

import numpy as np
import pytest

from stride_model.sampling import SCHEDULES, make_sigmas
from stride_model.sampling.schedules import VP_BETA_D, VP_BETA_MIN, get_schedule


@pytest.mark.parametrize("name", sorted(SCHEDULES))
@pytest.mark.parametrize("n", [2, 7, 40])
def test_every_schedule_runs_from_sigma_max_to_sigma_min_then_zero(name: str, n: int) -> None:
    sigmas = make_sigmas(name, n, 0.002, 80.0, 7.0)
    assert sigmas.shape == (n + 1,)
    assert str(sigmas.dtype) == "torch.float64"
    assert sigmas[0].item() == 80.0 and sigmas[n - 1].item() == 0.002 and sigmas[n].item() == 0.0
    assert (sigmas[1:] < sigmas[:-1]).all()


def test_loglinear_is_geometric() -> None:
    sigmas = make_sigmas("loglinear", 9, 0.01, 100.0)[:-1].numpy()
    ratios = sigmas[1:] / sigmas[:-1]
    np.testing.assert_allclose(ratios, (0.01 / 100.0) ** (1 / 8), rtol=1e-12)


def test_vp_reproduces_edm_vp_discretisation_with_its_own_bounds() -> None:
    # EDM Table 1 (VP): t_i = 1 + i / (N - 1) (eps_s - 1), sigma(t) = sqrt(exp(beta_d t^2 / 2 + beta_min t) - 1).
    n, eps_s = 12, 1e-3

    def sigma(t: float) -> float:
        return math.sqrt(math.exp(0.5 * VP_BETA_D * t**2 + VP_BETA_MIN * t) - 1)

    expected = [sigma(1 + i / (n - 1) * (eps_s - 1)) for i in range(n)]
    ours = make_sigmas("vp", n, sigma(eps_s), sigma(1.0))[:-1].tolist()
    assert ours == pytest.approx(expected, rel=1e-10)


def test_unknown_schedule_lists_the_names() -> None:
    with pytest.raises(
        ValueError, match=r"sampler.schedule: unknown schedule 'cosine'; choose one of karras, loglinear, vp"
    ):
        get_schedule("cosine")
    with pytest.raises(ValueError, match="sigma_min < sigma_max"):
        make_sigmas("vp", 5, 1.0, 0.5)
