"""The hurdle's fill of drawn-wet pixels the diffusion left dry: distribution, rank order, seeds, exact zeros."""

from __future__ import annotations

import numpy as np
import torch
from scipy import stats

from stride_model import apply_rain_gate
from stride_model.rain_gate import fill_lifted, lifted_share, wet_floor

THRESHOLD = 0.1


def _members(seed: int, shape: tuple[int, ...]) -> torch.Tensor:
    """Diffusion-like members: dry (0 or sub-threshold drizzle) on ~90% of pixels, gamma intensities elsewhere."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, THRESHOLD, size=shape)
    wet = rng.uniform(size=shape) < 0.1
    x[wet] = THRESHOLD + rng.gamma(0.7, 0.5, size=int(wet.sum()))
    x[rng.uniform(size=shape) < 0.3] = 0.0
    return torch.from_numpy(x.astype(np.float32))


def test_filled_values_follow_the_members_wet_distribution_and_keep_rank_order() -> None:
    member = _members(0, (1, 96, 96))
    lifted = (member <= THRESHOLD) & (
        torch.rand((1, 96, 96), generator=torch.Generator().manual_seed(1)) < 0.5
    )
    out = fill_lifted(member, lifted, THRESHOLD, lowest=False)
    wet = member[member > THRESHOLD].numpy()
    filled = out[lifted].numpy()
    # Independent reference: scipy's two-sample KS test against the member's own wet values.
    assert stats.ks_2samp(filled, wet).pvalue > 0.05
    assert filled.min() > THRESHOLD
    # Rank order of the sub-threshold values is kept (spatial structure): where they are distinct (> 0),
    # sorting by the diffusion value sorts the filled intensities too.
    before = member[lifted].numpy()
    distinct = before > 0
    order = np.argsort(before[distinct], kind="stable")
    assert np.all(np.diff(filled[distinct][order]) >= 0)
    # Untouched pixels are untouched.
    assert torch.equal(out[~lifted], member[~lifted])


def test_lowest_fill_takes_the_lowest_wet_quantiles_in_rank_order() -> None:
    member = _members(2, (1, 96, 96))
    lifted = (member <= THRESHOLD) & (
        torch.rand((1, 96, 96), generator=torch.Generator().manual_seed(3)) < 0.3
    )
    out = fill_lifted(member, lifted, THRESHOLD)  # lowest=True: wet_fill "low_wet"
    wet = np.sort(member[member > THRESHOLD].numpy().astype(np.float64))
    n, n_wet = int(lifted.sum()), wet.size
    filled = out[lifted].numpy()
    # Independent reference: the empirical CDF of the member's wet values. Every fill lies within the lowest
    # share n / (n + n_wet) of them (up to one order statistic of interpolation), above the threshold.
    share = n / (n + n_wet)
    assert filled.min() > THRESHOLD
    assert np.searchsorted(wet, filled.max(), side="left") <= np.ceil(share * n_wet) + 1
    # The fills are spread over that share, not piled at its bottom: as a sample of the lowest share of the
    # wet values (scipy's KS test against those values), and below the whole distribution's mean.
    lowest = wet[: int(np.ceil(share * n_wet))]
    assert stats.ks_2samp(filled, lowest).pvalue > 0.05
    assert filled.mean() < fill_lifted(member, lifted, THRESHOLD, lowest=False)[lifted].numpy().mean()
    # Rank order of the distinct sub-threshold values is kept, and untouched pixels are untouched.
    before = member[lifted].numpy()
    distinct = before > 0
    order = np.argsort(before[distinct], kind="stable")
    assert np.all(np.diff(filled[distinct][order]) >= 0)
    assert torch.equal(out[~lifted], member[~lifted])


def test_no_own_wet_pixel_falls_back_to_the_floor() -> None:
    member = torch.zeros((1, 8, 8))
    lifted = torch.ones((1, 8, 8), dtype=torch.bool)
    out = fill_lifted(member, lifted, THRESHOLD)
    assert torch.all(out == wet_floor(THRESHOLD))


def test_hurdle_fill_is_deterministic_per_seed_keeps_exact_zeros_and_wet_frequency() -> None:
    shape = (2, 3, 1, 48, 48)
    members = torch.stack(
        [torch.stack([_members(10 * b + k, shape[2:]) for k in range(3)]) for b in range(2)]
    )
    logits = torch.full((2, 1, 48, 48), 0.0)  # P(wet) = 0.5
    seeds = [[5, 6, 7], [8, 9, 10]]
    own = apply_rain_gate(members, logits, "hurdle", seeds, 2.0, THRESHOLD, wet_fill="own_wet")
    floor = apply_rain_gate(members, logits, "hurdle", seeds, 2.0, THRESHOLD, wet_fill="floor")
    # Same occurrence as the floor rule; dry pixels exactly zero.
    assert torch.equal(own > THRESHOLD, floor > THRESHOLD)
    assert torch.equal(own == 0, floor == 0)
    assert torch.all((own == 0) | (own > THRESHOLD))
    # No floor values left where the member has wet pixels of its own.
    assert float((own == wet_floor(THRESHOLD)).float().mean()) < 1e-3
    assert float(own[own > 0].mean()) > float(floor[floor > 0].mean())
    # The default (low_wet): the same occurrence, the lifted pixels between the floor and the whole distribution.
    low = apply_rain_gate(members, logits, "hurdle", seeds, 2.0, THRESHOLD)
    assert torch.equal(low > THRESHOLD, floor > THRESHOLD) and torch.equal(low == 0, floor == 0)
    lifted = (low > THRESHOLD) & (members <= THRESHOLD)
    assert float(floor[lifted].mean()) < float(low[lifted].mean()) < float(own[lifted].mean())
    assert torch.equal(low[~lifted], own[~lifted])
    # Member (b=1, k=2) alone, with its own seed, gives the same field: it depends on its seed alone.
    alone = apply_rain_gate(members[1:, 2:], logits[1:], "hurdle", [[10]], 2.0, THRESHOLD, wet_fill="own_wet")
    assert torch.equal(alone[0, 0], own[1, 2])
    share = lifted_share(members, own, THRESHOLD)
    assert 0.5 < share < 1.0


def test_fill_takes_more_wet_values_than_torch_quantile_accepts() -> None:
    # torch.quantile refuses inputs of more than 2**24 values; a large wet domain has that many wet pixels.
    side = 4097  # 4097**2 > 2**24
    member = torch.full((1, side, side), 2.0)
    member[0, 0, : side // 2] = 4.0
    lifted = torch.zeros_like(member, dtype=torch.bool)
    lifted[0, -1, :4] = True
    member[lifted] = torch.tensor([0.05, 0.0, 0.09, 0.02])
    filled = fill_lifted(member, lifted, threshold=0.1)
    # Mid-rank levels (i + 0.5) / 4 of a field that is 2 on all but 2048 pixels: every fill is 2.
    np.testing.assert_array_equal(filled[lifted].numpy(), np.full(4, 2.0, dtype=np.float32))
    assert torch.equal(filled[~lifted], member[~lifted])
