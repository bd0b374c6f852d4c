"""EDM stochastic Heun sampler (Algorithm 2), per-seed noise generators and ensemble sampling."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from stride_model.conditioning import Conditioning
from stride_model.schedule import karras_sigmas

Denoiser = Callable[[Tensor, Tensor, Conditioning], Tensor]
StepCallback = Callable[[int, float, Tensor], None]


def edm_heun_sampler(
    denoiser: Denoiser,
    latents: Tensor,
    sigmas: Tensor,
    cond: Conditioning,
    *,
    S_churn: float = 0.0,
    S_min: float = 0.0,
    S_max: float = math.inf,
    S_noise: float = 1.0,
    randn_like: Callable[[Tensor], Tensor] = torch.randn_like,
    callback: StepCallback | None = None,
) -> Tensor:
    """Integrate from sigmas[0] to sigmas[-1] (normally 0) with EDM Algorithm 2.

    latents are unit-variance noise [B, C, H, W], scaled here by sigmas[0]. The x updates run in
    float64; the denoiser sees float32 x, a float32 sigma of shape [B] and cond (moved to the latents'
    device).
    callback(i, t_cur, x) is called after step i with the state x at sigmas[i + 1].
    Returns x at sigmas[-1] in the latents' dtype.
    """
    if sigmas.ndim != 1 or sigmas.numel() < 2:
        raise ValueError(
            f"sigmas: expected a 1-D schedule of at least 2 levels, got shape {list(sigmas.shape)}"
        )
    # Python floats (float64) for the noise levels: exact arithmetic and no device syncs in the loop.
    t_steps = [float(t) for t in sigmas.to(torch.float64)]
    cond = cond.to(latents.device)
    batch = latents.shape[0]
    num_steps = len(t_steps) - 1

    def D(x: Tensor, sigma: float) -> Tensor:
        sigma_batch = torch.full((batch,), sigma, dtype=torch.float32, device=x.device)
        return denoiser(x.to(torch.float32), sigma_batch, cond).to(torch.float64)

    with torch.no_grad():
        x_next = latents.to(torch.float64) * t_steps[0]
        for i, (t_cur, t_next) in enumerate(itertools.pairwise(t_steps)):
            x_cur = x_next
            # EDM Algorithm 2: temporarily raise the noise level (churn), then a Heun step back down.
            gamma = min(S_churn / num_steps, math.sqrt(2) - 1) if S_min <= t_cur <= S_max else 0.0
            t_hat = t_cur + gamma * t_cur
            if gamma > 0:
                x_hat = x_cur + math.sqrt(t_hat**2 - t_cur**2) * S_noise * randn_like(x_cur)
            else:
                x_hat = x_cur
            d_cur = (x_hat - D(x_hat, t_hat)) / t_hat
            x_next = x_hat + (t_next - t_hat) * d_cur
            if t_next != 0:
                # Second-order correction; skipped on the last step, where d would divide by sigma = 0.
                d_prime = (x_next - D(x_next, t_next)) / t_next
                x_next = x_hat + (t_next - t_hat) * (0.5 * d_cur + 0.5 * d_prime)
            if callback is not None:
                callback(i, t_cur, x_next)
    return x_next.to(latents.dtype)


class StackedRandomGenerator:
    """One torch.Generator per seed (as in EDM generate.py): item k's noise depends only on seeds[k]."""

    def __init__(self, seeds: Sequence[int], device: torch.device | str = "cpu") -> None:
        # Drawing on CPU by default makes member k identical on CPU and GPU runs; pass a CUDA device to
        # trade that for speed.
        self.device = torch.device(device)
        self.seeds = [int(seed) for seed in seeds]
        for seed in self.seeds:
            if seed < 0:
                raise ValueError(f"StackedRandomGenerator: seeds must be >= 0, got {seed}")
        self.generators = [torch.Generator(self.device).manual_seed(seed) for seed in self.seeds]

    def randn(
        self,
        shape_per_item: Sequence[int],
        *,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ) -> Tensor:
        """Standard normal noise [len(seeds), *shape_per_item], one generator per item."""
        noise = torch.stack(
            [
                torch.randn(tuple(shape_per_item), generator=gen, dtype=dtype, device=self.device)
                for gen in self.generators
            ]
        )
        return noise.to(device if device is not None else self.device)

    def randn_like(self, x: Tensor) -> Tensor:
        """Noise shaped, typed and placed like x, whose first dimension must equal len(seeds)."""
        if x.shape[0] != len(self.generators):
            raise ValueError(
                f"randn_like: batch dimension {x.shape[0]} does not match {len(self.generators)} seeds"
            )
        return self.randn(x.shape[1:], dtype=x.dtype, device=x.device)


