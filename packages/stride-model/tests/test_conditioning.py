"""assemble_conditioning: temporal stacking order, bicubic upsampling, optional inputs and shape errors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from stride_contracts.checkpoint import ModelSpec
from stride_model.conditioning import Conditioning, assemble_conditioning


def _batch(dynamic: torch.Tensor, static: torch.Tensor | None, **extra: Any) -> dict[str, Any]:
    return {"cond_dynamic": dynamic, "cond_static": static, **extra}


def test_time_major_stacking_and_statics(tiny_spec: Callable[..., ModelSpec]) -> None:
    spec = tiny_spec(temporal_steps=3, in_dynamic_channels=2, in_static_channels=2)
    # Constant fields survive bicubic upsampling unchanged, so each channel keeps its 10*t + c label.
    labels = torch.tensor([[10.0 * t + c for c in range(2)] for t in range(3)])
    dynamic = labels[None, :, :, None, None].expand(2, 3, 2, 4, 6).clone()
    static = torch.full((2, 2, 16, 24), -5.0)
    cond = assemble_conditioning(_batch(dynamic, static), spec)
    assert cond.image.shape == (2, spec.in_channels, 16, 24) == (2, 8, 16, 24)
    assert cond.image[0, :, 0, 0].tolist() == pytest.approx([0, 1, 10, 11, 20, 21, -5, -5])
    assert cond.context is None and cond.time_features is None and cond.var_label is None
    # The pre-stacked 4-D form is accepted and gives the same result.
    assert torch.equal(assemble_conditioning(_batch(dynamic.flatten(1, 2), static), spec).image, cond.image)


def test_bicubic_upsampling_by_the_factor_of_the_batchs_own_size(tiny_spec: Callable[..., ModelSpec]) -> None:
    spec = tiny_spec(in_static_channels=0)  # lr (4, 6) -> hr (16, 24): factor 4
    dynamic = torch.randn(1, 2, 4, 6)
    cond = assemble_conditioning(_batch(dynamic, None), spec)
    expected = F.interpolate(dynamic, size=(16, 24), mode="bicubic", align_corners=False)
    assert torch.equal(cond.image, expected)
    # A larger LR region (the full domain at generation) gives a proportionally larger HR image.
    big = torch.randn(3, 2, 10, 7)
    assert assemble_conditioning(_batch(big, torch.zeros(3, 0, 40, 28)), spec).image.shape == (3, 2, 40, 28)


def test_optional_inputs_only_when_the_spec_uses_them(tiny_spec: Callable[..., ModelSpec]) -> None:
    spec = tiny_spec(
        use_context_encoder=True,
        context_shape=(8, 10),  # margin 2
        use_film_doy=True,
        n_time_features=4,
        use_film_vars=True,
        num_var_labels=3,
        out_channels=2,
    )
    batch = _batch(
        torch.randn(2, 1, 2, 4, 6),
        torch.randn(2, 1, 16, 24),
        cond_context=torch.randn(2, 2, 8, 10),
        time_features=torch.randn(2, 4),
        var_label=torch.tensor([[0, 2], [1, 0]]),
    )
    cond = assemble_conditioning(batch, spec)
    assert cond.context is not None and cond.context.shape == (2, 2, 8, 10)
    assert cond.time_features is not None and cond.time_features.shape == (2, 4)
    assert cond.var_label is not None and cond.var_label.dtype == torch.int64
    # A spec without those features drops them rather than carrying unused tensors.
    plain = assemble_conditioning(batch, tiny_spec(out_channels=2))
    assert plain.context is None and plain.time_features is None and plain.var_label is None

    # The context is checked against the batch's own LR size + 2 x margin, so a full-domain batch passes.
    full = dict(batch, cond_dynamic=torch.randn(2, 2, 8, 12), cond_static=torch.randn(2, 1, 32, 48))
    with pytest.raises(ValueError, match=r"cond_context: expected shape \[2, 2, 12, 16\].*margin 2"):
        assemble_conditioning(full, spec)
    full["cond_context"] = torch.randn(2, 2, 12, 16)
    assert assemble_conditioning(full, spec).image.shape == (2, 3, 32, 48)

    for key, message in [
        ("cond_context", "use_context_encoder=True"),
        ("time_features", "use_film_doy=True"),
        ("var_label", "use_film_vars=True"),
    ]:
        missing = {k: v for k, v in batch.items() if k != key}
        with pytest.raises(ValueError, match=rf"batch has no '{key}', which ModelSpec.{message}"):
            assemble_conditioning(missing, spec)
    with pytest.raises(ValueError, match=r"time_features: expected shape \[2, 4\]"):
        assemble_conditioning(dict(batch, time_features=torch.randn(2, 2)), spec)
    with pytest.raises(ValueError, match=r"var_label: values must lie in 0\.\.2"):
        assemble_conditioning(dict(batch, var_label=torch.tensor([[0, 3], [1, 0]])), spec)
    with pytest.raises(ValueError, match="integer dtype"):
        assemble_conditioning(dict(batch, var_label=torch.zeros(2, 2)), spec)


def test_shape_errors_name_both_shapes(tiny_spec: Callable[..., ModelSpec]) -> None:
    spec = tiny_spec(temporal_steps=2)
    static = torch.zeros(1, 1, 16, 24)
    with pytest.raises(ValueError, match=r"expected shape \[B, 2, 2, h, w\].*got \[1, 2, 3, 4, 6\]"):
        assemble_conditioning(_batch(torch.zeros(1, 2, 3, 4, 6), static), spec)
    with pytest.raises(ValueError, match=r"\[B, 4, h, w\].*got \[1, 5, 4, 6\]"):
        assemble_conditioning(_batch(torch.zeros(1, 5, 4, 6), static), spec)
    with pytest.raises(ValueError, match=r"cond_static: expected shape \[1, 1, 16, 24\].*got None"):
        assemble_conditioning(_batch(torch.zeros(1, 2, 2, 4, 6), None), spec)
    with pytest.raises(
        ValueError, match=r"cond_static: expected shape \[1, 1, 16, 24\].*got \[1, 1, 8, 12\]"
    ):
        assemble_conditioning(_batch(torch.zeros(1, 2, 2, 4, 6), torch.zeros(1, 1, 8, 12)), spec)
    with pytest.raises(ValueError, match="in_static_channels=0"):
        assemble_conditioning(_batch(torch.zeros(1, 2, 4, 6), static), tiny_spec(in_static_channels=0))
    with pytest.raises(ValueError, match="batch has no 'cond_dynamic'"):
        assemble_conditioning({"cond_static": static}, spec)


def test_conditioning_batch_operations() -> None:
    cond = Conditioning(
        image=torch.arange(3.0)[:, None, None, None].expand(3, 2, 4, 4),
        context=torch.zeros(3, 1, 2, 2),
        time_features=torch.arange(3.0)[:, None],
        var_label=torch.tensor([[0], [1], [2]]),
    )
    assert len(cond) == 3
    repeated = cond.repeat_interleave(2)
    assert len(repeated) == 6 and repeated.var_label is not None
    assert repeated.var_label.flatten().tolist() == [0, 0, 1, 1, 2, 2]
    assert repeated.image[:, 0, 0, 0].tolist() == [0, 0, 1, 1, 2, 2]
    picked = cond[torch.tensor([2, 0])]
    assert picked.time_features is not None and picked.time_features.flatten().tolist() == [2, 0]
    moved = cond.to("cpu")
    assert moved.var_label is not None and moved.var_label.dtype == torch.int64
    assert cond.contiguous(torch.channels_last).image.is_contiguous(memory_format=torch.channels_last)
    with pytest.raises(ValueError, match=r"Conditioning.time_features: expected 2 dims with batch size 3"):
        Conditioning(image=torch.zeros(3, 1, 4, 4), time_features=torch.zeros(2, 2))
