"""RainGate: the probability that each HR pixel is wet, from the conditioning alone, and its use on samples.

The head reads the condition image (not the noisy target), so generation computes it once per date and
sets each member's dry pixels to exactly zero; a diffusion model alone leaves a drizzle of small values
where it should be dry, which inflates the wet-day frequency.

How a member's dry pixels are chosen (`RainGateRule`):

- "hurdle" (the default of generation): a two-part (occurrence x intensity) model, the hurdle model of
  precipitation statistics. Occurrence is member k's own draw from P(wet) (as "sample" below), so each pixel
  is wet in a share P(wet) of the members; intensity given wet is the diffusion member's value, never below
  the wet threshold: a pixel the draw calls wet where the diffusion member is at or below the threshold (its
  drizzle, or an exact zero) takes the smallest wet value (the float32 just above the threshold), a pixel the
  draw calls dry is exactly 0. The ensemble's wet frequency is then the draw's, E[P(wet)], whatever the
  diffusion's own occurrence.
- "sample": member k draws its own wet/dry field from P(wet) and keeps the diffusion member's value where the
  draw is wet. A pixel is then wet only where both the draw and the diffusion member are, so the
  ensemble's wet frequency is about P(wet) x P(diffusion wet) (measured on the dry case, bench/dry_case.py:
  0.102 against the truth's 0.159, where the diffusion members alone give 0.131 and E[P(wet)] 0.163).
- "threshold" (the old rule, kept for the ablation): dry wherever P(wet) < 0.5, the same in every member.
  On dry-dominated climates an uncertain rain event (P(wet) 0.3, say) is then removed from every member,
  and the ensemble rains far less often than the truth.
- "none": the gate is not applied; the diffusion members are kept as sampled (for ablations). Not "off",
  which YAML reads as false.

The draw ("hurdle", "sample") uses a generator seeded from member k's seed alone, so member k is the same
whether it is generated alone or with others. It thresholds a Gaussian random field at Phi^-1(P(wet)): white
noise, optionally smoothed by a Gaussian kernel of `length` HR pixels and renormalised to unit variance, so
every pixel is wet with probability P(wet) exactly while neighbouring pixels decide together (rain comes in
areas, not as salt and pepper).

Why the hurdle, and why not recalibrating P(wet) (measured on the dry case, `make bench-dry-case`, 10 test
dates x 8 members; bench/results/dry_case.json): the gate's probabilities are calibrated on the test dates
(mean P(wet) 0.159 against a wet frequency of 0.155; per P bin 0.19/0.40/0.60/0.81/0.97 against
0.23/0.42/0.59/0.74/0.89), while the diffusion members alone rain less (0.131 against 0.159), and in 38% of
the pixels the draw calls wet the diffusion member is dry: the under-raining of "sample" (0.102) is the product
of two occurrences, not the gate's bias. A Platt fit on the validation split (11 consecutive 5-min frames,
where mean P(wet) is 0.184 against 0.146) would move the test dates' mean P(wet) to 0.121, away from the
truth, so no recalibration is applied. The hurdle rains 0.164 (+3%), with p99 0.82 against 0.96 (-14%) and a
fair CRPS 0.0284 (skill 0.52 against the climatological ensemble; 0.0293 for "sample", 0.0296 for
"threshold"); its cost is the mean wet intensity, 0.30 against 0.35 mm/h, as the lifted pixels sit at the
threshold. Training the diffusion on intensity given wet (dry pixels out of the loss) would be the other half
of a hurdle model; it is not done.

The lifted pixels' intensity (wet_fill, fill_lifted): on the pp case (MeteoNet AROME tp from ARPEGE t2m,
600-step checkpoint, val, 4 dates x 4 members) 98.4% of the hurdle's wet values are lifted. With the floor
the ensemble's mean wet intensity is 0.104 and its p99 0.100 mm/h against 0.350 and 0.752 in the truth; with
"own_wet" 0.351 and 0.879 (fair CRPS 0.0421 against 0.0411 with the floor and 0.0350 for climatology: the
gate still rains in the wrong places, wet frequency 0.172 against 0.107). On the later tp case (coarsened
AROME tp + ARPEGE t2m, 600-step checkpoint, val, 4 dates x 4 members) "own_wet" over-rains in intensity (wet
mean 0.442 against 0.350, p99 0.926 against 0.752 with 8 Heun steps): the lifted pixels sit at the edges of
the rain areas (the truth's mean wet intensity is 0.12-0.19 mm/h where 0.1 < P(wet) < 0.9) but took the
member's whole wet distribution (mean 0.395). "low_wet" (the default) gives them the member's lowest wet
values instead (fill_lifted says why): lifted mean 0.118, ensemble wet mean 0.385 and p99 0.845 with 8 steps,
0.340 and 0.731 with 16 (fair CRPS 0.0095 / 0.0092, the lowest of the three fills; "floor" 0.0096 / 0.0093).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from stride_contracts.checkpoint import ModelSpec
from stride_core.config import StrictConfig
from stride_model.unet import _conv, _init, num_groups

# 3x3 convolutions with growing dilation: a 15-pixel receptive field at HR for a few small layers.
_DILATIONS = (1, 2, 4)


class RainGate(nn.Module):
    """Condition image [B, in_channels, H, W] (and the FiLM vector) -> wet logits [B, out_channels, H, W].

    Each layer is conv - group norm - FiLM scale/shift - SiLU. The output layer starts at zero: the untrained
    gate says P(wet) = 0.5 everywhere, which the threshold rule of apply_rain_gate keeps.
    """

    def __init__(self, spec: ModelSpec, film_channels: int | None) -> None:
        super().__init__()
        width = spec.model_channels
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        cin = spec.in_channels
        for dilation in _DILATIONS:
            conv = nn.Conv2d(cin, width, 3, padding=dilation, dilation=dilation)
            _init(conv)
            self.convs.append(conv)
            self.norms.append(nn.GroupNorm(num_groups(width), width))
            cin = width
        # Without a FiLM vector there is nothing to modulate with; the layers are then plain conv-norm-SiLU.
        self.affine: nn.Linear | None = None
        if film_channels is not None:
            self.affine = nn.Linear(film_channels, 2 * width * len(_DILATIONS))
            _init(self.affine)
        self.out = _conv(width, spec.out_channels, 1)
        nn.init.zeros_(self.out.weight)

    def forward(self, image: Tensor, film: Tensor | None = None) -> Tensor:
        if (film is None) != (self.affine is None):
            raise ValueError(
                "RainGate: a FiLM vector must be given exactly when the spec turns on a FiLM input "
                f"(built {'with' if self.affine is not None else 'without'} one)"
            )
        modulation: list[Tensor] = []
        if self.affine is not None and film is not None:
            modulation = list(self.affine(film)[:, :, None, None].chunk(2 * len(_DILATIONS), dim=1))
        x = image
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms, strict=True)):
            x = norm(conv(x))
            if modulation:
                scale, shift = modulation[2 * i], modulation[2 * i + 1]
                x = torch.addcmul(shift, x, scale + 1)
            x = F.silu(x)
        logits: Tensor = self.out(x)
        return logits


RainGateRule = Literal["hurdle", "sample", "threshold", "none"]
RAIN_GATE_RULES: tuple[RainGateRule, ...] = ("hurdle", "sample", "threshold", "none")
DEFAULT_GATE_RULE: RainGateRule = "hurdle"
"""The rule of generation and of the inline evaluation unless told otherwise (the module docstring says why)."""
WetFill = Literal["low_wet", "own_wet", "floor"]
WET_FILLS: tuple[WetFill, ...] = ("low_wet", "own_wet", "floor")
DEFAULT_WET_FILL: WetFill = "low_wet"
"""How the hurdle gives an intensity to a drawn-wet pixel the diffusion left dry (fill_lifted says why)."""
DEFAULT_GATE_LENGTH = 4.0
"""HR pixels: wet/dry decided together over a few pixels (a few km at 1 km), the scale of a rain cell's edge."""


