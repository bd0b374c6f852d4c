import pytest
import torch

from stride_contracts import ModelSpec
from stride_model import Conditioning, EDMLoss, build_model
from stride_train.objective import draw_edm, edm_loss, global_mean_term, model_loss

SPEC = ModelSpec(
    in_dynamic_channels=1,
    in_static_channels=1,
    out_channels=2,
    lr_shape=(2, 2),
    hr_shape=(8, 8),
    model_channels=8,
    channel_mult=(1, 2),
    attn_resolutions=(),
)
# Every optional part on: FiLM from the context, variable labels and time features, and the RainGate.
FULL_SPEC = SPEC.model_copy(
    update={
        "use_context_encoder": True,
        "context_shape": (4, 4),
        "use_film_vars": True,
        "num_var_labels": 3,
        "use_film_doy": True,
        "n_time_features": 2,
        "use_rain_gate": True,
        "rain_gate_threshold": 0.0,
    }
)


def batch(size: int) -> dict[str, torch.Tensor]:
    data = torch.Generator().manual_seed(7)
    target = torch.randn(size, 2, 8, 8, generator=data)
    mask = torch.rand(size, 2, 8, 8, generator=data) > 0.2
    mask[0] = False  # a sample without a single valid pixel counts nothing
    return {
        "target": target,
        "mask": mask,
        "cond_dynamic": torch.randn(size, 1, 2, 2, generator=data),
        "cond_static": torch.randn(size, 1, 8, 8, generator=data),
        "cond_context": torch.randn(size, 1, 4, 4, generator=data),
        "time_features": torch.randn(size, 2, generator=data),
        "var_label": torch.tensor([[0, 2]]).expand(size, 2),
        "wet": (target > 0).float() * mask,
    }


def model(spec: ModelSpec = SPEC) -> torch.nn.Module:
    torch.manual_seed(0)
    net = build_model(spec)
    for parameter in net.parameters():  # the zero-initialised output layer would hide most gradients
        parameter.data.normal_(0, 0.1)
    return net


def test_edm_loss_with_given_draws_is_stride_model_edm_loss() -> None:
    net, loss_fn, data = model(), EDMLoss(P_mean=-1.0, P_std=1.5, sigma_data=0.7), batch(4)
    condition = Conditioning(
        torch.cat(
            [torch.nn.functional.interpolate(data["cond_dynamic"], size=(8, 8)), data["cond_static"]], 1
        )
    )
    reference = loss_fn(
        net, data["target"], condition, data["mask"], generator=torch.Generator().manual_seed(3)
    )
    draws = draw_edm(torch.Generator().manual_seed(3), 4, (2, 8, 8))
    ours = edm_loss(loss_fn, net, data["target"], condition, data["mask"], draws)
    for name in ("loss", "per_sample", "sigma"):
        torch.testing.assert_close(getattr(ours, name), getattr(reference, name), rtol=0, atol=0, msg=name)


@pytest.mark.parametrize("kind", ["edm", "regression"])
@pytest.mark.parametrize("base", [SPEC, FULL_SPEC], ids=["plain", "film_and_gate"])
def test_shares_of_a_global_batch_give_its_gradient(kind: str, base: ModelSpec) -> None:
    """What DDP does with 2 ranks (mean of the ranks' gradients) equals one process on the whole batch."""
    spec = base.model_copy(update={"kind": kind})
    net, loss_fn, data = build_model(spec), EDMLoss(), batch(4)
    net.load_state_dict(model(spec).state_dict())
    draws = draw_edm(torch.Generator().manual_seed(1), 4, (2, 8, 8))
    global_valid = int(data["mask"].sum())

    def gradients(part: slice, world_size: int) -> list[torch.Tensor]:
        net.zero_grad()
        share = {key: value[part] for key, value in data.items()}
        out = model_loss(net, spec, loss_fn, share, draws[part], rain_gate_weight=0.5)
        global_mean_term(out, share["mask"], global_valid, world_size).backward()
        return [p.grad.clone() for p in net.parameters() if p.grad is not None]

    whole = gradients(slice(0, 4), 1)
    ranks = [gradients(slice(0, 2), 2), gradients(slice(2, 4), 2)]
    for full, first, second in zip(whole, *ranks, strict=True):
        torch.testing.assert_close((first + second) / 2, full, rtol=1e-5, atol=1e-7)
    out = model_loss(net, spec, loss_fn, data, draws, rain_gate_weight=0.5)
    torch.testing.assert_close(global_mean_term(out, data["mask"], global_valid, 1), out.loss)
    assert (out.gate_loss is not None) == spec.use_rain_gate


@pytest.mark.parametrize("kind", ["edm", "regression"])
def test_rain_gate_term_is_added_and_needs_wet(kind: str) -> None:
    spec = FULL_SPEC.model_copy(update={"kind": kind})
    net, loss_fn, data = model(spec), EDMLoss(), batch(4)
    draws = draw_edm(torch.Generator().manual_seed(1), 4, (2, 8, 8)) if kind == "edm" else None
    out = model_loss(net, spec, loss_fn, data, draws, rain_gate_weight=0.25)
    without = model_loss(net, spec.model_copy(update={"use_rain_gate": False}), loss_fn, data, draws)
    assert out.gate_loss is not None and out.gate_loss > 0 and without.gate_loss is None
    torch.testing.assert_close(out.per_sample, without.per_sample)
    torch.testing.assert_close(out.loss, without.loss + 0.25 * out.gate_loss)
    with pytest.raises(ValueError, match="batch has no 'wet'"):
        model_loss(net, spec, loss_fn, {k: v for k, v in data.items() if k != "wet"}, draws)
