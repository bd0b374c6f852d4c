"""RainGate: the probability that each HR pixel is wet, from the conditioning alone, and its use on samples.

The head reads the condition image (not the noisy target), so generation computes it once per date and
sets every member's dry pixels to exactly zero; a diffusion model alone leaves a drizzle of small values
where it should be dry, which inflates the wet-day frequency.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from stride_contracts.checkpoint import ModelSpec
from stride_model.unet import _conv, _init, num_groups

# 3x3 convolutions with growing dilation: a 15-pixel receptive field at HR for a few small layers.
_DILATIONS = (1, 2, 4)


class RainGate(nn.Module):
    """Condition image [B, in_channels, H, W] (and the FiLM vector) -> wet logits [B, out_channels, H, W].

    Each layer is conv - group norm - FiLM scale/shift - SiLU. The output layer starts at zero: the untrained
    gate says P(wet) = 0.5 everywhere, which apply_rain_gate keeps, so an untrained gate changes nothing.
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


def apply_rain_gate(members_physical: Tensor, wet_logits: Tensor) -> Tensor:
    """Members [B, M, C, H, W] (physical units) with exactly 0 where the gate says P(wet) < 0.5.

    wet_logits [B, C, H, W] is the gate's logit per date; P(wet) < 0.5 is logit < 0, the same for every
    member. An untrained gate (logit 0) keeps everything.
    """
    if members_physical.ndim != 5 or wet_logits.ndim != 4:
        raise ValueError(
            f"apply_rain_gate: expected members [B, M, C, H, W] and logits [B, C, H, W], got "
            f"{list(members_physical.shape)} and {list(wet_logits.shape)}"
        )
    batch, _, channels, height, width = members_physical.shape
    if tuple(wet_logits.shape) != (batch, channels, height, width):
        raise ValueError(
            f"apply_rain_gate: logits {list(wet_logits.shape)} do not match members "
            f"{list(members_physical.shape)}; expected [{batch}, {channels}, {height}, {width}]"
        )
    dry = (wet_logits < 0).unsqueeze(1).to(members_physical.device)
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