class RainGateSettings(StrictConfig):
    """How generation turns the RainGate's P(wet) into each member's dry pixels."""

    # The hurdle rule by default: the only rule whose wet frequency follows P(wet) (see the module docstring
    # and bench/dry_case.py for the ablation of every rule on the dry case).
    rule: RainGateRule = Field(
        default=DEFAULT_GATE_RULE,
        description="hurdle: each member draws its wet pixels from P(wet) with its own seed, takes the "
        "diffusion member's value there but never below the wet threshold, and 0 elsewhere; sample: the same "
        "draw, keeping the diffusion member's value where the draw is wet (wet only where both are); "
        "threshold: dry wherever P(wet) < 0.5 in every member; none: the members as the diffusion model "
        "samples them.",
    )
    length: float = Field(
        default=DEFAULT_GATE_LENGTH,
        ge=0.0,
        description="Correlation length (HR pixels, Gaussian) of each member's draw; 0 draws every pixel "
        "independently. Each pixel stays wet with probability P(wet) whatever the length.",
    )
    wet_fill: WetFill = Field(
        default=DEFAULT_WET_FILL,
        description="hurdle only: the intensity of a drawn-wet pixel the diffusion left dry. low_wet: the "
        "lowest of the member's own wet values (> threshold), as if its rain area extended to these pixels at "
        "its edges, rank-mapped from its sub-threshold values so the spatial order is kept (the floor where the "
        "member has no wet pixel); own_wet: the same rank mapping onto the member's whole wet distribution "
        "(over-rains in intensity on the pp tp case, p99 +23%); floor: just above the wet threshold (the "
        "rule before own_wet, which left 98% of the pp t2m case's wet values at 0.1 mm/h).",
    )


