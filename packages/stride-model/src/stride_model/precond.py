"""EDM preconditioning around the UNet, the deterministic regression variant, and the model factory.

Both take a Conditioning. When the spec turns on a FiLM input (context, variable labels, time features),
its embedding is computed once per call and shared by the UNet and the RainGate. `with_rain_gate=True`
returns the gate's logits beside the prediction from the same forward pass, which keeps the gate inside
forward() where DistributedDataParallel sees it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, overload

import torch
from torch import Tensor, nn

from stride_contracts.checkpoint import ModelSpec
from stride_model.conditioning import Conditioning
from stride_model.film import FiLMEmbedding
from stride_model.rain_gate import RainGate
from stride_model.unet import UNet, embedding_width


class ConditionedModel(nn.Module):
    """What EDMPrecond and RegressionModel share: the UNet, the FiLM embedding and the RainGate."""

    def __init__(self, spec: ModelSpec, unet: nn.Module | None = None) -> None:
        super().__init__()
        self.spec = spec
        self.unet = UNet(spec) if unet is None else unet
        width = embedding_width(spec)
        # Built only when the spec asks, so a spec without them keeps exactly the older state dict.
        self.film = FiLMEmbedding(spec, width) if spec.uses_film else None
        self.rain_gate = RainGate(spec, width if spec.uses_film else None) if spec.use_rain_gate else None

    def _check(self, cond: Conditioning, batch: int | None = None) -> None:
        image = cond.image
        if image.ndim != 4 or image.shape[1] != self.spec.in_channels:
            raise ValueError(
                f"cond.image: expected [B, {self.spec.in_channels}, H, W] (spec.in_channels), "
                f"got {list(image.shape)}"
            )
        if batch is not None and image.shape[0] != batch:
            raise ValueError(f"cond.image: expected batch size {batch}, got {list(image.shape)}")

    def _film(self, cond: Conditioning) -> Tensor | None:
        return None if self.film is None else self.film(cond)

    def _gate(self, image: Tensor, film: Tensor | None) -> Tensor:
        if self.rain_gate is None:
            raise ValueError(
                "this model has no RainGate (ModelSpec.use_rain_gate is False); build it with "
                "use_rain_gate=True and a rain_gate_threshold"
            )
        logits: Tensor = self.rain_gate(image, film)
        return logits.to(torch.float32)

    def rain_gate_logits(self, cond: Conditioning) -> Tensor:
        """Logit of P(target > spec.rain_gate_threshold) per HR pixel, [B, out_channels, H, W], float32.

        It depends on the conditioning only (no noisy target): compute it once per date at generation.
        """
        self._check(cond)
        return self._gate(cond.image.to(torch.float32), self._film(cond))


class EDMPrecond(ConditionedModel):
    """D(x; sigma) = c_skip x + c_out F([c_in x, cond.image]; c_noise, film), EDM Table 1 preconditioning."""

    def __init__(self, spec: ModelSpec, unet: nn.Module | None = None) -> None:
        super().__init__(spec, unet)
        self.sigma_data = float(spec.sigma_data)

    @overload
    def forward(
        self, x: Tensor, sigma: Tensor | float, cond: Conditioning, *, with_rain_gate: Literal[False] = False
    ) -> Tensor: ...

    @overload
    def forward(
        self, x: Tensor, sigma: Tensor | float, cond: Conditioning, *, with_rain_gate: Literal[True]
    ) -> tuple[Tensor, Tensor]: ...

    def forward(
        self, x: Tensor, sigma: Tensor | float, cond: Conditioning, *, with_rain_gate: bool = False
    ) -> Tensor | tuple[Tensor, Tensor]:
        """D(x; sigma) [B, out_channels, H, W]; with_rain_gate=True: (D, the RainGate's logits)."""
        if x.ndim != 4 or x.shape[1] != self.spec.out_channels:
            raise ValueError(
                f"x: expected [B, {self.spec.out_channels}, H, W] (spec.out_channels), got {list(x.shape)}"
            )
        batch = x.shape[0]
        self._check(cond, batch)
        if cond.image.shape[2:] != x.shape[2:]:
            raise ValueError(
                f"x {list(x.shape)} and cond.image {list(cond.image.shape)} differ in H, W; assemble the "
                "conditioning from the same batch as the target"
            )
        x = x.to(torch.float32)
        sigma = torch.as_tensor(sigma, dtype=torch.float32, device=x.device)
        if sigma.numel() not in (1, batch):
            raise ValueError(f"sigma: expected a scalar or {batch} values, got shape {list(sigma.shape)}")
        sigma = sigma.reshape(-1, 1, 1, 1).expand(batch, 1, 1, 1)

        # EDM Table 1 (preconditioning), in float32 whatever the caller's precision.
        sigma_data = self.sigma_data
        c_skip = sigma_data**2 / (sigma**2 + sigma_data**2)
        c_out = sigma * sigma_data / (sigma**2 + sigma_data**2).sqrt()
        c_in = 1 / (sigma_data**2 + sigma**2).sqrt()
        c_noise = sigma.log() / 4

        image = cond.image.to(torch.float32)
        film = self._film(cond)
        net_in = torch.cat([c_in * x, image], dim=1)
        F_x: Tensor = self.unet(net_in, c_noise.flatten(), film)
        D_x: Tensor = c_skip * x + c_out * F_x.to(torch.float32)
        if with_rain_gate:
            return D_x, self._gate(image, film)
        return D_x


class RegressionModel(ConditionedModel):
    """Deterministic prediction from the conditioning alone, on the same UNet backbone."""

    @overload
    def forward(self, cond: Conditioning, *, with_rain_gate: Literal[False] = False) -> Tensor: ...

    @overload
    def forward(self, cond: Conditioning, *, with_rain_gate: Literal[True]) -> tuple[Tensor, Tensor]: ...

    def forward(self, cond: Conditioning, *, with_rain_gate: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """The prediction [B, out_channels, H, W]; with_rain_gate=True: (prediction, the RainGate's logits)."""
        self._check(cond)
        image = cond.image.to(torch.float32)
        batch, _, height, width = image.shape
        film = self._film(cond)
        # The backbone has a slot for the noisy target and a noise label; a regression has neither.
        empty_target = image.new_zeros(batch, self.spec.out_channels, height, width)
        noise_labels = image.new_zeros(batch)
        out: Tensor = self.unet(torch.cat([empty_target, image], dim=1), noise_labels, film)
        if with_rain_gate:
            return out, self._gate(image, film)
        return out


_BUILDERS: dict[str, Callable[[ModelSpec], nn.Module]] = {
    "edm": EDMPrecond,
    "regression": RegressionModel,
}


def build_model(spec: ModelSpec) -> nn.Module:
    """Build the network that spec.kind names: 'edm' -> EDMPrecond, 'regression' -> RegressionModel."""
    try:
        builder = _BUILDERS[spec.kind]
    except KeyError:
        raise ValueError(
            f"ModelSpec.kind {spec.kind!r} unknown; expected one of {sorted(_BUILDERS)}"
        ) from None
    return builder(spec)
