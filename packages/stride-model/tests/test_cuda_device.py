"""The whole chain on CUDA: loss, backward, EMA and ensemble sampling (skipped without a GPU)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from stride_contracts.checkpoint import ModelSpec
from stride_model import EMA, EDMLoss, apply_rain_gate, assemble_conditioning, build_model, sample_ensemble

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def test_train_step_and_sampling_on_cuda(tiny_spec: Callable[..., ModelSpec]) -> None:
    device = torch.device("cuda")
    spec = tiny_spec(
        attn_resolutions=(1,),
        use_context_encoder=True,
        context_shape=(6, 8),
        use_film_doy=True,
        n_time_features=2,
        use_rain_gate=True,
        rain_gate_threshold=0.1,
    )
    model = build_model(spec).to(device)
    ema = EMA(model)
    batch = {
        "cond_dynamic": torch.randn(2, 2, 4, 6, device=device),
        "cond_static": torch.randn(2, 1, 16, 24, device=device),
        "cond_context": torch.randn(2, 2, 6, 8, device=device),
        "time_features": torch.randn(2, 2, device=device),
    }
    condition = assemble_conditioning(batch, spec)
    target = torch.randn(2, 1, 16, 24, device=device)
    mask = torch.rand(2, 1, 16, 24, device=device) > 0.2
    out = EDMLoss()(model, target, condition, mask, generator=torch.Generator().manual_seed(0))
    logits = model.rain_gate_logits(condition)
    out = out.with_rain_gate(logits, (target > 0).float(), mask, weight=0.5)
    out.loss.backward()
    assert all(p.grad is not None for p in model.parameters())
    assert torch.isfinite(out.loss) and out.sigma.device.type == "cuda"
    ema.update(model, batch_size=2, samples_seen=2)

    samples = sample_ensemble(model, condition, [1, 2], out_channels=1, num_steps=4, S_churn=5.0)
    assert samples.shape == (2, 2, 1, 16, 24) and samples.device.type == "cuda"
    # Noise is drawn on CPU by default, so the same seeds give the same member on CPU.
    cpu = sample_ensemble(model.cpu(), condition.to("cpu"), [1, 2], out_channels=1, num_steps=4, S_churn=5.0)
    torch.testing.assert_close(samples.cpu(), cpu, rtol=1e-3, atol=1e-3)
    gated = apply_rain_gate(samples, model.to(device).rain_gate_logits(condition))
    assert gated.device.type == "cuda" and gated.shape == samples.shape
