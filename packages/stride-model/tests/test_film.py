"""FiLM inputs (context encoder, variable labels, time features) and the RainGate inside the models."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn

from stride_contracts.checkpoint import ModelSpec
from stride_model import (
    Conditioning,
    EDMLoss,
    EDMPrecond,
    RegressionModel,
    assemble_conditioning,
    build_model,
    sample_ensemble,
)

MARGIN = 2


def _flags(context: bool, var: bool, doy: bool, gate: bool) -> dict[str, Any]:
    return {
        "use_context_encoder": context,
        "context_shape": (4 + 2 * MARGIN, 6 + 2 * MARGIN) if context else None,
        "use_film_vars": var,
        "num_var_labels": 5 if var else None,
        "use_film_doy": doy,
        "n_time_features": 4 if doy else 0,
        "use_rain_gate": gate,
        "rain_gate_threshold": 0.1 if gate else None,
    }


def _batch(spec: ModelSpec, size: int, lr: tuple[int, int], generator: torch.Generator) -> dict[str, Any]:
    """A contract-A batch (conditioning part) for `spec` at LR size `lr`, with every optional input."""
    h, w = lr
    factor, channels = spec.factor, spec.in_dynamic_channels * spec.temporal_steps
    return {
        "cond_dynamic": torch.randn(
            size, spec.temporal_steps, spec.in_dynamic_channels, h, w, generator=generator
        ),
        "cond_static": torch.randn(
            size, spec.in_static_channels, h * factor, w * factor, generator=generator
        ),
        "cond_context": torch.randn(size, channels, h + 2 * MARGIN, w + 2 * MARGIN, generator=generator),
        "time_features": torch.randn(size, 4, generator=generator),
        "var_label": torch.randint(0, 5, (size, spec.out_channels), generator=generator),
    }


def _perturb(model: nn.Module, std: float = 0.1) -> None:
    # The zero-initialised output layers (UNet, FiLM parts, gate) would hide what their inputs do.
    generator = torch.Generator().manual_seed(11)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn(parameter.shape, generator=generator) * std)


def _predict(model: nn.Module, spec: ModelSpec, cond: Conditioning, **kwargs: Any) -> Any:
    if spec.kind == "regression":
        return model(cond, **kwargs)
    x = torch.randn(
        len(cond), spec.out_channels, *cond.image.shape[2:], generator=torch.Generator().manual_seed(3)
    )
    return model(x, torch.full((len(cond),), 0.7), cond, **kwargs)


@pytest.mark.parametrize("kind", ["edm", "regression"])
@pytest.mark.parametrize(("context", "var", "doy", "gate"), list(itertools.product([False, True], repeat=4)))
def test_every_flag_combination_builds_runs_and_trains_every_parameter(
    tiny_spec: Callable[..., ModelSpec], kind: str, context: bool, var: bool, doy: bool, gate: bool
) -> None:
    spec = tiny_spec(kind=kind, out_channels=2, **_flags(context, var, doy, gate))
    model = build_model(spec)
    assert isinstance(model, EDMPrecond if kind == "edm" else RegressionModel)
    cond = assemble_conditioning(_batch(spec, 2, (4, 6), torch.Generator().manual_seed(0)), spec)
    assert (cond.context is not None, cond.var_label is not None, cond.time_features is not None) == (
        context,
        var,
        doy,
    )
    _perturb(model)
    if gate:
        prediction, logits = _predict(model, spec, cond, with_rain_gate=True)
        assert logits.shape == (2, 2, 16, 24) and logits.dtype == torch.float32
        torch.testing.assert_close(logits, model.rain_gate_logits(cond))  # type: ignore[operator]
        (prediction.square().mean() + logits.square().mean()).backward()
    else:
        prediction = _predict(model, spec, cond)
        prediction.square().mean().backward()
        with pytest.raises(ValueError, match="no RainGate"):
            model.rain_gate_logits(cond)  # type: ignore[operator]
    assert prediction.shape == (2, 2, 16, 24)
    # DistributedDataParallel needs a gradient for every parameter in every step.
    missing = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []


@pytest.mark.parametrize("kind", ["edm", "regression"])
def test_features_start_as_the_model_without_them(tiny_spec: Callable[..., ModelSpec], kind: str) -> None:
    """Zero-initialised last layers: with the shared weights equal, turning FiLM inputs on changes nothing."""
    plain_spec = tiny_spec(kind=kind, out_channels=2)
    film_spec = tiny_spec(kind=kind, out_channels=2, **_flags(True, True, True, False))
    plain, film = build_model(plain_spec), build_model(film_spec)
    _perturb(plain)
    missing, unexpected = film.load_state_dict(plain.state_dict(), strict=False)
    assert unexpected == [] and all(key.startswith("film.") for key in missing)
    batch = _batch(film_spec, 2, (4, 6), torch.Generator().manual_seed(1))
    with torch.no_grad():
        a = _predict(plain, plain_spec, assemble_conditioning(batch, plain_spec))
        b = _predict(film, film_spec, assemble_conditioning(batch, film_spec))
    assert torch.equal(a, b)


@pytest.mark.parametrize(
    ("field", "new_value"),
    [
        ("context", lambda t: t + 1.0),
        ("time_features", lambda t: -t),
        ("var_label", lambda t: (t + 1) % 5),
    ],
)
def test_each_film_input_changes_the_output(
    tiny_spec: Callable[..., ModelSpec], field: str, new_value: Callable[[torch.Tensor], torch.Tensor]
) -> None:
    spec = tiny_spec(out_channels=2, **_flags(True, True, True, True))
    model = build_model(spec).eval()
    _perturb(model)
    cond = assemble_conditioning(_batch(spec, 2, (4, 6), torch.Generator().manual_seed(2)), spec)
    changed = Conditioning(**{**cond.__dict__, field: new_value(getattr(cond, field))})
    with torch.no_grad():
        before, gate_before = _predict(model, spec, cond, with_rain_gate=True)
        after, gate_after = _predict(model, spec, changed, with_rain_gate=True)
    assert (after - before).abs().max() > 1e-4
    assert (gate_after - gate_before).abs().max() > 1e-4


def test_a_conditioning_missing_a_required_input_is_refused(tiny_spec: Callable[..., ModelSpec]) -> None:
    spec = tiny_spec(**_flags(True, True, True, True))
    model = build_model(spec)
    cond = assemble_conditioning(_batch(spec, 2, (4, 6), torch.Generator().manual_seed(0)), spec)
    x = torch.zeros(2, 1, 16, 24)
    for field, flag in [
        ("context", "use_context_encoder"),
        ("var_label", "use_film_vars"),
        ("time_features", "use_film_doy"),
    ]:
        partial = Conditioning(**{**cond.__dict__, field: None})
        with pytest.raises(
            ValueError, match=rf"Conditioning.{field} is None but ModelSpec.{flag}=True needs it"
        ):
            model(x, 1.0, partial)
        with pytest.raises(ValueError, match=rf"Conditioning.{field} is None"):
            model.rain_gate_logits(partial)  # type: ignore[operator]
    with pytest.raises(ValueError, match=r"time_features: expected \[2, 4\]"):
        model(x, 1.0, Conditioning(**{**cond.__dict__, "time_features": torch.zeros(2, 3)}))


def test_model_trained_on_32x32_patches_runs_on_64x96(tiny_spec: Callable[..., ModelSpec]) -> None:
    spec = tiny_spec(
        lr_shape=(8, 8),
        hr_shape=(32, 32),
        channel_mult=(1, 2, 2),
        attn_resolutions=(2,),
        **{**_flags(True, True, True, True), "context_shape": (8 + 2 * MARGIN, 8 + 2 * MARGIN)},
    )
    model = build_model(spec)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    data = torch.Generator().manual_seed(5)
    for _ in range(2):
        batch = _batch(spec, 2, (8, 8), data)
        cond = assemble_conditioning(batch, spec)
        target = torch.randn(2, 1, 32, 32, generator=data)
        out = EDMLoss()(model, target, cond, generator=data)
        out = out.with_rain_gate(model.rain_gate_logits(cond), (target > 0).float(), None, 1.0)  # type: ignore[operator]
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()

    model.eval()
    full = assemble_conditioning(_batch(spec, 1, (16, 24), data), spec)
    assert full.image.shape == (1, spec.in_channels, 64, 96)
    assert full.context is not None and full.context.shape == (1, 2, 16 + 2 * MARGIN, 24 + 2 * MARGIN)
    samples = sample_ensemble(model, full, [1, 2], out_channels=1, num_steps=3)
    assert samples.shape == (1, 2, 1, 64, 96) and torch.isfinite(samples).all()
    assert model.rain_gate_logits(full).shape == (1, 1, 64, 96)  # type: ignore[operator]


def test_ensemble_members_with_film_inputs_do_not_depend_on_batching(
    tiny_spec: Callable[..., ModelSpec],
) -> None:
    spec = tiny_spec(**_flags(True, True, True, False))
    model = build_model(spec).eval()
    _perturb(model, std=0.05)
    cond = assemble_conditioning(_batch(spec, 2, (4, 6), torch.Generator().manual_seed(8)), spec)
    seeds = [[1, 2, 3], [4, 5, 6]]
    whole = sample_ensemble(model, cond, seeds, out_channels=1, num_steps=3)
    chunked = sample_ensemble(model, cond, seeds, out_channels=1, num_steps=3, batch_size=2)
    alone = sample_ensemble(model, cond[torch.tensor([1])], [[5]], out_channels=1, num_steps=3)
    # Batched kernels round differently by batch size (up to ~1e-4 here with all weights perturbed); a member
    # given another date's conditioning would move by far more (the check below).
    torch.testing.assert_close(chunked, whole, rtol=1e-3, atol=1e-3)
    torch.testing.assert_close(alone[0, 0], whole[1, 1], rtol=1e-3, atol=1e-3)
    same_noise_other_date = sample_ensemble(
        model, cond[torch.tensor([0])], [[5]], out_channels=1, num_steps=3
    )
    assert (same_noise_other_date[0, 0] - whole[1, 1]).abs().max() > 0.05