_GATE_STREAM = 0x52474154
"""Mixed into each member's seed, so its gate draw is independent of the sampler noise of the same seed."""


def gate_seed(seed: int) -> int:
    """The seed of member `seed`'s gate generator: a function of that seed alone."""
    state = np.random.SeedSequence([int(seed), _GATE_STREAM]).generate_state(1, np.uint64)[0]
    return int(state)


def gaussian_kernel(length: float) -> Tensor:
    """1-D Gaussian kernel of standard deviation `length` pixels (radius 3 length), unit sum of squares."""
    radius = max(1, math.ceil(3 * length))
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-0.5 * (offsets / length) ** 2)
    return kernel / kernel.square().sum().sqrt()


def gate_uniforms(seeds: Sequence[int], shape: tuple[int, int, int], length: float = 0.0) -> Tensor:
    """Uniform(0, 1) fields [len(seeds), C, H, W], one per seed from that seed alone (float64).

    With length > 0 the underlying standard normal field is smoothed by a separable Gaussian kernel whose
    weights have unit sum of squares, so it stays exactly standard normal at every pixel (the noise is drawn
    on a margin around the domain, so the edges are no different).
    """
    if length < 0:
        raise ValueError(f"rain gate: correlation length must be >= 0 pixels, got {length}")
    channels, height, width = shape
    kernel = gaussian_kernel(length) if length > 0 else None
    radius = 0 if kernel is None else (kernel.numel() - 1) // 2
    fields = []
    for seed in seeds:
        generator = torch.Generator().manual_seed(gate_seed(seed))
        z = torch.randn(
            (channels, 1, height + 2 * radius, width + 2 * radius), generator=generator, dtype=torch.float64
        )
        if kernel is not None:
            z = F.conv2d(z, kernel.view(1, 1, -1, 1))
            z = F.conv2d(z, kernel.view(1, 1, 1, -1))
        fields.append(z[:, 0])
    normal = torch.stack(fields)
    return 0.5 * (1 + torch.erf(normal / math.sqrt(2)))


def wet_floor(threshold: float) -> float:
    """The smallest float32 value above `threshold`: the intensity of a hurdle-wet pixel the diffusion left dry."""
    return float(np.nextafter(np.float32(threshold), np.float32(np.inf)))


