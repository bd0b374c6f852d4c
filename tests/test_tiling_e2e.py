"""Tiled generation end to end on real ERA5: a model trained on patches, sampled on a domain 4x their area.

stride-train learns on random patches of half the domain's height and width (a quarter of its area) at
smoke budget; stride-generate then samples the whole domain, which exceeds the patch, so it tiles it with
tiles of the patch blended at every denoising step. Checked, in the members and in the ensemble mean: no
seam (stride_model.sampling.seams: the neighbour differences across the tile edges and overlap middles
against those inside tiles) and no edge artefact (the pixels next to the inner tile edges score a fair CRPS
and carry a spread no worse than the rest, within tolerance; so does the domain's outermost ring).

The domain border: a pixel must not score worse for being on it. Measured on this chain without the
mirrored margin (tiling.border=0), as the border of a run on the inner region the same pixels scored CRPS
1.27x and spread 1.68x what they scored inside the full domain (corner spread 2.8x the interior's); with the
default margin 0.99x and 1.03x. The border's CRPS against the interior's (1.29x with the margin, 1.46x
without) also holds the rows' own difficulty: a bicubic upsampling of the truth's cell means has 1.22x the
interior's error there. So the CRPS is compared pixel for pixel (border of the inner region against the same
pixels inside the domain), the spread also against the interior.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr
from conftest import Chain, run_cli

from stride_core.metrics import crps_ensemble_fair
from stride_model.sampling import TileLayout, auto_tiling, default_overlap
from stride_model.sampling.seams import seam_lines, seam_ratio

SEAM_LIMIT = 1.10  # issue 10's target for blended tiling
EDGE_TOLERANCE = 1.25  # tile-edge ring and domain border against the rest: fair CRPS and spread


def tile_edge_ring(layout: TileLayout) -> np.ndarray:
    """[H, W] True on the two pixels either side of every inner tile edge (where a tile starts or ends)."""
    ring = np.zeros(layout.domain, dtype=bool)
    for axis, (starts, tile) in enumerate(
        ((layout.row_starts, layout.tile[0]), (layout.col_starts, layout.tile[1]))
    ):
        for line in seam_lines(starts, tile)[1]:
            index = [slice(None), slice(None)]
            index[axis] = slice(line - 2, line + 2)
            ring[tuple(index)] = True
    return ring


def test_a_domain_four_times_the_patch_is_tiled_without_seams_or_edge_artefacts(
    chain: Chain, tmp_path: Path
) -> None:
    dataset = chain.path("dataset.zarr")
    with xr.open_zarr(dataset) as opened:
        height, width = opened.sizes["y"], opened.sizes["x"]
    patch = (height // 2 // 4 * 4, width // 2 // 4 * 4)  # on the x4 LR grid
    trained = run_cli(
        [
            "stride-train", "--config", "configs/train_era5_uk.yaml", "--steps", "60",
            "--set", "model.model_channels=16", "--set", "model.channel_mult=[1,2]",
            "--set", "model.attn_resolutions=[]", "--set", "optim.warmup_steps=5",
            "--set", "training.val_every=30", "--set", "training.batch_size=16",
            "--set", f"data.patch=[{patch[0]},{patch[1]}]", "--set", "inline_eval.every=null",
            "--dataset", str(dataset), "--stats", str(chain.path("stats.parquet")),
            "--out", str(tmp_path / "checkpoint"),
        ],
        chain.env,
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr[-3000:]
    generated = run_cli(
        [
            "stride-generate", "--config", "configs/generate_era5_uk.yaml",
            "--checkpoint", str(tmp_path / "checkpoint"), "--dataset", str(dataset),
            "--out", str(tmp_path / "samples.zarr"), "--members", "6", "--steps", "8",
            "--set", "date_stride=12",
        ],
        chain.env,
    )  # fmt: skip
    assert generated.returncode == 0, generated.stderr[-3000:]
    tiling = auto_tiling((height, width), patch, 4)  # stride-generate's default: overlap and margin
    assert tiling is not None and tiling.border == tiling.overlap == default_overlap(patch, 4)
    grown = tiling.layout((height, width))
    assert grown.n_tiles > 1 and height * width >= 4 * patch[0] * patch[1]
    assert (
        f"grown by a {tiling.border} px mirrored border, in {grown.n_tiles} tiles of {patch[0]}x{patch[1]} "
        f"(overlap {tiling.overlap})"
    ) in generated.stderr
    layout = tiling.output_layout((height, width))  # the seams and tile edges inside the domain

    samples = xr.open_zarr(tmp_path / "samples.zarr")
    members = samples["members"].values[:, :, 0]  # [dates, members, H, W], kelvin
    truth = samples["target"].values[:, 0]
    assert members.shape[-2:] == (height, width) and np.isfinite(members).all()
    mean = members.mean(axis=1)
    for lines in ("edges", "cuts"):
        assert seam_ratio(members, layout, lines) < SEAM_LIMIT, lines
        # The ensemble mean keeps the land's structure and smooths the sea, and on this small domain a line's
        # reference pairs lie mostly near the coasts at the domain's edge: the mean scored 1.16 at these
        # lines and 1.16 at the lines of another layout where it has no tile edge (the truth 1.14 and
        # 1.06). So the mean's seams are measured against the truth's own ratio at the same lines.
        truth_ratio = seam_ratio(truth, layout, lines)
        assert seam_ratio(mean, layout, lines) < SEAM_LIMIT * truth_ratio, f"ensemble mean, {lines}"

    crps = np.nanmean(crps_ensemble_fair(members, truth, member_axis=1), axis=0)  # [H, W]
    spread = members.std(axis=1, ddof=1).mean(axis=0)
    border = np.zeros((height, width), dtype=bool)
    border[[0, -1], :] = border[:, [0, -1]] = True
    edges = tile_edge_ring(layout) & ~border
    interior = ~tile_edge_ring(layout)
    interior[:2] = interior[-2:] = interior[:, :2] = interior[:, -2:] = False
    assert edges.any() and interior.any()
    assert np.nanmean(crps[edges]) <= EDGE_TOLERANCE * np.nanmean(crps[interior]), "CRPS at the tile edges"
    assert spread[edges].mean() <= EDGE_TOLERANCE * spread[interior].mean(), "spread at the tile edges"
    # The domain's outermost ring: its spread against the interior's, corners included (the artefact seen:
    # 1.63x, corners 2.8x)...
    assert spread[border].mean() <= EDGE_TOLERANCE * spread[interior].mean(), "spread at the domain border"
    corners = spread[[0, 0, -1, -1], [0, -1, 0, -1]]
    assert corners.max() <= 2 * EDGE_TOLERANCE * spread[interior].mean(), "spread at the domain's corners"
    # ...and pixel for pixel: the region one LR cell inside the domain generated on its own, its outermost
    # ring scores against the same pixels scored inside the full domain (their own difficulty cancels).
    inset = 4
    region = f"{{y0: {inset}, y1: {height - inset}, x0: {inset}, x1: {width - inset}}}"
    inner = run_cli(
        [
            "stride-generate", "--config", "configs/generate_era5_uk.yaml",
            "--checkpoint", str(tmp_path / "checkpoint"), "--dataset", str(dataset),
            "--out", str(tmp_path / "inner.zarr"), "--members", "6", "--steps", "8",
            "--set", "date_stride=12", "--set", f"region.box={region}",
        ],
        chain.env,
    )  # fmt: skip
    assert inner.returncode == 0, inner.stderr[-3000:]
    inner_samples = xr.open_zarr(tmp_path / "inner.zarr")
    inner_members = inner_samples["members"].values[:, :, 0]
    np.testing.assert_array_equal(inner_samples["target"].values[:, 0], truth[:, inset:-inset, inset:-inset])
    inner_crps = np.nanmean(
        crps_ensemble_fair(inner_members, truth[:, inset:-inset, inset:-inset], member_axis=1), axis=0
    )
    inner_spread = inner_members.std(axis=1, ddof=1).mean(axis=0)
    ring = np.zeros(inner_crps.shape, dtype=bool)
    ring[[0, -1], :] = ring[:, [0, -1]] = True
    same_crps, same_spread = crps[inset:-inset, inset:-inset][ring], spread[inset:-inset, inset:-inset][ring]
    assert np.nanmean(inner_crps[ring]) <= EDGE_TOLERANCE * np.nanmean(same_crps), "CRPS on a border"
    assert inner_spread[ring].mean() <= EDGE_TOLERANCE * same_spread.mean(), "spread on a border"
