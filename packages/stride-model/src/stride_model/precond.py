"""EDM preconditioning around the UNet, the deterministic regression variant, and the model factory."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from stride_contracts.checkpoint import ModelSpec
from stride_model.unet import UNet


def _check_condition(condition: Tensor, spec: ModelSpec, batch: int | None = None) -> None:
    if condition.ndim != 4 or condition.shape[1] != spec.in_channels:
        raise ValueError(
            f"condition: expected [B, {spec.in_channels}, H, W] (spec.in_channels), "
            f"got {list(condition.shape)}"
        )
    if batch is not None and condition.shape[0] != batch:
        raise ValueError(f"condition: expected batch size {batch}, got {list(condition.shape)}")


class EDMPrecond(nn.Module):
    """D(x; sigma) = c_skip x + c_out F([c_in x, condition]; c_noise), EDM Table 1 preconditioning."""

    def __init__(self, spec: ModelSpec, unet: nn.Module | None = None) -> None:
        super().__init__()
        self.spec = spec
        self.sigma_data = float(spec.sigma_data)
        self.unet = UNet(spec) if unet is None else unet

    def forward(self, x: Tensor, sigma: Tensor | float, condition: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] != self.spec.out_channels:
            raise ValueError(
                f"x: expected [B, {self.spec.out_channels}, H, W] (spec.out_channels), got {list(x.shape)}"
            )
        batch = x.shape[0]
        _check_condition(condition, self.spec, batch)
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

        net_in = torch.cat([c_in * x, condition.to(torch.float32)], dim=1)
        F_x: Tensor = self.unet(net_in, c_noise.flatten())
        D_x: Tensor = c_skip * x + c_out * F_x.to(torch.float32)
        return D_x


class RegressionModel(nn.Module):
    """Deterministic prediction from the condition alone, on the same UNet backbone."""

    def __init__(self, spec: ModelSpec, unet: nn.Module | None = None) -> None:
        super().__init__()
        self.spec = spec
        self.unet = UNet(spec) if unet is None else unet

    def forward(self, condition: Tensor) -> Tensor:
        _check_condition(condition, self.spec)
        condition = condition.to(torch.float32)
        batch, _, height, width = condition.shape
        # The backbone has a slot for the noisy target and a noise label; a regression has neither.
        empty_target = condition.new_zeros(batch, self.spec.out_channels, height, width)
        noise_labels = condition.new_zeros(batch)
        out: Tensor = self.unet(torch.cat([empty_target, condition], dim=1), noise_labels)
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
