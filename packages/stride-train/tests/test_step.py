import functools
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from stride_contracts import ModelSpec
from stride_model import EMA, EDMLoss, build_model
from stride_train.objective import draw_edm
from stride_train.step import TrainStep

SPEC = ModelSpec(
    in_dynamic_channels=1,
    in_static_channels=2,
    out_channels=1,
    lr_shape=(4, 4),
    hr_shape=(16, 16),
    model_channels=8,
    channel_mult=(1, 2),
    attn_resolutions=(1,),
)


def run_steps(steps: int = 2, **options: Any) -> tuple[TrainStep, list[float]]:
    torch.manual_seed(0)
    model = build_model(SPEC)
    ema = EMA(model, halflife_samples=8)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    step = TrainStep(model, SPEC, EDMLoss(), optimizer, ema, grad_clip=1.0, **options)
    data, noise = torch.Generator().manual_seed(1), torch.Generator().manual_seed(2)
    losses = []
    for i in range(steps):
        batch = {
            "target": torch.randn(4, 1, 16, 16, generator=data),
            "mask": torch.ones(4, 1, 16, 16, dtype=torch.bool),
            "cond_dynamic": torch.randn(4, 1, 4, 4, generator=data),
            "cond_static": torch.randn(4, 2, 16, 16, generator=data),
        }
        result = step(
            batch,
            draw_edm(noise, 4, (1, 16, 16)),
            lr=1e-2,
            global_valid=4 * 16 * 16,
            global_batch=4,
            samples_seen=4 * (i + 1),
        )
        losses.append(float(result.loss_term))
    return step, losses


def weights(step: TrainStep) -> dict[str, torch.Tensor]:
    return {key: value.contiguous() for key, value in step.model.state_dict().items()}


def test_reduced_precision_trains_on_the_cpu() -> None:
    _, fp32_losses = run_steps()
    for precision in ("bf16", "fp16"):
        step, losses = run_steps(precision=precision)
        assert all(torch.isfinite(v).all() for v in weights(step).values())
        # Same data, noise and start: the losses differ only by the forward pass's rounding.
        assert losses == pytest.approx(fp32_losses, rel=0.05)
        assert losses != fp32_losses
        assert step.scaler.is_enabled() == (precision == "fp16")
    # Autocast leaves the parameters, their EMA and the optimizer state in float32.
    assert step.ema is not None and next(step.ema.model.parameters()).dtype == torch.float32
    assert all(v.dtype == torch.float32 for v in weights(step).values())


def test_channels_last_and_compile_change_speed_not_results(monkeypatch: pytest.MonkeyPatch) -> None:
    reference = weights(run_steps()[0])
    channels_last = run_steps(channels_last=True)[0]
    assert channels_last.model.unet.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    # The 'eager' backend traces with TorchDynamo as compile=True does, without minutes of C++ compilation.
    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend="eager"))
    compiled = run_steps(compile=True)[0]
    assert compiled.network is not compiled.model
    # Another kernel order rounds differently, and Adam turns a rounding change in a tiny gradient into an
    # update change of up to a few 1e-6 here; a real difference moves weights by about lr = 1e-2 per step.
    for other in (weights(channels_last), weights(compiled)):
        for key, value in reference.items():
            torch.testing.assert_close(other[key], value, rtol=0, atol=1e-4, msg=key)


FULL_SPEC = SPEC.model_copy(
    update={
        "use_context_encoder": True,
        "context_shape": (6, 6),
        "use_film_vars": True,
        "num_var_labels": 2,
        "use_film_doy": True,
        "n_time_features": 2,
        "use_rain_gate": True,
        "rain_gate_threshold": 0.0,
    }
)


@pytest.mark.parametrize("kind", ["edm", "regression"])
def test_every_part_trains_under_ddp(kind: str, tmp_path: Path) -> None:
    """DDP's reducer fails on the next step when a parameter got no gradient; it must not, gate included.

    A world of one process exercises the same reducer check as a larger one (tried: an unused layer fails).
    """
    spec = FULL_SPEC.model_copy(update={"kind": kind})
    torch.manual_seed(0)
    model = build_model(spec)
    # No weight decay: a parameter then moves only if it got a gradient.
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0)
    step = TrainStep(model, spec, EDMLoss(), optimizer, None, grad_clip=1.0, rain_gate_weight=0.5)
    dist.init_process_group("gloo", init_method=(tmp_path / "store").as_uri(), rank=0, world_size=1)
    try:
        step.network = DistributedDataParallel(model)
        data, noise = torch.Generator().manual_seed(1), torch.Generator().manual_seed(2)
        before = {name: p.detach().clone() for name, p in model.named_parameters()}
        for i in range(3):
            target = torch.randn(2, 1, 16, 16, generator=data)
            batch = {
                "target": target,
                "mask": torch.ones(2, 1, 16, 16, dtype=torch.bool),
                "cond_dynamic": torch.randn(2, 1, 4, 4, generator=data),
                "cond_static": torch.randn(2, 2, 16, 16, generator=data),
                "cond_context": torch.randn(2, 1, 6, 6, generator=data),
                "time_features": torch.randn(2, 2, generator=data),
                "var_label": torch.tensor([[1], [0]]),
                "wet": (target > 0).float(),
            }
            draws = draw_edm(noise, 2, (1, 16, 16)) if kind == "edm" else None
            result = step(
                batch, draws, lr=1e-3, global_valid=2 * 256, global_batch=2, samples_seen=2 * (i + 1)
            )
            assert result.gate_loss is not None and torch.isfinite(result.loss_term)
    finally:
        dist.destroy_process_group()
    unchanged = [name for name, p in model.named_parameters() if torch.equal(p, before[name])]
    assert unchanged == []
