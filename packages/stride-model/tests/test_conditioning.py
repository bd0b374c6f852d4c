"""assemble_condition: temporal stacking order, bicubic upsampling and shape errors."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F

from stride_contracts.checkpoint import ModelSpec
from stride_model.conditioning import assemble_condition


def test_time_major_stacking_and_statics(tiny_spec: Callable[..., ModelSpec]) -> None:
    spec = tiny_spec(temporal_steps=3, in_dynamic_channels=2, in_static_channels=2)
    # Constant fields survive bicubic upsampling unchanged, so each channel keeps its 10*t + c label.
    labels = torch.tensor([[10.0 * t + c for c in range(2)] for t in range(3)])
    dynamic = labels[None, :, :, None, None].expand(2, 3, 2, 4, 6).clone()
    static = torch.full((2, 2, 16, 24), -5.0)
    cond = assemble_condition(dynamic, static, spec)
    assert cond.shape == (2, spec.in_channels, 16, 24) == (2, 8, 16, 24)
    channel_values = cond[0, :, 0, 0].tolist()
    assert channel_values == pytest.approx([0, 1, 10, 11, 20, 21, -5, -5])
    # The pre-stacked 4-D form is accepted and gives the same result.
    assert torch.equal(assemble_condition(dynamic.flatten(1, 2), static, spec), cond)


def test_bicubic_upsampling(tiny_spec: Callable[..., ModelSpec]) -> None:
    spec = tiny_spec(in_static_channels=0)
    dynamic = torch.randn(1, 2, 4, 6)
    cond = assemble_condition(dynamic, None, spec)
    expected = F.interpolate(dynamic, size=(16, 24), mode="bicubic", align_corners=False)
    assert torch.equal(cond, expected)


def test_shape_errors_name_both_shapes(tiny_spec: Callable[..., ModelSpec]) -> None:
    spec = tiny_spec(temporal_steps=2)
    static = torch.zeros(1, 1, 16, 24)
    with pytest.raises(ValueError, match=r"expected shape \[B, 2, 2, 4, 6\].*got \[1, 2, 3, 4, 6\]"):
        assemble_condition(torch.zeros(1, 2, 3, 4, 6), static, spec)
    with pytest.raises(ValueError, match=r"\[B, 4, 4, 6\].*got \[1, 4, 5, 6\]"):
        assemble_condition(torch.zeros(1, 4, 5, 6), static, spec)
    with pytest.raises(ValueError, match=r"cond_static: expected shape \[1, 1, 16, 24\], got None"):
        assemble_condition(torch.zeros(1, 2, 2, 4, 6), None, spec)
    with pytest.raises(ValueError, match=r"got \[1, 1, 8, 12\]"):
        assemble_condition(torch.zeros(1, 2, 2, 4, 6), torch.zeros(1, 1, 8, 12), spec)
    no_static = tiny_spec(in_static_channels=0)
    with pytest.raises(ValueError, match="in_static_channels=0"):
        assemble_condition(torch.zeros(1, 2, 4, 6), static, no_static)