def _seed_table(seeds: Sequence[int] | Sequence[Sequence[int]], batch: int) -> list[list[int]]:
    if len(seeds) == 0:
        raise ValueError("seeds: need at least one seed per condition, got an empty list")
    shared: list[int] = []
    table: list[list[int]] = []
    for item in seeds:
        if isinstance(item, Sequence):
            table.append([int(seed) for seed in item])
        else:
            shared.append(int(item))
    if shared and table:
        raise ValueError(
            "seeds: mix of seeds and lists of seeds; give one flat list or one list per condition"
        )
    if shared:
        return [list(shared) for _ in range(batch)]
    if len(table) != batch or len({len(row) for row in table}) > 1:
        raise ValueError(
            f"seeds: expected a flat list (shared by all {batch} conditions) or {batch} equal-length lists, "
            f"got {len(table)} lists of lengths {sorted({len(row) for row in table})}"
        )
    return table


def sample_ensemble(
    denoiser: Denoiser,
    cond: Conditioning,
    seeds: Sequence[int] | Sequence[Sequence[int]],
    out_channels: int,
    *,
    num_steps: int = 18,
    sigma_min: float = 0.002,
    sigma_max: float = 80.0,
    rho: float = 7.0,
    S_churn: float = 0.0,
    S_min: float = 0.0,
    S_max: float = math.inf,
    S_noise: float = 1.0,
    batch_size: int | None = None,
    generator_device: torch.device | str = "cpu",
    callback: StepCallback | None = None,
) -> Tensor:
    """Sample an ensemble [B, M, out_channels, H, W] for each of the B samples of cond (H, W: cond.image's).

    seeds is either M seeds shared by every condition, or B lists of M seeds (seeds[b][k] for member k of
    condition b; use this to avoid reusing the same noise across conditions). Each member's output
    depends only on its condition and seed, so batch_size (items per sampler call, default all B*M)
    changes speed and memory, not results.
    """
    batch, _, height, width = cond.image.shape
    table = _seed_table(seeds, batch)
    members = len(table[0]) if table else 0
    if members == 0:
        raise ValueError("seeds: need at least one seed per condition, got empty lists")
    flat_seeds = [seed for row in table for seed in row]
    sigmas = karras_sigmas(num_steps, sigma_min, sigma_max, rho)
    chunk = len(flat_seeds) if batch_size is None else batch_size
    if chunk < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")

    outputs = []
    for start in range(0, len(flat_seeds), chunk):
        stop = min(start + chunk, len(flat_seeds))
        rng = StackedRandomGenerator(flat_seeds[start:stop], device=generator_device)
        device = cond.image.device
        latents = rng.randn((out_channels, height, width), device=device)
        # Item b * M + k is member k of condition b; index per chunk rather than repeating all conditions.
        items = torch.arange(start, stop, device=device)
        outputs.append(
            edm_heun_sampler(
                denoiser,
                latents,
                sigmas,
                cond[items // members],
                S_churn=S_churn,
                S_min=S_min,
                S_max=S_max,
                S_noise=S_noise,
                randn_like=rng.randn_like,
                callback=callback,
            )
        )
    return torch.cat(outputs).reshape(batch, members, out_channels, height, width)
