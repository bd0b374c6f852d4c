"""EDMPrecond coefficients against EDM Table 1, the regression model and build_model."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
from torch import Tensor, nn

from stride_contracts.checkpoint import ModelSpec
from stride_model.conditioning import Conditioning
from stride_model.precond import EDMPrecond, RegressionModel, build_model


class RecordingNet(nn.Module):
    """Stands in for the UNet: remembers its inputs and returns a fixed F."""

    def __init__(self, output: Tensor) -> None:
        super().__init__()
        self.output = output
        self.inputs: list[tuple[Tensor, Tensor, Tensor | None]] = []

    def forward(self, x: Tensor, noise_labels: Tensor, film: Tensor | None = None) -> Tensor:
        self.inputs.append((x, noise_labels, film))
        return self.output


@pytest.mark.parametrize("sigma_data", [1.0, 0.5])
def test_preconditioning_matches_table_1(tiny_spec: Callable[..., ModelSpec], sigma_data: float) -> None:
    spec = tiny_spec(sigma_data=sigma_data)
    F_x = torch.randn(3, 1, 16, 24)
    net = RecordingNet(F_x)
    precond = EDMPrecond(spec, unet=net)
    x = torch.randn(3, 1, 16, 24, dtype=torch.float64)
    condition = torch.randn(3, spec.in_channels, 16, 24)
    sigmas = [0.002, 1.3, 80.0]
    D_x = precond(x, torch.tensor(sigmas), Conditioning(condition))

    net_in, noise_labels, film = net.inputs[0]
    assert film is None  # no FiLM input in this spec
    assert net_in.dtype == torch.float32 and D_x.dtype == torch.float32
    assert torch.equal(net_in[:, 1:], condition)
    for b, sigma in enumerate(sigmas):
        c_skip = sigma_data**2 / (sigma**2 + sigma_data**2)
        c_out = sigma * sigma_data / math.sqrt(sigma**2 + sigma_data**2)
        c_in = 1 / math.sqrt(sigma_data**2 + sigma**2)
        c_noise = math.log(sigma) / 4
        assert noise_labels[b].item() == pytest.approx(c_noise, rel=1e-6)
        torch.testing.assert_close(net_in[b, :1], (c_in * x[b]).float())
        torch.testing.assert_close(D_x[b], (c_skip * x[b] + c_out * F_x[b]).float())


def test_scalar_sigma_and_untrained_denoiser_is_c_skip_x(tiny_spec: Callable[..., ModelSpec]) -> None:
    spec = tiny_spec()
    precond = EDMPrecond(spec)
    x = torch.randn(2, 1, 16, 24)
    D_x = precond(x, 2.0, Conditioning(torch.randn(2, spec.in_channels, 16, 24)))
    # The zero-initialised output layer makes F = 0.
    torch.testing.assert_close(D_x, x / (1 + 4))


def test_precond_rejects_bad_shapes(tiny_spec: Callable[..., ModelSpec]) -> None:
    spec = tiny_spec()
    precond = EDMPrecond(spec)
    condition = torch.randn(2, spec.in_channels, 16, 24)
    cond = Conditioning(condition)
    with pytest.raises(ValueError, match=r"x: expected \[B, 1, H, W\]"):
        precond(torch.zeros(2, 2, 16, 24), 1.0, cond)
    with pytest.raises(ValueError, match=r"cond.image: expected \[B, 3, H, W\]"):
        precond(torch.zeros(2, 1, 16, 24), 1.0, Conditioning(condition[:, :2]))
    with pytest.raises(ValueError, match=r"cond\.image: expected batch size 3"):
        precond(torch.zeros(3, 1, 16, 24), 1.0, cond)
    with pytest.raises(ValueError, match="differ in H, W"):
        precond(torch.zeros(2, 1, 32, 48), 1.0, cond)
    with pytest.raises(ValueError, match="sigma"):
        precond(torch.zeros(2, 1, 16, 24), torch.ones(3), cond)


def test_regression_model_output_shape(tiny_spec: Callable[..., ModelSpec]) -> None:
    spec = tiny_spec(kind="regression", out_channels=2)
    model = build_model(spec)
    assert isinstance(model, RegressionModel)
    out = model(Conditioning(torch.randn(4, spec.in_channels, 32, 48)))
    assert out.shape == (4, 2, 32, 48)


def test_regression_model_feeds_zeros_for_target_and_noise(tiny_spec: Callable[..., ModelSpec]) -> None:
    spec = tiny_spec(kind="regression")
    net = RecordingNet(torch.zeros(2, 1, 16, 24))
    condition = torch.randn(2, spec.in_channels, 16, 24)
    RegressionModel(spec, unet=net)(Conditioning(condition))
    net_in, noise_labels, _ = net.inputs[0]
    assert torch.equal(net_in[:, :1], torch.zeros(2, 1, 16, 24))
    assert torch.equal(net_in[:, 1:], condition)
    assert torch.equal(noise_labels, torch.zeros(2))


def test_build_model_dispatches_on_kind(tiny_spec: Callable[..., ModelSpec]) -> None:
    assert isinstance(build_model(tiny_spec(kind="edm")), EDMPrecond)
    assert isinstance(build_model(tiny_spec(kind="regression")), RegressionModel)
