"""Ensembles: per-member seeds, a schedule, a solver, a precision and optional tiling, for B conditions."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor

from stride_contracts.samples import SamplerSettings
from stride_model.conditioning import Conditioning
from stride_model.sampling.border import check_border, crop, grow
from stride_model.sampling.noise import StackedRandomGenerator
from stride_model.sampling.precision import autocast_denoiser
from stride_model.sampling.schedules import make_sigmas
from stride_model.sampling.solvers import Churn, Denoiser, StepCallback, get_solver
from stride_model.sampling.tiling import TiledDenoiser, TileLayout, predict_tiled, sample_stitched


@dataclass(frozen=True)
class Tiling:
    """Sample the domain in overlapping tiles of the training patch size (see stride_model.sampling.tiling).

    tile: HR (height, width), a multiple of factor (the checkpoint's ModelSpec.hr_shape of its patches).
    overlap: HR pixels shared by neighbouring tiles (a multiple of factor, < the tile). factor: HR/LR ratio
    (ModelSpec.factor), tiles start on the LR grid. tile_batch: tiles per network call (the memory bound).
    mode: 'blended' (denoised tiles blended at every step: production) or 'stitched' (tiles sampled
    independently and cut together: the baseline of the seam benchmark). border: HR pixels the domain is
    grown by on every side before it is tiled, then cropped off (stride_model.sampling.border: the domain's
    outermost pixels are then not at a tile's edge), a multiple of factor.
    """

    tile: tuple[int, int]
    overlap: int
    factor: int = 1
    tile_batch: int = 16
    mode: Literal["blended", "stitched"] = "blended"
    border: int = 0

    def layout(self, domain: Sequence[int]) -> TileLayout:
        """The tiles over the domain grown by the border (the domain itself when border is 0)."""
        height, width = (int(v) + 2 * self.border for v in domain)
        return TileLayout.build((height, width), self.tile, self.overlap, self.factor)

    def output_layout(self, domain: Sequence[int]) -> TileLayout:
        """The tiles in the sampled domain's own pixel indices (the grown layout moved back by the border):
        where the tile edges and seams lie in the output, e.g. for stride_model.sampling.seams."""
        grown = self.layout(domain)
        return TileLayout(
            domain=(int(domain[0]), int(domain[1])),
            tile=grown.tile,
            overlap=grown.overlap,
            factor=grown.factor,
            row_starts=tuple(r - self.border for r in grown.row_starts),
            col_starts=tuple(c - self.border for c in grown.col_starts),
        )


def default_overlap(tile: Sequence[int], factor: int) -> int:
    """A quarter of the tile's shorter side, on the LR grid (at least one LR cell): wide enough to blend."""
    return factor * max(1, min(int(v) for v in tile) // (4 * factor))


def auto_tiling(
    domain: Sequence[int],
    patch: Sequence[int],
    factor: int,
    *,
    overlap: int | None = None,
    tile_batch: int = 16,
    border: int | None = None,
) -> Tiling | None:
    """Tiles of the training patch where the domain exceeds it (None: the domain fits, sample in one pass).

    Along an axis shorter than the patch the tile is the domain's length there (the network is
    convolutional; it only must not see a field larger than it was trained on). `overlap` None: a quarter
    of the tile (default_overlap). `border` (HR pixels the tiled domain is grown by per side, see
    stride_model.sampling.border) None: the overlap, so a border pixel sits as deep inside its tile as a
    pixel at an inner tile edge does inside its neighbour. A bad overlap or border raises ValueError naming
    `tiling.overlap` / `tiling.border`.
    """
    height, width = (int(v) for v in domain)
    th, tw = (int(v) for v in patch)
    if height <= th and width <= tw:
        return None
    chosen = default_overlap((min(th, height), min(tw, width)), factor) if overlap is None else int(overlap)
    margin = chosen if border is None else int(border)
    check_border(margin, (height, width), factor)
    tile = (min(th, height + 2 * margin), min(tw, width + 2 * margin))
    if not 0 <= chosen < min(tile) or chosen % factor:
        raise ValueError(
            f"tiling.overlap: {chosen} must be a multiple of the factor {factor} and smaller than the tile "
            f"{list(tile)}; e.g. tiling.overlap={default_overlap(tile, factor)}"
        )
    tiling = Tiling(tile=tile, overlap=chosen, factor=factor, tile_batch=tile_batch, border=margin)
    tiling.layout(domain)  # every other check of the layout, before anything is sampled
    return tiling


def predict(model: Callable[[Conditioning], Tensor], cond: Conditioning, tiling: Tiling | None) -> Tensor:
    """model(cond) of a conditioning-only network (regression, RainGate logits): in one pass, or with
    `tiling` in blended tiles of the training patch (tiling.predict_tiled), as the sampler would see them."""
    if tiling is None:
        return model(cond)
    layout = tiling.layout(tuple(cond.image.shape[-2:]))
    grown = grow(cond, tiling.border, tiling.factor)
    return crop(predict_tiled(model, grown, layout, tile_batch=tiling.tile_batch), tiling.border)


def sampler_kwargs(settings: SamplerSettings) -> dict[str, Any]:
    """sample_ensemble's keyword arguments for a contract's SamplerSettings."""
    return {
        "solver": settings.solver,
        "schedule": settings.schedule,
        "precision": settings.precision,
        "num_steps": settings.steps,
        "sigma_min": settings.sigma_min,
        "sigma_max": settings.sigma_max,
        "rho": settings.rho,
        "S_churn": settings.S_churn,
        "S_min": settings.S_min,
        "S_max": settings.S_max,
        "S_noise": settings.S_noise,
    }


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
    solver: str = "heun",
    schedule: str = "karras",
    precision: str = "fp32",
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
    tiling: Tiling | None = None,
) -> Tensor:
    """Sample an ensemble [B, M, out_channels, H, W] for each of the B samples of cond (H, W: cond.image's).

    seeds is either M seeds shared by every condition, or B lists of M seeds (seeds[b][k] for member k of
    condition b; use this to avoid reusing the same noise across conditions). Each member's output
    depends only on its condition and seed (its latents and churn noise are drawn for the whole domain from
    its own generator, tiled or not), so batch_size (members per sampler call, default all B*M) changes
    speed and memory, not results. With `tiling`, the network only ever sees tiles (tile_batch at a time).
    """
    border = 0 if tiling is None else tiling.border
    batch, _, height, width = cond.image.shape
    layout = tiling.layout((height, width)) if tiling is not None else None
    if border:
        cond = grow(cond, border, tiling.factor if tiling is not None else 1)
        height, width = height + 2 * border, width + 2 * border
    table = _seed_table(seeds, batch)
    members = len(table[0]) if table else 0
    if members == 0:
        raise ValueError("seeds: need at least one seed per condition, got empty lists")
    flat_seeds = [seed for row in table for seed in row]
    step = get_solver(solver)
    sigmas = make_sigmas(schedule, num_steps, sigma_min, sigma_max, rho)
    churn = Churn(S_churn, S_min, S_max, S_noise)
    network = autocast_denoiser(denoiser, precision)
    if tiling is not None and tiling.mode == "blended":
        assert layout is not None
        network = TiledDenoiser(network, layout, tile_batch=tiling.tile_batch)
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
        item_cond = cond[items // members]
        if tiling is not None and tiling.mode == "stitched":
            assert layout is not None
            out = sample_stitched(
                step, network, latents, sigmas, item_cond, layout,
                generator=rng, callback=callback, churn=churn, tile_batch=tiling.tile_batch,
            )  # fmt: skip
        else:
            out = step(network, latents, sigmas, item_cond, generator=rng, callback=callback, churn=churn)
        outputs.append(crop(out, border))
    return torch.cat(outputs).reshape(batch, members, out_channels, height - 2 * border, width - 2 * border)