def fill_lifted(member: Tensor, lifted: Tensor, threshold: float, lowest: bool = True) -> Tensor:
    """One member [C, H, W] with its `lifted` pixels (drawn wet, diffusion value <= threshold) given intensities.

    Why the member's own wet values: its conditional distribution given wet is the best estimate the model
    has of the intensity given wet, for this date and this member; the training split's wet quantiles would
    ignore the date. Rank mapping keeps the spatial structure: per channel, the lifted pixels sorted by their
    (continuous, sub-threshold) diffusion value take the member's wet values at increasing quantile levels,
    so a pixel close to raining gets more rain than one far from it. The member's values alone are used, so
    member k still depends on seeds[b][k] alone. A channel with no wet pixel of its own falls back to
    wet_floor(threshold).

    Which levels. lowest=True (wet_fill "low_wet", the default): the lifted pixels extend the member's rain
    areas at their edges, and their diffusion values lie below every wet value of the member, so in a
    monotone extension of its rain area to the n + n_w pixels (n lifted, n_w wet) they hold the lowest ranks:
    the i-th of the n takes the member's wet quantile at level (i + 0.5) / (n + n_w), within the lowest share
    n / (n + n_w) of its wet distribution. lowest=False (wet_fill "own_wet"): levels (i + 0.5) / n, so the
    filled values follow the member's whole wet distribution (the test checks it with a two-sample KS test).
    Measured on the pp tp case (val, 600-step checkpoint, 8 Heun steps): the truth's mean wet intensity where
    0.1 < P(wet) < 0.9 is 0.12-0.19 mm/h; the lowest levels fill 0.118 on average, the whole distribution
    0.395, which lifted the ensemble's p99 to +23% of the truth's.
    """
    out = member.clone()
    floor = wet_floor(threshold)
    for c in range(member.shape[0]):
        mask = lifted[c]
        n = int(mask.sum())
        if n == 0:
            continue
        wet_values = member[c][member[c] > threshold]
        if wet_values.numel() == 0:
            out[c][mask] = floor
            continue
        order = torch.argsort(member[c][mask].to(torch.float64), stable=True)
        levels = (np.arange(n, dtype=np.float64) + 0.5) / (n + wet_values.numel() if lowest else n)
        # numpy's quantile (the same linear interpolation as torch's), as torch.quantile refuses inputs of
        # more than 2**24 values: a large, mostly wet domain has more wet pixels than that.
        quantiles = np.quantile(wet_values.to(torch.float64).cpu().numpy(), levels)
        filled = torch.empty(n, dtype=member.dtype)
        filled[order.cpu()] = torch.from_numpy(quantiles).to(member.dtype)
        out[c][mask] = filled.clamp(min=floor).to(member.device)
    return out


def lifted_counts(members_physical: Tensor, gated: Tensor, threshold: float) -> tuple[int, int]:
    """(lifted, wet): the gated members' wet pixels (> threshold), and those the diffusion left <= threshold."""
    wet = gated > threshold
    return int((wet & (members_physical <= threshold)).sum()), int(wet.sum())


def lifted_share(members_physical: Tensor, gated: Tensor, threshold: float) -> float:
    """Share of the gated members' wet pixels whose intensity the hurdle filled (0 with no wet pixel)."""
    lifted, wet = lifted_counts(members_physical, gated, threshold)
    return 0.0 if wet == 0 else lifted / wet


@dataclass
class FillTally:
    """Counts, over every date a job samples, of hurdle-wet pixels and of those whose intensity was filled."""

    lifted: int = 0
    wet: int = 0

    def add(self, members_physical: Tensor, gated: Tensor, threshold: float) -> None:
        lifted, wet = lifted_counts(members_physical, gated, threshold)
        self.lifted += lifted
        self.wet += wet

    @property
    def share(self) -> float:
        return 0.0 if self.wet == 0 else self.lifted / self.wet


