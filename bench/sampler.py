"""Solvers at equal cost: members/s on the CPU and fair CRPS / spread-skill on real ERA5 test dates by NFE.

A small STRIDE model is trained at smoke budget on ERA5-UK t2m x4 (the demo's data and domain, 32x48 HR) by
the CLIs (stride-data build, stride-stats, stride-train with configs/quality/train_era5_uk.yaml and
--train-steps), each stage skipped when its output exists. Then, in this process, for each solver of
stride_model.sampling and each budget of network evaluations (NFE 8, 12, 18, 32, 64; a solver takes the most
steps whose NFE fits, see `steps_for_nfe`), the same test dates are sampled with the same member seeds
(common random numbers: solver differences are not noise differences) and scored in physical units with
stride_core.metrics (fair CRPS, spread-skill ratio with the finite-ensemble correction) over all test
points. members_per_s is timed separately per solver at 18 NFE on the demo domain, after a warm-up call.

best_solver / best_nfe: the reference is the lowest 64-NFE CRPS of all solvers; for each solver, the fewest
NFE whose CRPS is within 2% of it; the best solver is the one needing the fewest (ties: lower CRPS).
Also recorded: Heun's members/s with the network in bf16 against fp32 (autocast), on this CPU.

    python bench/sampler.py                                # -> bench/results/sampler.json
    python bench/sampler.py --train-steps 100 --date-stride 12 --members 4 --no-record   # a quick try
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import machine
import numpy as np
import torch

from stride_contracts import CheckpointManifest
from stride_core.artifacts import read_manifest_folder
from stride_core.metrics.probabilistic import crps_ensemble_fair, spread_skill_ratio
from stride_core.transforms import VariableTransforms
from stride_model import assemble_conditioning, build_model, load_into
from stride_model.adapter import DownscalingDataset, collate_samples
from stride_model.members import physical_members
from stride_model.sampling import SOLVERS, nfe, steps_for_nfe

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "sampler.json"
NFES = (8, 12, 18, 32, 64)
WITHIN = 0.02


def run_stage(label: str, output: Path, command: list[str], env: dict[str, str]) -> None:
    if output.exists():
        print(f"  {label:<16} done before ({output})", flush=True)
        return
    print(f"  {label:<16} running ...", flush=True)
    log = output.with_name(output.name + ".log")
    with log.open("w") as handle:
        result = subprocess.run(command, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        sys.exit(f"{label} failed (exit {result.returncode}); see {log}")


def prepare(args: argparse.Namespace) -> tuple[Path, Path]:
    """dataset.zarr and checkpoint/ under --work, built by the CLIs unless present."""
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, STRIDE_PROGRESS="0", OMP_NUM_THREADS=str(args.threads))
    env.setdefault("STRIDE_DATA", str(ROOT.parent / "shared" / "data"))
    bin_dir = Path(sys.executable).parent
    dataset, stats, checkpoint = work / "dataset.zarr", work / "stats.parquet", work / "checkpoint"
    run_stage(
        "stride-data",
        dataset,
        [
            str(bin_dir / "stride-data"),
            "build",
            "--config",
            str(ROOT / "configs" / "era5_uk.yaml"),
            "--out",
            str(dataset),
        ],
        env,
    )
    run_stage(
        "stride-stats",
        stats,
        [str(bin_dir / "stride-stats"), "--dataset", str(dataset), "--out", str(stats)],
        env,
    )
    run_stage(
        "stride-train",
        checkpoint,
        [
            str(bin_dir / "stride-train"),
            "--config", str(ROOT / "configs" / "quality" / "train_era5_uk.yaml"),
            "--dataset", str(dataset), "--stats", str(stats), "--out", str(checkpoint),
            "--set", f"training.steps={args.train_steps}", "--set", f"training.threads={args.threads}",
            "--set", "inline_eval.every=100000",
        ],
        env,
    )  # fmt: skip
    return dataset, checkpoint


def score(members: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """Fair CRPS (mean over valid points) and spread-skill of members [D, M, C, H, W] against truth [D, C, H, W]."""
    crps = crps_ensemble_fair(members, truth, member_axis=1)
    return float(np.nanmean(crps)), float(spread_skill_ratio(members, truth, member_axis=1))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--work", type=Path, default=Path("/tmp/stride-bench-sampler"))
    parser.add_argument(
        "--dataset", type=Path, help="use this dataset.zarr (with --checkpoint) instead of training"
    )
    parser.add_argument("--checkpoint", type=Path)
    parser.add_argument("--train-steps", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--members", type=int, default=8)
    parser.add_argument("--date-stride", type=int, default=6, help="every n-th test date (hourly data)")
    parser.add_argument("--timing-members", type=int, default=32)
    parser.add_argument("--no-record", action="store_true", help="print only, do not write the JSON")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    if args.checkpoint is not None and args.dataset is not None:
        dataset, checkpoint = args.dataset, args.checkpoint
    else:
        dataset, checkpoint = prepare(args)
    manifest = read_manifest_folder(checkpoint, CheckpointManifest)
    spec = manifest.model_spec
    transforms = VariableTransforms(manifest.transforms)
    model = build_model(spec)
    load_into(model, checkpoint / manifest.ema_weights_file)
    model.eval()

    adapter = DownscalingDataset(dataset, "test", transforms, manifest.features)
    indices = list(range(0, len(adapter), args.date_stride))
    batch = collate_samples([adapter[i] for i in indices])
    cond = assemble_conditioning(batch, spec)
    truth = transforms.inverse_target(batch["target"].numpy())
    truth = np.where(batch["mask"].numpy(), truth, np.nan)
    seeds = [[1000 * i + k for k in range(args.members)] for i in indices]
    print(
        f"{len(indices)} test dates x {args.members} members on {tuple(cond.image.shape[-2:])} HR, "
        f"{args.threads} thread(s), checkpoint step {manifest.step}",
        flush=True,
    )

    results: dict[str, Any] = {}
    for name in SOLVERS:
        entry: dict[str, Any] = {"crps": {}, "spread_skill": {}, "steps": {}, "nfe_used": {}}
        for budget in NFES:
            steps = steps_for_nfe(name, budget)
            members = physical_members(model, spec, cond, seeds, transforms, solver=name, num_steps=steps)
            crps, ssr = score(members, truth)
            entry["crps"][str(budget)], entry["spread_skill"][str(budget)] = crps, ssr
            entry["steps"][str(budget)], entry["nfe_used"][str(budget)] = steps, nfe(name, steps)
            print(
                f"  {name:<9} NFE {budget:>2} ({steps:>2} steps): CRPS {crps:.4f}  spread-skill {ssr:.3f}",
                flush=True,
            )
        results[name] = entry

    timing_cond = cond[torch.zeros(1, dtype=torch.long)]
    timing_seeds = [list(range(args.timing_members))]

    def members_per_s(name: str, precision: str) -> float:
        steps = steps_for_nfe(name, 18)
        physical_members(
            model, spec, timing_cond, [[0, 1]], transforms, solver=name, num_steps=steps, precision=precision
        )
        start = time.perf_counter()
        physical_members(
            model,
            spec,
            timing_cond,
            timing_seeds,
            transforms,
            solver=name,
            num_steps=steps,
            precision=precision,
        )
        return args.timing_members / (time.perf_counter() - start)

    for name in SOLVERS:
        results[name]["members_per_s"] = members_per_s(name, "fp32")
    precision = {"heun_fp32": members_per_s("heun", "fp32"), "heun_bf16": members_per_s("heun", "bf16")}

    reference = min(results[name]["crps"]["64"] for name in SOLVERS)
    reach = {}
    for name in SOLVERS:
        good = [b for b in NFES if results[name]["crps"][str(b)] <= (1 + WITHIN) * reference]
        reach[name] = min(good) if good else None
        results[name]["nfe_within_2pct"] = reach[name]
    candidates = [(b, results[n]["crps"][str(b)], n) for n, b in reach.items() if b is not None]
    best_nfe, _, best_solver = min(candidates)

    print(
        f"\n{'solver':<10}{'members/s':>10}"
        + "".join(f"{'CRPS@' + str(b):>11}" for b in NFES)
        + "   SSR@18  NFE<=2%"
    )
    for name in SOLVERS:
        row = results[name]
        print(
            f"{name:<10}{row['members_per_s']:>10.2f}"
            + "".join(f"{row['crps'][str(b)]:>11.4f}" for b in NFES)
            + f"   {row['spread_skill']['18']:.3f}   {row['nfe_within_2pct']}"
        )
    print(f"reference CRPS (best at 64 NFE) {reference:.4f}; best: {best_solver} at {best_nfe} NFE")
    print(f"heun members/s at 18 NFE: fp32 {precision['heun_fp32']:.2f}, bf16 {precision['heun_bf16']:.2f}")

    record = {
        "benchmark": "sampler solvers by NFE (issue 10)",
        "command": " ".join(["python", *sys.argv]),
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "device": f"{machine.cpu_model()} ({os.cpu_count()} logical CPUs, {args.threads} torch threads; CPU only)",
        "git_commit": subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip(),
        "data": {
            "dataset": "ERA5-UK t2m x4 (configs/era5_uk.yaml), test split",
            "domain_hr": list(cond.image.shape[-2:]),
            "dates": len(indices),
            "members": args.members,
            "checkpoint_step": manifest.step,
            "units": "K",
        },
        "schedule": "karras (sigma 0.002..80, rho 7), S_churn 0",
        "nfe_budgets": list(NFES),
        **{name: results[name] for name in SOLVERS},
        "reference_crps_64": reference,
        "best_solver": best_solver,
        "best_nfe": best_nfe,
        "precision_cpu": {**precision, "cpu_flags_bf16": _cpu_has_bf16()},
        "machine_load": machine.load(),
    }
    if not args.no_record:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        tmp = RESULTS.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(record, indent=2) + "\n")
        tmp.replace(RESULTS)
        print(f"wrote {RESULTS}")


def _cpu_has_bf16() -> bool:
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    return any(flag in flags.split() for flag in ("avx512_bf16", "amx_bf16"))


if __name__ == "__main__":
    main()
