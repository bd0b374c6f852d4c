"""Tiled denoising on domains larger than the training patch (CorrDiff-style patch-based generation).

At every solver step the full-domain noisy state is cut into overlapping tiles of the training patch size;
all tiles go through the network in batches of `tile_batch` (so the network's memory depends on the tile
batch, not on the domain), and their denoised estimates are blended with smooth weights into one
full-domain D(x; sigma). The solver then advances the full-domain state: every step starts from the blended
field, so tiles never drift apart. `TiledDenoiser` is a drop-in denoiser: any solver runs on it unchanged.

Blend weights: per axis, a tile ramps up as sin^2 over its overlap with the previous tile and down as cos^2
over its overlap with the next (no ramp at the domain's edges); the 2-D weight is the product, and the
weights are divided by their sum over tiles, so they are a partition of unity (sin^2 + cos^2 = 1 already
where two tiles meet with the nominal overlap).

Each tile sees the conditioning it would have seen as a training patch at that place: the HR image cut at
the tile's box, and the LR context cut at the tile's LR box + the context margin (the full-domain context of
generation is the LR domain padded by the margin with zeros, as a training patch's context is outside the
domain). One difference remains: the image channels are the full-domain bicubic upsampling cut at the tile,
whereas a training patch upsamples its own LR box; they differ in the outermost ~2 LR cells of a tile, where
the blend weights are small.

`sample_stitched` is the naive alternative, for comparison only: each tile sampled on its own from start to
end (same noise as the full-domain field), then stitched with hard cuts at the middle of the overlaps.

Usage::

    layout = TileLayout.build(domain=(640, 704), tile=(128, 128), overlap=32, factor=8)
    tiled = TiledDenoiser(model, layout, tile_batch=16)
    x = get_solver("heun")(tiled, latents, sigmas, full_domain_cond, generator=rng)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property

import torch
from torch import Tensor

from stride_model.conditioning import Conditioning
from stride_model.sampling.noise import GlobalNoise, NoiseSource
from stride_model.sampling.solvers import NO_CHURN, Churn, Denoiser, Solver, StepCallback


def _starts(length: int, tile: int, overlap: int, factor: int, axis: str) -> tuple[int, ...]:
    """Tile starts along one axis, multiples of `factor`, first 0, last length - tile, gaps <= tile - overlap."""
    if tile > length:
        raise ValueError(
            f"tiling: the tile's {axis} {tile} exceeds the domain's {length}; sample this domain in one pass"
        )
    lr_length, lr_tile, lr_overlap = length // factor, tile // factor, overlap // factor
    if lr_tile == lr_length:
        return (0,)
    stride = lr_tile - lr_overlap
    n = 1 + math.ceil((lr_length - lr_tile) / stride)
    # Integer floor of i * span / (n - 1): consecutive gaps are floor or ceil of span / (n - 1) <= stride.
    span = lr_length - lr_tile
    return tuple(factor * (i * span // (n - 1)) for i in range(n))


def _ramp(n: int, dtype: torch.dtype) -> Tensor:
    """sin^2 rising over n pixels, at pixel centres: ramp + ramp.flip(0) == 1."""
    k = torch.arange(n, dtype=dtype)
    return torch.sin(0.5 * math.pi * (k + 0.5) / n) ** 2


def _axis_weights(starts: Sequence[int], tile: int, hard: bool) -> list[Tensor]:
    weights = []
    for j, start in enumerate(starts):
        w = torch.ones(tile, dtype=torch.float64)
        if j > 0:
            left = starts[j - 1] + tile - start
            if hard:
                w[: left // 2] = 0
            else:
                w[:left] *= _ramp(left, torch.float64)
        if j + 1 < len(starts):
            right = start + tile - starts[j + 1]
            if hard:
                w[tile - (right - right // 2) :] = 0
            else:
                w[tile - right :] *= _ramp(right, torch.float64).flip(0)
        weights.append(w)
    return weights


@dataclass(frozen=True)
class TileLayout:
    """Overlapping tiles covering an HR domain; starts (HR pixels) on the LR grid (multiples of `factor`)."""

    domain: tuple[int, int]
    tile: tuple[int, int]
    overlap: int
    factor: int
    row_starts: tuple[int, ...]
    col_starts: tuple[int, ...]

    @classmethod
    def build(cls, domain: Sequence[int], tile: Sequence[int], overlap: int, factor: int = 1) -> TileLayout:
        """Fewest tiles with at least `overlap` HR pixels of overlap; tile and overlap multiples of factor."""
        height, width = (int(v) for v in domain)
        th, tw = (int(v) for v in tile)
        if factor < 1:
            raise ValueError(f"tiling: factor must be >= 1, got {factor}")
        for name, value in (("tile height", th), ("tile width", tw), ("overlap", overlap)):
            if value < 0 or value % factor:
                raise ValueError(f"tiling: the {name} {value} must be a multiple of the factor {factor}")
        if th < 1 or tw < 1:
            raise ValueError(f"tiling: tile must be positive, got {th}x{tw}")
        if not 0 <= overlap < min(th, tw):
            raise ValueError(f"tiling.overlap: {overlap} must be >= 0 and smaller than the tile {th}x{tw}")
        if height % factor or width % factor:
            raise ValueError(f"tiling: domain {height}x{width} is not a multiple of the factor {factor}")
        return cls(
            domain=(height, width),
            tile=(th, tw),
            overlap=int(overlap),
            factor=int(factor),
            row_starts=_starts(height, th, overlap, factor, "height"),
            col_starts=_starts(width, tw, overlap, factor, "width"),
        )

    @property
    def n_tiles(self) -> int:
        return len(self.row_starts) * len(self.col_starts)

    @property
    def boxes(self) -> list[tuple[int, int]]:
        """(row, col) HR origin of each tile, row-major."""
        return [(r, c) for r in self.row_starts for c in self.col_starts]

    def _weights(self, hard: bool) -> Tensor:
        rows = _axis_weights(self.row_starts, self.tile[0], hard)
        cols = _axis_weights(self.col_starts, self.tile[1], hard)
        raw = torch.stack([wr[:, None] * wc[None, :] for wr in rows for wc in cols])
        # Normalised per pixel, so the weights over tiles sum to 1 (up to rounding) at every pixel.
        total = self._sum(raw)
        th, tw = self.tile
        return torch.stack(
            [w / total[r : r + th, c : c + tw] for w, (r, c) in zip(raw, self.boxes, strict=True)]
        )

    def _sum(self, per_tile: Tensor) -> Tensor:
        total = torch.zeros(self.domain, dtype=per_tile.dtype)
        th, tw = self.tile
        for w, (r, c) in zip(per_tile, self.boxes, strict=True):
            total[r : r + th, c : c + tw] += w
        return total

    @cached_property
    def blend_weights(self) -> Tensor:
        """[n_tiles, th, tw] float64 smooth weights summing to 1 over the tiles at every pixel."""
        return self._weights(hard=False)

    @cached_property
    def stitch_weights(self) -> Tensor:
        """[n_tiles, th, tw] 0/1 weights: each pixel from one tile, cut at the middle of each overlap."""
        return self._weights(hard=True)

    def coverage(self, weights: Tensor) -> Tensor:
        """[H, W] sum over tiles of per-tile weights [n_tiles, th, tw] (1 everywhere for blend/stitch)."""
        return self._sum(weights)

    def split(self, x: Tensor) -> Tensor:
        """[B, C, H, W] -> [B * n_tiles, C, th, tw]; item b * n_tiles + t is tile t of sample b."""
        th, tw = self.tile
        return torch.stack([x[:, :, r : r + th, c : c + tw] for r, c in self.boxes], dim=1).flatten(0, 1)

    def combine(self, tiles: Tensor, weights: Tensor) -> Tensor:
        """Inverse of split with weights [n_tiles, th, tw]: [B * n_tiles, C, th, tw] -> [B, C, H, W]."""
        n, (th, tw) = self.n_tiles, self.tile
        tiles = tiles.reshape(-1, n, *tiles.shape[1:])
        out = tiles.new_zeros((tiles.shape[0], tiles.shape[2], *self.domain))
        w = weights.to(device=tiles.device, dtype=tiles.dtype)
        for t, (r, c) in enumerate(self.boxes):
            out[:, :, r : r + th, c : c + tw] += w[t] * tiles[:, t]
        return out


def crop_conditioning(
    cond: Conditioning, origin: tuple[int, int], tile: tuple[int, int], factor: int
) -> Conditioning:
    """The conditioning of the tile at HR `origin`: the image cut at the tile, the context at its LR box + margin.

    The context's margin is inferred from its size: a full-domain context is [B, C, h + 2m, w + 2m] for an
    LR domain h x w (the adapter's layout), so the tile's context starts at its LR origin in those indices.
    """
    (r, c), (th, tw) = origin, tile
    image = cond.image[:, :, r : r + th, c : c + tw]
    context = cond.context
    if context is not None:
        lr_h, lr_w = cond.image.shape[-2] // factor, cond.image.shape[-1] // factor
        margin_h, margin_w = context.shape[-2] - lr_h, context.shape[-1] - lr_w
        if margin_h != margin_w or margin_h < 0 or margin_h % 2:
            raise ValueError(
                f"tiling: context {list(context.shape[-2:])} is not the LR domain {lr_h}x{lr_w} plus a margin on "
                f"every side; pass the full-domain conditioning the adapter builds"
            )
        m = margin_h // 2
        lr_r, lr_c = r // factor, c // factor
        context = context[:, :, lr_r : lr_r + th // factor + 2 * m, lr_c : lr_c + tw // factor + 2 * m]
    return Conditioning(
        image=image, context=context, time_features=cond.time_features, var_label=cond.var_label
    )


def _cat(conds: Sequence[Conditioning]) -> Conditioning:
    def cat(name: str) -> Tensor | None:
        values = [getattr(cond, name) for cond in conds]
        return None if values[0] is None else torch.cat(values)

    image = cat("image")
    assert image is not None
    return Conditioning(
        image=image, context=cat("context"), time_features=cat("time_features"), var_label=cat("var_label")
    )


def tile_conditioning(cond: Conditioning, layout: TileLayout) -> Conditioning:
    """Every tile's conditioning [B * n_tiles, ...], in the item order of TileLayout.split (b * n_tiles + t)."""
    per_tile = _cat([crop_conditioning(cond, box, layout.tile, layout.factor) for box in layout.boxes])
    batch, n = len(cond), layout.n_tiles
    item = torch.arange(batch * n, device=cond.image.device)
    return per_tile[(item % n) * batch + item // n]  # _cat is tile-major: tile t of sample b at t * B + b


class ChunkedDenoiser:
    """Calls the network on at most `batch` items at a time (the memory bound of tiled sampling)."""

    def __init__(self, denoiser: Denoiser, batch: int) -> None:
        if batch < 1:
            raise ValueError(f"tiling.tile_batch must be >= 1, got {batch}")
        self.denoiser, self.batch = denoiser, batch

    def __call__(self, x: Tensor, sigma: Tensor, cond: Conditioning) -> Tensor:
        if x.shape[0] <= self.batch:
            return self.denoiser(x, sigma, cond)
        parts = []
        for start in range(0, x.shape[0], self.batch):
            part = slice(start, start + self.batch)
            parts.append(self.denoiser(x[part], sigma[part], cond[part]))
        return torch.cat(parts)


class TiledDenoiser:
    """A full-domain denoiser from a tile-sized one: D(x) = sum_t w_t D(x cut at tile t), at every call."""

    def __init__(self, denoiser: Denoiser, layout: TileLayout, *, tile_batch: int = 16) -> None:
        self.layout = layout
        self.network = ChunkedDenoiser(denoiser, tile_batch)
        self._cond_image: Tensor | None = None
        self._tile_cond: Conditioning | None = None

    def _tiles_of(self, cond: Conditioning) -> Conditioning:
        # The solver passes the same conditioning at every step: cut it once per sampling call. Holding the
        # image keeps its identity from being reused by another tensor.
        if cond.image is not self._cond_image or self._tile_cond is None:
            self._tile_cond, self._cond_image = tile_conditioning(cond, self.layout), cond.image
        return self._tile_cond

    def __call__(self, x: Tensor, sigma: Tensor, cond: Conditioning) -> Tensor:
        if tuple(x.shape[-2:]) != self.layout.domain:
            raise ValueError(
                f"tiling: state {list(x.shape[-2:])} is not the layout's domain {list(self.layout.domain)}"
            )
        tiles = self.layout.split(x)
        sigma_tiles = sigma.repeat_interleave(self.layout.n_tiles)
        denoised = self.network(tiles, sigma_tiles, self._tiles_of(cond)).to(torch.float32)
        return self.layout.combine(denoised, self.layout.blend_weights)


def predict_tiled(
    predict: Callable[[Conditioning], Tensor], cond: Conditioning, layout: TileLayout, *, tile_batch: int = 16
) -> Tensor:
    """A conditioning-only prediction (a regression model, RainGate logits) in blended tiles: [B, C, H, W].

    The network sees each tile's training-patch conditioning (tile_batch tiles at a time) and the tiles'
    outputs are blended with the sampler's weights. One pass of a deterministic model is exactly one
    denoising step of the tiled sampler, so its seams are those of a single blended step.
    """
    tile_cond = tile_conditioning(cond, layout)
    parts = [
        predict(tile_cond[slice(start, start + tile_batch)]) for start in range(0, len(tile_cond), tile_batch)
    ]
    return layout.combine(torch.cat(parts).to(torch.float32), layout.blend_weights)


class _TileNoise:
    """Churn noise for tile states: the full-domain draw of the members' generators, cut into tiles."""

    def __init__(self, generator: NoiseSource, layout: TileLayout, batch: int) -> None:
        self.generator, self.layout, self.batch = generator, layout, batch

    def randn_like(self, x: Tensor) -> Tensor:
        full = torch.empty((self.batch, x.shape[1], *self.layout.domain), dtype=x.dtype, device=x.device)
        return self.layout.split(self.generator.randn_like(full))


def sample_stitched(
    solver: Solver,
    denoiser: Denoiser,
    latents: Tensor,
    sigmas: Tensor,
    cond: Conditioning,
    layout: TileLayout,
    *,
    generator: NoiseSource | None = None,
    callback: StepCallback | None = None,
    churn: Churn = NO_CHURN,
    tile_batch: int = 16,
) -> Tensor:
    """Each tile sampled independently (its own trajectory), then stitched with hard cuts: the baseline.

    The tiles' latents and churn noise are cuts of the full-domain ones, so it differs from blended tiling
    only in how the tiles are combined. Memory holds every tile's state (the comparison, not production).
    """
    batch = latents.shape[0]
    noise = _TileNoise(generator if generator is not None else GlobalNoise(), layout, batch)
    tile_callback = None
    if callback is not None:
        user = callback

        def tile_callback(i: int, t: float, x: Tensor) -> None:
            user(i, t, layout.combine(x, layout.stitch_weights))

    out = solver(
        ChunkedDenoiser(denoiser, tile_batch),
        layout.split(latents),
        sigmas,
        tile_conditioning(cond.to(latents.device), layout),
        generator=noise,
        callback=tile_callback,
        churn=churn,
    )
    return layout.combine(out, layout.stitch_weights)
