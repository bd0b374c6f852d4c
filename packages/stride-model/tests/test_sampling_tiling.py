"""Tiled denoising: layouts, partition-of-unity weights, per-tile conditioning as a training patch sees it,
tiled == untiled for translation-equivariant denoisers away from tile edges, and the tile-batch memory bound."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from stride_contracts.checkpoint import ModelSpec, TransformSet, VariableTransform, ZScoreSpec
from stride_core.transforms import VariableTransforms
from stride_model import build_model
from stride_model.conditioning import Conditioning
from stride_model.members import physical_members
from stride_model.sampling import (
    Churn,
    TiledDenoiser,
    TileLayout,
    Tiling,
    auto_tiling,
    crop_conditioning,
    get_solver,
    make_sigmas,
    predict,
    sample_ensemble,
    sample_stitched,
)

RADIUS = 2
KERNEL = torch.randn(1, 1, 2 * RADIUS + 1, 2 * RADIUS + 1, generator=torch.Generator().manual_seed(3)) / 10


def conv_denoiser(x: Tensor, sigma: Tensor, cond: Conditioning) -> Tensor:
    """Translation-equivariant (a fixed 5x5 convolution of x and the image), zero padding at the borders."""
    mixed = x + cond.image[:, :1]
    return F.conv2d(mixed, KERNEL, padding=RADIUS) / (1 + sigma.reshape(-1, 1, 1, 1))


def pointwise_denoiser(x: Tensor, sigma: Tensor, cond: Conditioning) -> Tensor:
    """The Gaussian data denoiser per pixel, with a mean taken from the conditioning image: no neighbours."""
    s2 = sigma.reshape(-1, 1, 1, 1) ** 2
    mean = cond.image[:, :1]
    return mean + 0.16 / (0.16 + s2) * (x - mean)


@pytest.mark.parametrize(
    ("domain", "tile", "overlap", "factor"),
    [
        ((64, 96), (32, 32), 8, 4),
        ((50, 37), (16, 16), 5, 1),
        ((32, 32), (32, 32), 8, 1),
        ((40, 120), (40, 48), 16, 8),
    ],
)
def test_layout_covers_the_domain_and_weights_sum_to_one(
    domain: tuple[int, int], tile: tuple[int, int], overlap: int, factor: int
) -> None:
    layout = TileLayout.build(domain, tile, overlap, factor)
    for starts, length, size in (
        (layout.row_starts, domain[0], tile[0]),
        (layout.col_starts, domain[1], tile[1]),
    ):
        assert starts[0] == 0 and starts[-1] == length - size
        assert all(s % factor == 0 for s in starts)
        assert all(b - a <= size - overlap for a, b in itertools.pairwise(starts))  # overlap at least
    for weights in (layout.blend_weights, layout.stitch_weights):
        assert weights.shape == (layout.n_tiles, *tile)
        torch.testing.assert_close(layout.coverage(weights), torch.ones(domain, dtype=torch.float64))
    assert set(layout.stitch_weights.unique().tolist()) <= {0.0, 1.0}
    assert layout.blend_weights.min() > 0


def test_blend_weights_are_smooth() -> None:
    layout = TileLayout.build((32, 64), (32, 32), 16, 1)
    assert layout.col_starts == (0, 16, 32)
    w = layout.blend_weights[0, 0]
    # The first tile keeps weight 1 up to the overlap, then falls as cos^2 over 16 pixels: no jumps.
    assert w[:16].tolist() == [1.0] * 16
    assert (w[16:].diff() < 0).all() and w.diff().abs().max() < 0.1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"domain": (32, 32), "tile": (64, 64), "overlap": 8},
            "the tile's height 64 exceeds the domain's 32",
        ),
        (
            {"domain": (64, 64), "tile": (32, 32), "overlap": 32},
            "tiling.overlap: 32 must be >= 0 and smaller",
        ),
        (
            {"domain": (64, 64), "tile": (30, 32), "overlap": 8, "factor": 4},
            "tile height 30 must be a multiple",
        ),
        ({"domain": (64, 64), "tile": (32, 32), "overlap": 6, "factor": 4}, "overlap 6 must be a multiple"),
    ],
)
def test_bad_layouts_are_one_line_errors(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TileLayout.build(**kwargs)


def test_tile_context_is_the_training_patch_context() -> None:
    # Full-domain context as the adapter builds it: the LR domain padded by the margin with zeros.
    factor, margin, lr = 4, 3, torch.randn(1, 2, 10, 12)
    context = F.pad(lr, (margin,) * 4)
    cond = Conditioning(torch.randn(1, 5, 40, 48), context=context, time_features=torch.randn(1, 4))
    layout = TileLayout.build((40, 48), (16, 24), 8, factor)
    for r, c in layout.boxes:
        tile = crop_conditioning(cond, (r, c), (16, 24), factor)
        # What a training patch at LR origin (r/f, c/f) reads: each context cell from the LR field, 0 outside.
        expected = torch.zeros(1, 2, 4 + 2 * margin, 6 + 2 * margin)
        for u in range(expected.shape[2]):
            for v in range(expected.shape[3]):
                i, j = r // factor - margin + u, c // factor - margin + v
                if 0 <= i < 10 and 0 <= j < 12:
                    expected[0, :, u, v] = lr[0, :, i, j]
        assert tile.context is not None and torch.equal(tile.context, expected)
        assert torch.equal(tile.image, cond.image[:, :, r : r + 16, c : c + 24])
        assert tile.time_features is cond.time_features


def _edge_distance_mask(layout: TileLayout, radius: int) -> Tensor:
    """Pixels farther than `radius` from every inner (non-domain) edge of every tile that covers them."""
    ok = torch.ones(layout.domain, dtype=torch.bool)
    (height, width), (th, tw) = layout.domain, layout.tile
    for r, c in layout.boxes:
        band = torch.zeros(layout.domain, dtype=torch.bool)
        band[r : r + th, c : c + tw] = True
        inner = torch.zeros(layout.domain, dtype=torch.bool)
        r0, r1 = (r + radius if r > 0 else r), (r + th - radius if r + th < height else r + th)
        c0, c1 = (c + radius if c > 0 else c), (c + tw - radius if c + tw < width else c + tw)
        inner[r0:r1, c0:c1] = True
        ok &= ~(band & ~inner)
    return ok


def test_tiled_equals_untiled_away_from_tile_edges_for_a_convolution() -> None:
    layout = TileLayout.build((48, 80), (24, 32), 12, 1)
    x, sigma = torch.randn(2, 1, 48, 80), torch.tensor([0.7, 2.0])
    cond = Conditioning(torch.randn(2, 3, 48, 80))
    tiled = TiledDenoiser(conv_denoiser, layout, tile_batch=5)(x, sigma, cond)
    untiled = conv_denoiser(x, sigma, cond)
    mask = _edge_distance_mask(layout, RADIUS)
    assert mask.float().mean() > 0.5
    torch.testing.assert_close(tiled[:, :, mask], untiled[:, :, mask], rtol=1e-5, atol=1e-6)
    assert not torch.allclose(tiled[:, :, ~mask], untiled[:, :, ~mask], atol=1e-4)  # edges do differ


def test_tiled_sampling_of_a_pointwise_denoiser_equals_one_pass_with_churn() -> None:
    # No spatial coupling, so blended tiles, stitched tiles and one pass must agree (same seeds and noise).
    cond = Conditioning(torch.randn(2, 1, 32, 48))
    settings: dict[str, Any] = {"num_steps": 6, "S_churn": 10.0, "solver": "heun"}
    one_pass = sample_ensemble(pointwise_denoiser, cond, [[1, 2], [3, 4]], 1, **settings)
    for mode in ("blended", "stitched"):
        tiling = Tiling(tile=(16, 16), overlap=8, factor=2, tile_batch=3, mode=mode)
        tiled = sample_ensemble(pointwise_denoiser, cond, [[1, 2], [3, 4]], 1, tiling=tiling, **settings)
        torch.testing.assert_close(tiled, one_pass, rtol=1e-5, atol=1e-5)


def test_domain_four_times_the_tile_area_runs_with_the_tile_batch_bounding_the_network_input() -> None:
    tile, batch = (16, 16), 4
    seen: list[tuple[int, ...]] = []

    def recording(x: Tensor, sigma: Tensor, cond: Conditioning) -> Tensor:
        seen.append(tuple(x.shape))
        return conv_denoiser(x, sigma, cond)

    cond = Conditioning(torch.randn(1, 1, 32, 32))  # 4x the tile's area
    tiling = Tiling(tile=tile, overlap=8, factor=1, tile_batch=batch)
    out = sample_ensemble(recording, cond, [5, 6], 1, num_steps=4, tiling=tiling)
    assert out.shape == (1, 2, 1, 32, 32) and torch.isfinite(out).all()
    assert {shape[-2:] for shape in seen} == {tile}
    assert max(shape[0] for shape in seen) == batch


def test_stitched_tiles_show_seams_blended_do_not() -> None:
    # A denoiser that pulls each input towards its own mean (what a network's wide receptive field does):
    # independently sampled tiles settle on different levels and jump at the cut; blended tiles cannot.
    layout = TileLayout.build((32, 64), (32, 32), 16, 1)

    def mean_reverting(x: Tensor, sigma: Tensor, cond: Conditioning) -> Tensor:
        local = F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
        return 0.5 * local + 0.5 * x.mean(dim=(-2, -1), keepdim=True)

    cond = Conditioning(torch.zeros(8, 0, 32, 64))
    latents = torch.randn(8, 1, 32, 64, generator=torch.Generator().manual_seed(0))
    sigmas = make_sigmas("karras", 12, 0.002, 5.0, 7.0)
    solver = get_solver("euler")
    blended = solver(TiledDenoiser(mean_reverting, layout, tile_batch=4), latents, sigmas, cond)
    stitched = sample_stitched(solver, mean_reverting, latents, sigmas, cond, layout, churn=Churn())
    cut = 24  # the middle of the overlap 16..32 of the first two tiles

    def jump_ratio(field: Tensor) -> float:
        # The step across the cut against the steps a few pixels either side of it.
        steps = field.diff(dim=-1).abs().mean(dim=(0, 1, 2))
        return float(steps[cut - 1] / torch.cat([steps[cut - 6 : cut - 2], steps[cut + 1 : cut + 5]]).mean())

    assert jump_ratio(stitched) > 1.5 * jump_ratio(blended)
    assert jump_ratio(blended) < 1.2


def test_seam_ratio_sees_a_step_at_the_cuts_and_nothing_in_a_smooth_field() -> None:
    from stride_model.sampling.seams import seam_lines, seam_ratio

    layout = TileLayout.build((48, 80), (24, 32), 8, 1)
    assert seam_lines(layout.col_starts, 32) == ([28, 52], [24, 32, 48, 56])
    # A stationary smooth random field: the same neighbour differences on seam lines as anywhere else.
    noise = torch.randn(64, 1, 52, 84, generator=torch.Generator().manual_seed(2))
    smooth = F.avg_pool2d(F.avg_pool2d(noise, 3, stride=1), 3, stride=1)[:, 0].numpy()
    for lines in ("cuts", "edges"):
        assert 0.93 < seam_ratio(smooth, layout, lines) < 1.07
    stepped = smooth.copy()
    stepped[:, :, 28:] += 1.0  # what a hard cut between two tiles that settled apart looks like
    assert seam_ratio(stepped, layout, "cuts") > 2  # one of the four cut lines stepped
    with pytest.raises(ValueError, match="single tile"):
        seam_ratio(smooth[:, :24, :32], TileLayout.build((24, 32), (24, 32), 8, 1))


def test_seam_ratio_of_stitched_tiles_exceeds_blended_on_a_domain_four_times_the_tile() -> None:
    from stride_model.sampling.seams import seam_ratio

    layout = TileLayout.build((64, 64), (32, 32), 16, 1)  # 4x the tile's area

    def mean_reverting(x: Tensor, sigma: Tensor, cond: Conditioning) -> Tensor:
        local = F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
        return 0.5 * local + 0.5 * x.mean(dim=(-2, -1), keepdim=True)

    cond = Conditioning(torch.zeros(8, 0, 64, 64))
    latents = torch.randn(8, 1, 64, 64, generator=torch.Generator().manual_seed(1))
    sigmas = make_sigmas("karras", 12, 0.002, 5.0, 7.0)
    solver = get_solver("euler")
    blended = solver(TiledDenoiser(mean_reverting, layout, tile_batch=4), latents, sigmas, cond).numpy()
    stitched = sample_stitched(solver, mean_reverting, latents, sigmas, cond, layout, churn=Churn()).numpy()
    # This denoiser pulls every pixel towards its whole tile's mean, far less local than a network (the
    # benchmark's real model is held to 1.10): stitched tiles jump by ~25x the inner differences at the
    # cuts, blended ones keep a gentle slope across the overlap (measured 1.25, 1.40 in the mean).
    assert seam_ratio(stitched, layout, "cuts") > 10 * seam_ratio(blended, layout, "cuts")
    for lines in ("cuts", "edges"):
        assert seam_ratio(blended, layout, lines) < 1.5
        assert seam_ratio(blended.mean(axis=0), layout, lines) < 1.6  # no tile edge in the ensemble mean


def test_a_regression_model_is_predicted_in_tiles_on_a_domain_larger_than_its_patch(
    tiny_spec: Callable[..., ModelSpec],
) -> None:
    """physical_members of a regression checkpoint with a tiling: the network sees patch-sized tiles only,
    each pixel a tile covers alone is that tile's own prediction, and the blend is a partition of unity."""

    spec = tiny_spec(kind="regression")  # trained on 16x24 patches
    model = build_model(spec).eval()
    seen: list[tuple[int, int]] = []
    model.register_forward_pre_hook(lambda _, args: seen.append(tuple(args[0].image.shape[-2:])))
    cond = Conditioning(torch.randn(2, spec.in_channels, 32, 48))
    # No mirrored margin: the tiles then lie on the domain itself (the margin has tests of its own below).
    tiling = auto_tiling((32, 48), spec.hr_shape, spec.factor, tile_batch=3, border=0)
    assert tiling is not None
    layout = tiling.layout((32, 48))
    identity = VariableTransforms(
        TransformSet(
            target=[VariableTransform(variable="t2m", transform=ZScoreSpec(mean=0.0, std=1.0))],
            dynamic=[],
            static=[],
        )
    )
    members = physical_members(model, spec, cond, [[0], [1]], identity, tiling=tiling)
    assert members.shape == (2, 1, 1, 32, 48) and set(seen) == {(16, 24)}
    assert len(seen) == -(-2 * layout.n_tiles // 3)  # tile_batch tiles per call

    covered = layout.coverage(torch.ones(layout.n_tiles, *layout.tile)).numpy()
    with torch.no_grad():
        for r, c in layout.boxes:
            own = model(crop_conditioning(cond, (r, c), layout.tile, spec.factor))[:, 0].numpy()
            alone = covered[r : r + 16, c : c + 24] == 1
            got = members[:, 0, 0, r : r + 16, c : c + 24]
            np.testing.assert_allclose(got[:, alone], own[:, alone], rtol=1e-5, atol=1e-6)
    # A conditioning-only prediction that ignores its neighbours is reproduced exactly by the blend.
    pointwise = predict(lambda tile: 2 * tile.image[:, :1], cond, tiling)
    torch.testing.assert_close(pointwise, 2 * cond.image[:, :1])