def apply_rain_gate(
    members_physical: Tensor,
    wet_logits: Tensor,
    rule: RainGateRule = "threshold",
    seeds: Sequence[Sequence[int]] | None = None,
    length: float = 0.0,
    wet_threshold: float | None = None,
    wet_fill: WetFill = DEFAULT_WET_FILL,
) -> Tensor:
    """Members [B, M, C, H, W] (physical units) with exactly 0 where the gate calls them dry.

    wet_logits [B, C, H, W] is the gate's logit per date. rule "threshold": dry where P(wet) < 0.5 (logit
    < 0), the same for every member; an untrained gate (logit 0) keeps everything. rule "sample": member
    seeds[b][k] is dry where its own uniform field (gate_uniforms, correlation `length` pixels) is >= P(wet),
    so each pixel is kept in a share P(wet) of the members; an untrained gate keeps half the pixels. rule
    "hurdle": the same draw decides occurrence, and a drawn-wet pixel is at least wet_floor(wet_threshold)
    (needs the gate's wet_threshold), so each pixel is wet (> wet_threshold) in a share P(wet) of the members;
    a drawn-wet pixel the diffusion left dry gets its intensity from fill_lifted (wet_fill "low_wet": the
    member's lowest wet values; "own_wet": its whole wet distribution) or sits at wet_floor (wet_fill "floor"). Exact zeros stay exact wherever the draw is dry.
    """
    if members_physical.ndim != 5 or wet_logits.ndim != 4:
        raise ValueError(
            f"apply_rain_gate: expected members [B, M, C, H, W] and logits [B, C, H, W], got "
            f"{list(members_physical.shape)} and {list(wet_logits.shape)}"
        )
    batch, n_members, channels, height, width = members_physical.shape
    if tuple(wet_logits.shape) != (batch, channels, height, width):
        raise ValueError(
            f"apply_rain_gate: logits {list(wet_logits.shape)} do not match members "
            f"{list(members_physical.shape)}; expected [{batch}, {channels}, {height}, {width}]"
        )
    if rule == "none":
        return members_physical
    if rule == "threshold":
        dry = (wet_logits < 0).unsqueeze(1).to(members_physical.device)
    elif rule in ("sample", "hurdle"):
        if seeds is None or len(seeds) != batch or any(len(row) != n_members for row in seeds):
            raise ValueError(
                f"apply_rain_gate: rule 'sample' needs one seed per member, [{batch}][{n_members}] for members "
                f"{list(members_physical.shape)}"
            )
        p_wet = torch.sigmoid(wet_logits.to(torch.float64)).cpu()
        uniforms = torch.stack([gate_uniforms(row, (channels, height, width), length) for row in seeds])
        dry = (uniforms >= p_wet.unsqueeze(1)).to(members_physical.device)
        if rule == "hurdle":
            if wet_threshold is None:
                raise ValueError("apply_rain_gate: rule 'hurdle' needs the gate's wet_threshold")
            if wet_fill not in WET_FILLS:
                raise ValueError(f"apply_rain_gate: wet_fill must be one of {WET_FILLS}, got {wet_fill!r}")
            if wet_fill == "floor":
                members_physical = members_physical.clamp(min=wet_floor(wet_threshold))
            else:
                lifted = (members_physical <= wet_threshold) & ~dry
                lowest = wet_fill == "low_wet"
                members_physical = torch.stack(
                    [
                        torch.stack(
                            [
                                fill_lifted(members_physical[b, k], lifted[b, k], wet_threshold, lowest)
                                for k in range(n_members)
                            ]
                        )
                        for b in range(batch)
                    ]
                )
    else:
        raise ValueError(f"apply_rain_gate: rule must be one of {RAIN_GATE_RULES}, got {rule!r}")
    return torch.where(dry, torch.zeros_like(members_physical), members_physical)


def rain_gate_bce(logits: Tensor, wet: Tensor) -> Tensor:
    """Per-element binary cross-entropy of the gate's logits against wet (1) / dry (0), in float32."""
    if logits.shape != wet.shape:
        raise ValueError(
            f"rain gate: logits {list(logits.shape)} and wet {list(wet.shape)} must have the same shape"
        )
    return F.binary_cross_entropy_with_logits(
        logits.to(torch.float32), wet.to(device=logits.device, dtype=torch.float32), reduction="none"
    )
