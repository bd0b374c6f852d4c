"""Autocast precision of the network call: the solver loop stays float64, outputs stay close to fp32."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import Tensor

from stride_contracts.checkpoint import ModelSpec
from stride_model.conditioning import Conditioning
from stride_model.precond import EDMPrecond
from stride_model.sampling import autocast_denoiser, sample_ensemble
from stride_model.unet import UNet


def _model(spec: ModelSpec) -> EDMPrecond:
    unet = UNet(spec)
    torch.nn.init.normal_(unet.conv_out.weight, std=0.05)
    return EDMPrecond(spec, unet).eval()


@pytest.mark.parametrize(("precision", "dtype"), [("bf16", torch.bfloat16), ("fp16", torch.float16)])
def test_autocast_runs_the_network_in_low_precision(
    tiny_spec: Callable[..., ModelSpec], precision: str, dtype: torch.dtype
) -> None:
    spec = tiny_spec()
    model = _model(spec)
    seen: list[torch.dtype] = []
    conv_out = model.unet.conv_out
    assert isinstance(conv_out, torch.nn.Module)
    handle = conv_out.register_forward_hook(lambda m, i, out: seen.append(out.dtype))
    x, sigma = torch.randn(2, 1, 16, 24), torch.full((2,), 1.3)
    cond = Conditioning(torch.randn(2, spec.in_channels, 16, 24))
    with torch.no_grad():
        full = autocast_denoiser(model, "fp32")(x, sigma, cond)
        low = autocast_denoiser(model, precision)(x, sigma, cond)
    handle.remove()
    assert seen == [torch.float32, dtype]
    assert low.dtype == torch.float32
    assert not torch.equal(low, full)
    torch.testing.assert_close(low, full, rtol=0.05, atol=0.05)


def test_bf16_ensemble_close_to_fp32(tiny_spec: Callable[..., ModelSpec]) -> None:
    spec = tiny_spec()
    model = _model(spec)
    cond = Conditioning(torch.randn(1, spec.in_channels, 16, 24))
    runs = {
        p: sample_ensemble(model, cond, [3, 4], 1, num_steps=6, precision=p, S_churn=5.0)
        for p in ("fp32", "bf16")
    }
    assert runs["bf16"].dtype == torch.float32
    # Same seeds, same noise: bf16 rounding of the network only (model-space units, data std ~ 1).
    assert (runs["bf16"] - runs["fp32"]).abs().max().item() < 0.1


def test_unknown_precision() -> None:
    def identity(x: Tensor, sigma: Tensor, cond: Conditioning) -> Tensor:
        return x

    with pytest.raises(
        ValueError, match=r"sampler.precision: unknown precision 'fp8'; choose one of fp32, bf16, fp16"
    ):
        autocast_denoiser(identity, "fp8")
