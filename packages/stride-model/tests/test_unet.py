"""UNet: shapes, zero-initialised output, attention wiring and input validation."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from stride_contracts.checkpoint import ModelSpec
from stride_model.unet import SelfAttention, UNet, num_groups


def _randomise_output(net: UNet) -> None:
    # The output conv starts at zero, which would hide everything upstream.
    torch.nn.init.normal_(net.conv_out.weight, std=0.1)


@pytest.mark.parametrize("shape", [(32, 48), (32, 32), (128, 128)])
def test_output_shape(shape: tuple[int, int], tiny_spec: Callable[..., ModelSpec]) -> None:
    spec = tiny_spec()
    net = UNet(spec)
    x = torch.randn(2, spec.out_channels + spec.in_channels, *shape)
    out = net(x, torch.zeros(2))
    assert out.shape == (2, spec.out_channels, *shape)


def test_initial_output_is_exactly_zero(tiny_spec: Callable[..., ModelSpec]) -> None:
    spec = tiny_spec(out_channels=2)
    net = UNet(spec)
    out = net(torch.randn(3, spec.out_channels + spec.in_channels, 16, 24), torch.randn(3))
    assert torch.equal(out, torch.zeros_like(out))


def test_attention_levels_and_bottleneck(tiny_spec: Callable[..., ModelSpec]) -> None:
    spec = tiny_spec(channel_mult=(1, 2, 2), attn_resolutions=(1,), num_blocks=2)
    net = UNet(spec)
    attn_channels = sorted(m.qkv.in_channels for m in net.modules() if isinstance(m, SelfAttention))
    # Level 1 (16 ch): 2 encoder + 3 decoder blocks; bottleneck (16 ch): 1 block; level 0/2: none.
    assert attn_channels == [16] * 6
    assert not any(isinstance(m, SelfAttention) for m in net.encoder[:2].modules())

    _randomise_output(net)
    x = torch.randn(2, spec.out_channels + spec.in_channels, 16, 24)
    out = net(x, torch.randn(2))
    assert out.shape == (2, 1, 16, 24)
    out.square().mean().backward()
    for module in net.modules():
        if isinstance(module, SelfAttention):
            grad = module.qkv.weight.grad
            assert grad is not None and grad.abs().sum() > 0


def test_odd_width_and_three_levels(tiny_spec: Callable[..., ModelSpec]) -> None:
    spec = tiny_spec(model_channels=5, channel_mult=(1, 2, 3), num_blocks=2, attn_resolutions=(0, 2))
    net = UNet(spec)
    out = net(torch.randn(2, spec.out_channels + spec.in_channels, 16, 24), torch.zeros(2))
    assert out.shape == (2, 1, 16, 24)


def test_no_attention_without_attn_resolutions(tiny_spec: Callable[..., ModelSpec]) -> None:
    net = UNet(tiny_spec())
    assert not any(isinstance(m, SelfAttention) for m in net.modules())


def test_noise_label_changes_output(tiny_spec: Callable[..., ModelSpec]) -> None:
    spec = tiny_spec()
    net = UNet(spec).eval()
    _randomise_output(net)
    x = torch.randn(1, spec.out_channels + spec.in_channels, 16, 24)
    a = net(x, torch.tensor([-1.0]))
    b = net(x, torch.tensor([1.0]))
    assert not torch.allclose(a, b)


def test_dropout_active_only_in_training(tiny_spec: Callable[..., ModelSpec]) -> None:
    spec = tiny_spec(dropout=0.5)
    net = UNet(spec)
    _randomise_output(net)
    x = torch.randn(1, spec.out_channels + spec.in_channels, 16, 24)
    net.eval()
    assert torch.equal(net(x, torch.zeros(1)), net(x, torch.zeros(1)))
    net.train()
    assert not torch.equal(net(x, torch.zeros(1)), net(x, torch.zeros(1)))


def test_rejects_wrong_channels_and_shapes(tiny_spec: Callable[..., ModelSpec]) -> None:
    spec = tiny_spec()
    net = UNet(spec)
    with pytest.raises(ValueError, match=r"expected \[B, 4, H, W\].*got \[1, 3, 16, 24\]"):
        net(torch.zeros(1, 3, 16, 24), torch.zeros(1))
    with pytest.raises(ValueError, match="divisible by 2"):
        net(torch.zeros(1, 4, 15, 24), torch.zeros(1))
    with pytest.raises(ValueError, match="noise_labels"):
        net(torch.zeros(2, 4, 16, 24), torch.zeros(1))


def test_film_embedding_is_added_to_the_noise_embedding(tiny_spec: Callable[..., ModelSpec]) -> None:
    spec = tiny_spec(model_channels=7)  # odd width: the embedding is 8 wide
    net = UNet(spec).eval()
    _randomise_output(net)
    assert net.embedding_width == 8
    x = torch.randn(2, spec.out_channels + spec.in_channels, 16, 24)
    labels = torch.tensor([0.3, -0.2])
    plain = net(x, labels)
    assert torch.equal(net(x, labels, torch.zeros(2, 8)), plain)
    assert not torch.allclose(net(x, labels, torch.randn(2, 8)), plain)
    with pytest.raises(ValueError, match=r"film embedding: expected shape \[2, 8\], got \[2, 7\]"):
        net(x, labels, torch.zeros(2, 7))


@pytest.mark.parametrize(("channels", "groups"), [(8, 2), (12, 3), (16, 4), (128, 32), (256, 32), (6, 1)])
def test_num_groups_divides(channels: int, groups: int) -> None:
    assert num_groups(channels) == groups
    assert channels % num_groups(channels) == 0
