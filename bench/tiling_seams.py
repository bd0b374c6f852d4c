"""Tiling seams on the largest real domain: blended tiles (combined at every step) against stitched ones.

Data and model: MeteoSwiss radar precipitation at its full 640 x 704 grid (the 640 x 710 files trimmed to
the x8 factor), three days merged; a small STRIDE EDM model (16 channels, 0.33M parameters) trained on
random 48 x 48 patches for 250 steps of 8 (stride-data build, stride-stats, stride-train called as
libraries, each stage skipped when its output exists under --work; or pass --dataset and --checkpoint).
The model is trained on patches, so the 640 x 704 domain can only be sampled in tiles of 48 x 48.

Budget: the defaults (model size, 250 training steps, 1 test date x 1 member, DPM-Solver++(2M) with 16
steps = 16 network calls, a 192 x 192 timing crop) are sized so the whole bench runs within an hour on a
shared 2-core CPU under nice (the 32-channel model on 64 x 64 patches, 2 dates x 2 members x 8 steps did
not finish in 75 min at load 12). The seam measure needs the full domain, not many members: it pools every
seam line of the domain (~40 lines x ~700 pixels per direction); its noise floor is the truth's ratio at
the same lines. The solve must be converged, or leftover latent noise (which has no seams) pulls every
ratio towards 1. Chosen on the val split (first val date, 96 x 96 crop at (256, 256), 2 members, one
pass): the members' mean neighbour difference over the truth's was 7.59 with Heun at 4 steps (7 calls),
1.93 at 8, 1.38 at 16 (31 calls), and 1.86 / 1.49 / 1.39 with DPM-Solver++(2M) at 8 / 12 / 16 steps, so
16 DPM-Solver++(2M) steps are as converged as 31 Heun calls; the run records the same ratio on its test
fields (`diagnostics.gradient_vs_truth`).

For the same test dates, member seeds and solver, the domain is sampled twice in the same run, with
stride-generate's default tiling (stride_model.sampling.auto_tiling: tiles of the training patch, the
domain grown by a mirrored margin `tiling.border` = the overlap and cropped back):
- blended: stride_model.sampling.TiledDenoiser, all tiles denoised and blended (sin^2 weights) at every
  solver step (what stride-generate does);
- stitched: each tile sampled on its own from the same latents and cut together at the middle of each
  overlap (sample_stitched, the naive baseline).

Seam ratio (stride_model.sampling.seams.seam_ratio): the mean absolute difference between neighbouring
pixels across the seam lines (pairs that straddle a line), divided by the same mean over the pixel pairs
beside those lines (within 12 pixels, at least 4 from any line), pooled over rows and columns, dates and
members, on the network's output (model space: log-z-scored precipitation, where dry and wet areas weigh
alike). Lines are those of the sampled domain (Tiling.output_layout: the grown layout moved back by the
border). The run's noise: the ratio of each member (seed) alone, and the truth's ratio at the same lines
(it has no tiles, so whatever it shows is the weather, not a seam). Lines: where the stitched field
switches tile (middle of each overlap) and, for blended, also every tile edge (where a tile starts to
contribute); the blended ratio is the larger of the two. 1 means invisible seams. Target: blended < 1.10.

Why stitched may score like blended (`diagnostics`): the stitched tiles start from cuts of the same
full-domain latents and the solver is deterministic (no churn), so two neighbouring tiles only disagree
where one of them is near its own edge. `diagnostics.stitched_minus_blended` is the mean |stitched -
blended| at the cut pixels and away from every line, in units of the field's mean neighbour difference;
`diagnostics.gradient_vs_truth` is the members' mean neighbour difference over the truth's (valid pixels),
how much smoother than the weather the model is.

Timing: on a crop that fits in one pass (--timing-crop), one-pass sampling against blended tiling with the
default margin (same seeds), best of --repeats; tiled / one-pass against the tiles' area ratio (sum of
tile areas / the crop's area, margin included) + 15%.

    make bench-tiling-seams                            # -> bench/results/tiling-seams.json
    python bench/tiling_seams.py --train-steps 50 --steps 4 --no-record      # a quick try
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import machine
import numpy as np
import torch
import yaml

from stride_contracts import CheckpointManifest
from stride_core.artifacts import read_manifest_folder
from stride_core.tracking import RunContext
from stride_core.transforms import VariableTransforms
from stride_model import assemble_conditioning, build_model, load_into
from stride_model.adapter import DownscalingDataset, collate_samples
from stride_model.sampling import TileLayout, auto_tiling, crop_conditioning, sample_ensemble
from stride_model.sampling.seams import CLEARANCE, seam_lines, seam_ratio

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "tiling-seams.json"
DATA = {
    "source": {"path": ["radar_mch_2015-05-15.nc", "radar_mch_2016-07-11.nc", "radar_mch_2017-01-31.nc"]},
    "target": ["precip"],
    "dynamic": ["precip"],
    "static": ["orography", "lsm"],
    "coarsen": {"factor": 8, "min_valid_fraction": 0.5},
    "conditioning_fill": {"precip": 0.0},  # LR cells outside the radar coverage
    "splits": {
        "train": {"start": "2015-05-15T00:00", "end": "2016-07-11T23:00"},
        "val": {"start": "2016-07-11T23:05", "end": "2016-07-12T00:00"},
        "test": {"start": "2017-01-31T00:00", "end": "2017-01-31T23:55"},
    },
}
TRAIN = {
    "data": {"patch": [48, 48]},
    "model": {
        "kind": "edm", "model_channels": 16, "channel_mult": [1, 2, 2], "num_blocks": 1,
        "attn_resolutions": [], "dropout": 0.0,
    },
    "edm": {"P_mean": -1.2, "P_std": 1.2, "sigma_data": 1.0},
    "optim": {"lr": 0.001, "warmup_steps": 50, "grad_clip": 1.0},
    "training": {
        "steps": 250, "batch_size": 8, "ema_halflife_samples": 1000, "log_every": 25, "val_every": 125,
        "seed": 0,
    },
}  # fmt: skip


def prepare(work: Path, train_steps: int) -> tuple[Path, Path]:
    """dataset.zarr, stats.parquet and checkpoint/ under work, each built unless present."""
    from stride_data.build import build_dataset
    from stride_data.config import DataBuildConfig
    from stride_stats.config import StatsConfig
    from stride_stats.run import run_stats
    from stride_train.config import TrainConfig
    from stride_train.run import run_train

    work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("STRIDE_DATA", str(ROOT.parent / "shared" / "data"))
    run = RunContext("bench-tiling-seams", work, None, None)  # no MLflow record: a benchmark
    dataset, stats, checkpoint = work / "dataset.zarr", work / "stats.parquet", work / "checkpoint"
    if not dataset.exists():
        print("  stride-data build ...", flush=True)
        build_dataset(DataBuildConfig.model_validate({**DATA, "output": str(dataset)}), run)
    if not stats.exists():
        print("  stride-stats ...", flush=True)
        run_stats(StatsConfig(dataset=dataset, output=stats), run)
    if not checkpoint.exists():
        print(f"  stride-train ({train_steps} steps) ...", flush=True)
        train = {**TRAIN, "training": {**TRAIN["training"], "steps": train_steps}}  # type: ignore[dict-item]
        config = {**train, "dataset": str(dataset), "stats": str(stats), "output": str(checkpoint)}
        run_train(TrainConfig.model_validate(config), run)
    return dataset, checkpoint


def _line_mask(layout: TileLayout, which: str) -> np.ndarray:
    """[H, W] True on the pixels either side of every stitch cut ('cuts') or within CLEARANCE of any line."""
    mask = np.zeros(layout.domain, dtype=bool)
    for axis, (starts, tile) in enumerate(
        ((layout.row_starts, layout.tile[0]), (layout.col_starts, layout.tile[1]))
    ):
        cuts, edges = seam_lines(starts, tile)
        spans = (
            [(c - 1, c + 1) for c in cuts]
            if which == "cuts"
            else [(max(0, line - CLEARANCE), line + CLEARANCE) for line in (*cuts, *edges)]
        )
        for lo, hi in spans:
            index: list[slice] = [slice(None), slice(None)]
            index[axis] = slice(lo, hi)
            mask[tuple(index)] = True
    return mask


def _neighbour_difference(fields: np.ndarray, valid: np.ndarray | None = None) -> float:
    """Mean |difference| of row and column neighbours of fields [..., H, W] (pairs both valid, if given)."""
    total, count = 0.0, 0
    for axis in (-2, -1):
        diff = np.abs(np.diff(fields.astype(np.float64), axis=axis))
        if valid is not None:
            both = np.broadcast_to(valid[..., 1:, :] & valid[..., :-1, :] if axis == -2 else
                                   valid[..., :, 1:] & valid[..., :, :-1], diff.shape)  # fmt: skip
            diff = diff[both]
        total, count = total + float(diff.sum()), count + diff.size
    return total / count


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--work", type=Path, default=Path("/tmp/stride-bench-tiling-seams"))
    parser.add_argument("--dataset", type=Path, help="use this dataset.zarr (with --checkpoint)")
    parser.add_argument("--checkpoint", type=Path)
    parser.add_argument("--train-steps", type=int, default=250)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--dates", type=int, default=1, help="test dates (spread over the split)")
    parser.add_argument("--members", type=int, default=1)
    parser.add_argument("--solver", default="dpmpp_2m", help="stride_model.sampling solver name")
    parser.add_argument("--steps", type=int, default=16, help="solver steps (Heun: 2 * steps - 1 calls)")
    parser.add_argument("--overlap", type=int, default=16, help="HR pixels (a multiple of the factor)")
    parser.add_argument(
        "--border",
        type=int,
        default=None,
        help="tiling.border, HR pixels (default: the overlap, as stride-generate)",
    )
    parser.add_argument("--tile-batch", type=int, default=64)
    parser.add_argument("--timing-crop", type=int, default=192, help="HR side of the one-pass timing domain")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--no-record", action="store_true", help="print only, do not write the JSON")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    began, began_cpu = time.perf_counter(), time.process_time()
    if args.dataset is not None and args.checkpoint is not None:
        dataset, checkpoint = args.dataset, args.checkpoint
    else:
        dataset, checkpoint = prepare(args.work, args.train_steps)
    prepared_s = time.perf_counter() - began
    manifest = read_manifest_folder(checkpoint, CheckpointManifest)
    spec = manifest.model_spec
    transforms = VariableTransforms(manifest.transforms)
    model = build_model(spec)
    load_into(model, checkpoint / manifest.ema_weights_file)
    model.eval()
    patch = (int(spec.hr_shape[0]), int(spec.hr_shape[1]))
    adapter = DownscalingDataset(dataset, "test", transforms, manifest.features)
    indices = np.unique(np.linspace(0, len(adapter) - 1, args.dates).round().astype(int)).tolist()
    batch = collate_samples([adapter[i] for i in indices])
    cond = assemble_conditioning(batch, spec)
    domain = (int(cond.image.shape[-2]), int(cond.image.shape[-1]))
    seeds = [[1000 * i + k for k in range(args.members)] for i in indices]
    sampler = {"solver": args.solver, "num_steps": args.steps}
    # stride-generate's tiling of this domain (tiles of the patch, margin = the overlap unless --border).
    blended_tiling = auto_tiling(
        domain, patch, spec.factor, overlap=args.overlap, tile_batch=args.tile_batch, border=args.border
    )
    assert blended_tiling is not None, f"domain {domain} fits the patch {patch}: nothing to tile"
    tile, border = blended_tiling.tile, blended_tiling.border
    n_tiles = blended_tiling.layout(domain).n_tiles
    layout = blended_tiling.output_layout(domain)  # seam lines in the sampled domain's pixels
    print(
        f"{len(indices)} test dates x {args.members} members on {domain} HR in {n_tiles} tiles of {tile} "
        f"(overlap {args.overlap}, border {border}), checkpoint step {manifest.step}, {args.threads} thread(s)",
        flush=True,
    )

    fields: dict[str, np.ndarray] = {}
    seconds: dict[str, float] = {"prepare_wall": prepared_s}
    for mode in ("blended", "stitched"):
        tiling = dataclasses.replace(blended_tiling, mode=mode)
        start, start_cpu = time.perf_counter(), time.process_time()
        with torch.no_grad():
            out = sample_ensemble(model, cond, seeds, spec.out_channels, **sampler, tiling=tiling)  # type: ignore[arg-type]
        seconds[f"{mode}_wall"] = time.perf_counter() - start
        seconds[f"{mode}_cpu"] = time.process_time() - start_cpu
        fields[mode] = out.numpy()[:, :, 0]  # [dates, members, H, W], model space
        print(
            f"  {mode:<9} {seconds[f'{mode}_wall']:.1f} s wall, {seconds[f'{mode}_cpu']:.1f} s CPU",
            flush=True,
        )
    ratios = {
        "blended_cuts": seam_ratio(fields["blended"], layout, "cuts"),
        "blended_edges": seam_ratio(fields["blended"], layout, "edges"),
        "stitched_cuts": seam_ratio(fields["stitched"], layout, "cuts"),
        "stitched_edges": seam_ratio(fields["stitched"], layout, "edges"),
        "blended_mean_cuts": seam_ratio(fields["blended"].mean(axis=1), layout, "cuts"),
        "blended_mean_edges": seam_ratio(fields["blended"].mean(axis=1), layout, "edges"),
        "stitched_mean_cuts": seam_ratio(fields["stitched"].mean(axis=1), layout, "cuts"),
    }
    for k in range(args.members):
        member = fields["blended"][:, k]
        ratios[f"blended_member{k}"] = max(
            seam_ratio(member, layout, "cuts"), seam_ratio(member, layout, "edges")
        )
        ratios[f"stitched_member{k}"] = seam_ratio(fields["stitched"][:, k], layout, "cuts")
    truth = batch["target"][:, 0].numpy()
    valid = batch["mask"][:, 0].numpy() if "mask" in batch else np.ones_like(truth, dtype=bool)
    ratios["truth_cuts"] = seam_ratio(truth, layout, "cuts")
    ratios["truth_edges"] = seam_ratio(truth, layout, "edges")
    blended = max(ratios["blended_cuts"], ratios["blended_edges"])
    stitched = ratios["stitched_cuts"]

    # Why stitched scores as it does: how far it departs from blended at the cuts and away from all lines.
    scale = _neighbour_difference(fields["blended"])
    departure = np.abs(fields["stitched"] - fields["blended"])
    at_cuts, clear = _line_mask(layout, "cuts"), ~_line_mask(layout, "lines")
    diagnostics = {
        "neighbour_difference_blended": scale,
        "stitched_minus_blended": {
            "at_cuts": float(departure[..., at_cuts].mean()) / scale,
            "away_from_lines": float(departure[..., clear].mean()) / scale,
            "unit": "mean |stitched - blended| over the blended field's mean neighbour difference",
        },
        "gradient_vs_truth": _neighbour_difference(fields["blended"], valid[:, None])
        / _neighbour_difference(truth, valid),
    }
    print(
        f"stitched - blended: {diagnostics['stitched_minus_blended']['at_cuts']:.3f} at the cuts, "
        f"{diagnostics['stitched_minus_blended']['away_from_lines']:.3f} away from lines (x neighbour "
        f"difference {scale:.4f}); members' gradient / truth's {diagnostics['gradient_vs_truth']:.3f}",
        flush=True,
    )

    # Timing on a crop that fits in one pass: one pass vs blended tiling, same seeds, best of repeats.
    side = args.timing_crop
    crop = cond[torch.zeros(1, dtype=torch.long)]
    crop = crop_conditioning(crop, (0, 0), (side, side), spec.factor)
    timing_tiling = auto_tiling(
        (side, side), patch, spec.factor, overlap=args.overlap, tile_batch=args.tile_batch, border=args.border
    )
    assert timing_tiling is not None
    timing_layout = timing_tiling.layout((side, side))
    area_ratio = timing_layout.n_tiles * tile[0] * tile[1] / (side * side)
    no_margin = TileLayout.build((side, side), tile, args.overlap, spec.factor)
    area_ratio_no_margin = no_margin.n_tiles * tile[0] * tile[1] / (side * side)

    def best(tiling: Any) -> float:
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            with torch.no_grad():
                sample_ensemble(model, crop, [0], spec.out_channels, **sampler, tiling=tiling)  # type: ignore[arg-type]
            times.append(time.perf_counter() - start)
        return min(times)

    best(None)  # warm-up
    one_pass, tiled = best(None), best(timing_tiling)
    time_ratio = tiled / one_pass
    seconds["total_wall"] = time.perf_counter() - began
    seconds["total_cpu"] = time.process_time() - began_cpu
    print(
        f"seam ratio: blended {blended:.3f} (cuts {ratios['blended_cuts']:.3f}, edges "
        f"{ratios['blended_edges']:.3f}; target < 1.10), stitched {stitched:.3f}; truth "
        f"{ratios['truth_cuts']:.3f} / {ratios['truth_edges']:.3f}\n"
        f"timing {side}x{side}: one pass {one_pass:.2f} s, tiled {tiled:.2f} s ({timing_layout.n_tiles} tiles), "
        f"ratio {time_ratio:.2f} vs area ratio {area_ratio:.2f} (+15%: {1.15 * area_ratio:.2f})\n"
        f"total {seconds['total_wall']:.0f} s wall",
        flush=True,
    )
    result: dict[str, Any] = {
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python", "bench/tiling_seams.py", *sys.argv[1:]]),
        "data": "MeteoSwiss radar precip, 3 days, full grid trimmed to x8, test split 2017-01-31",
        "model": f"STRIDE EDM ({checkpoint}) trained {manifest.step} steps on random {patch[0]}x{patch[1]} patches",
        "sampler": {**sampler, "members": args.members, "dates": len(indices), "tile_batch": args.tile_batch},
        "domain": list(domain),
        "tile": list(tile),
        "overlap": args.overlap,
        "border": border,
        "n_tiles": n_tiles,
        "seam_ratio_blended": blended,
        "seam_ratio_stitched": stitched,
        "seam_ratio_target": 1.10,
        "seam_ratio_blended_pass": blended < 1.10,
        "seam_ratios": ratios,
        "diagnostics": diagnostics,
        "seconds": seconds,
        "timing": {
            "domain": [side, side],
            "border": timing_tiling.border,
            "n_tiles": timing_layout.n_tiles,
            "one_pass_s": one_pass,
            "tiled_s": tiled,
            "ratio": time_ratio,
            "area_ratio": area_ratio,
            "area_ratio_without_margin": area_ratio_no_margin,
            "target": 1.15 * area_ratio,
            "pass": time_ratio <= 1.15 * area_ratio,
        },
        "device": f"{machine.cpu_model()} ({os.cpu_count()} logical CPUs, {args.threads} torch threads; CPU only)",
        "machine_load": machine.load(),
    }
    if not args.no_record:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {RESULTS}")
    else:
        print(yaml.safe_dump({k: result[k] for k in ("seam_ratio_blended", "seam_ratio_stitched")}))


if __name__ == "__main__":
    main()
