"""The dry-dominated real case of issue 9 section 7: does the ensemble rain as often, and as hard, as the truth?

KNMI radar precipitation (1 km, 5 min) of 2010-08-26 on a 96 x 96 km crop where 85% of the pixels are exactly
zero and about 15% are wet (configs/dry/radar_knmi_dry.yaml); LR is its conservative x8 coarsening. The CLI
chain runs as subprocesses of the installed tools (.venv/bin/stride-*): stride-data build, stride-stats,
stride-train (configs/dry/train_dry.yaml, one thread), then stride-generate on the test split twice from the
same checkpoint: with the per-member RainGate draw (the default, configs/dry/generate_dry.yaml) and with the
old hard P(wet) >= 0.5 rule (`--set rain_gate.rule=threshold`, the ablation), plus the draw without spatial
correlation (`rain_gate.length=0`) and the diffusion members without any gate (`rain_gate.rule=none`). Every stage is skipped when its output exists, so a killed run resumes.

Scored here, on the valid test cells (wet: > 0.1 mm/h, the RainGate's threshold; the radar's first step above
it is 0.12):
- wet frequency, mean wet intensity and the 99th percentile of all values, members pooled against the truth;
- the fair CRPS (stride_core.metrics.crps_ensemble_fair) of each ensemble and of a climatological ensemble
  whose members are the train split's frames at the same pixel (all 61 of them; the train split spans five
  hours of one day, so there is no same-hour or same-season window to choose: the whole split is the
  climatology). The fair estimator is unbiased for the ensemble's distribution whatever its size, so 8 model
  members compare fairly with 61 climatological ones.

The bar: wet frequency within 15% of the truth's, p99 within 20%, CRPS below the climatological ensemble's.
Prints a table and writes bench/results/dry_case.json.

    python bench/dry_case.py                       # -> /tmp/precip/run
    python bench/dry_case.py --out /tmp/dry2 --threads 1
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import re
import resource
import shlex
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr

from stride_contracts import CheckpointManifest
from stride_core.artifacts import read_manifest_folder
from stride_core.metrics import crps_ensemble_fair
from stride_core.transforms import VariableTransforms
from stride_generate.sampling import load_model
from stride_model import apply_rain_gate, assemble_conditioning
from stride_model.adapter import DownscalingDataset, collate_samples

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs" / "dry"
RESULTS = ROOT / "bench" / "results" / "dry_case.json"
DEFAULT_OUT = Path("/tmp/precip/run")
WET = 0.1
WET_FREQ_TOLERANCE = 0.15
P99_TOLERANCE = 0.20
VARIANTS = {
    "hurdle": ("hurdle", 4.0),
    "hurdle_independent": ("hurdle", 0.0),
    "sample": ("sample", 4.0),
    "sample_independent": ("sample", 0.0),
    "threshold": ("threshold", 0.0),
}
"""Gate rules (rule, correlation length) applied to the one set of diffusion members, beside "gate_off"."""
P_BINS = (0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0)
"""Bins of P(wet) for the gate's reliability table."""
BOUND_LINE = re.compile(r"intensity bound precip: \[(\S+), (\S+)\]; clipped (\S+)% of values above")
FILL_LINE = re.compile(r"rain gate: (\S+) of (\d+) wet values had their intensity filled \(wet_fill (\w+)\)")


def run_stage(
    label: str, output: Path, command: list[str], env: dict[str, str], logs: Path
) -> dict[str, Any]:
    """Run command unless output exists; returns wall and CPU seconds (None when skipped) and the log file."""
    log_file = logs / f"{label}.log"
    if output.exists():
        print(f"  {label:<30} done before (kept {output})", flush=True)
        return {"command": shlex.join(command), "wall_s": None, "cpu_s": None, "log": str(log_file)}
    print(f"  {label:<30} running ... (log {log_file})", flush=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with log_file.open("w") as log:
        log.write("$ " + shlex.join(command) + "\n")
        log.flush()
        result = subprocess.run(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        tail = "".join(log_file.read_text().splitlines(keepends=True)[-15:])
        sys.exit(f"{label} failed (exit {result.returncode}); see {log_file}:\n{tail}")
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    print(f"  {label:<30} {wall:.0f} s wall, {cpu:.0f} s CPU", flush=True)
    return {"command": shlex.join(command), "wall_s": wall, "cpu_s": cpu, "log": str(log_file)}


def occurrence(values: np.ndarray) -> dict[str, float]:
    """Wet frequency, mean wet intensity and p99 of the finite values (pooled)."""
    finite = values[np.isfinite(values)]
    wet = finite[finite > WET]
    return {
        "wet_freq": float(wet.size / finite.size),
        "wet_mean": float(wet.mean()) if wet.size else 0.0,
        "p99": float(np.quantile(finite, 0.99)),
        "max": float(finite.max()),
    }


def crps(members: np.ndarray, truth: np.ndarray) -> float:
    """Mean fair CRPS over the valid cells; members [T, M, H, W], truth [T, H, W]."""
    return float(np.nanmean(crps_ensemble_fair(members, truth, member_axis=1)))


def bound_share(log_file: Path) -> dict[str, float] | None:
    """The intensity bound stride-generate logged: its cap and the share of values clipped above it."""
    match = BOUND_LINE.search(log_file.read_text()) if log_file.is_file() else None
    if match is None:
        return None
    return {"low": float(match[1]), "high": float(match[2]), "share_clipped_high": float(match[3]) / 100}


def filled_share(log_file: Path) -> dict[str, Any] | None:
    """The share of hurdle-wet values whose intensity the RainGate filled, as stride-generate logged it."""
    match = FILL_LINE.search(log_file.read_text()) if log_file.is_file() else None
    if match is None:
        return None
    return {"share": float(match[1]), "wet_values": int(match[2]), "wet_fill": match[3]}


def split_batch(
    dataset: Path, split: str, manifest: CheckpointManifest, times: np.ndarray | None = None
) -> Any:
    """The adapter's batch of a split's dates (all, or those at `times`) and the truth in physical units."""
    transforms = VariableTransforms(manifest.transforms)
    adapter = DownscalingDataset(dataset, split, transforms, manifest.features)
    if times is None:
        position = np.arange(len(adapter))
    else:
        index = [int(np.flatnonzero(adapter.times.values == time)[0]) for time in times]
        position = np.searchsorted(adapter.windows.anchors, index)
    batch = collate_samples([adapter[int(i)] for i in position])
    truth = np.where(batch["mask"].numpy(), transforms.inverse_target(batch["target"].numpy()), np.nan)
    return batch, truth[:, 0]


def gate_logits(model: Any, manifest: CheckpointManifest, batch: Any) -> torch.Tensor:
    with torch.no_grad():
        logits: torch.Tensor = model.rain_gate_logits(assemble_conditioning(batch, manifest.model_spec))
    return logits.float()


def reliability(p_wet: np.ndarray, truth: np.ndarray) -> dict[str, Any]:
    """Mean P(wet) against the wet frequency, overall and per bin of P(wet) (the gate's calibration)."""
    valid = np.isfinite(truth)
    p, wet = p_wet[valid], truth[valid] > WET
    bins = []
    for low, high in itertools.pairwise(P_BINS):
        inside = (p >= low) & ((p < high) if high < 1 else (p <= high))
        if inside.any():
            bins.append(
                {
                    "p_range": [low, high],
                    "n": int(inside.sum()),
                    "mean_p": float(p[inside].mean()),
                    "wet_freq": float(wet[inside].mean()),
                }
            )
    return {"mean_p": float(p.mean()), "wet_freq": float(wet.mean()), "bins": bins}


def platt_fit(logits: np.ndarray, wet: np.ndarray) -> tuple[float, float]:
    """a, b of P = sigmoid(a logit + b) minimising the BCE on (logits, wet): Platt scaling, by L-BFGS."""
    x = torch.from_numpy(logits.astype(np.float64))
    y = torch.from_numpy(wet.astype(np.float64))
    params = torch.tensor([1.0, 0.0], dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.LBFGS([params], max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(params[0] * x + params[1], y)
        loss.backward()
        return loss

    optimiser.step(closure)
    a, b = params.detach().tolist()
    return float(a), float(b)


def gate_calibration(model: Any, manifest: CheckpointManifest, dataset: Path) -> dict[str, Any]:
    """Reliability of the gate on the val and test dates, and what a Platt fit on val would do to test."""
    out: dict[str, Any] = {}
    logits: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for split in ("val", "test"):
        batch, truth = split_batch(dataset, split, manifest)
        z = gate_logits(model, manifest, batch).numpy()[:, 0].astype(np.float64)
        out[split] = reliability(1 / (1 + np.exp(-z)), truth)
        valid = np.isfinite(truth)
        logits[split] = (z[valid], truth[valid] > WET)
    a, b = platt_fit(*logits["val"])
    test_p = 1 / (1 + np.exp(-(a * logits["test"][0] + b)))
    out["platt_fit_on_val"] = {"a": a, "b": b, "test_mean_p": float(test_p.mean())}
    return out


def gated_ensembles(
    raw: Path, checkpoint: Path, dataset: Path
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The diffusion members of `raw` (generated with rain_gate.rule=none) under each gate rule of VARIANTS.

    The gate logits are computed from the checkpoint's best EMA weights on the same dates, with the same
    conditioning as stride-generate (the adapter), and each member keeps the seed stride-generate gave it.
    Also returns the gate's calibration (gate_calibration).
    """
    manifest = read_manifest_folder(checkpoint, CheckpointManifest)
    with xr.open_zarr(raw) as samples:
        members = samples["members"].values
        seeds = samples["seeds"].values.tolist()
        times = samples["time"].values
    model = load_model(
        checkpoint, manifest, manifest.best_ema_weights_file or manifest.ema_weights_file, torch.device("cpu")
    )
    batch, _ = split_batch(dataset, "test", manifest, times)
    logits = gate_logits(model, manifest, batch)
    threshold = manifest.model_spec.rain_gate_threshold
    tensor = torch.from_numpy(members)
    out = {"gate_off": members}
    for variant, (rule, length) in VARIANTS.items():
        gated = apply_rain_gate(
            tensor,
            logits,
            rule=rule,  # type: ignore[arg-type]
            seeds=seeds,
            length=length,
            wet_threshold=threshold,
        )
        out[variant] = gated.numpy()
    calibration = gate_calibration(model, manifest, dataset)
    calibration["generated_dates_mean_p"] = float(torch.sigmoid(logits).mean())
    return out, calibration


def relative_error(value: float, truth: float) -> float:
    return abs(value - truth) / truth


def run_arguments(description: str, default_out: Path, results: Path) -> argparse.ArgumentParser:
    """The options every CLI-chain benchmark takes: run folder, threads, JSON report, CLI folder."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--out", type=Path, default=default_out, help=f"run folder (default {default_out})")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch/BLAS threads of every stage (default 1)"
    )
    parser.add_argument("--results", type=Path, default=results, help=f"JSON report (default {results})")
    parser.add_argument("--cli-dir", type=Path, default=Path(sys.executable).parent)
    return parser


def stage_environment(out: Path, threads: int) -> tuple[Path, dict[str, str]]:
    """The stages' log folder (created) and environment: real data, no progress bars, `threads` threads."""
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.setdefault("STRIDE_DATA", str(ROOT.parent / "shared" / "data"))
    env["STRIDE_PROGRESS"] = "0"
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[name] = str(threads)
    return logs, env


def main(argv: list[str] | None = None) -> int:
    args = run_arguments(__doc__.splitlines()[0], DEFAULT_OUT, RESULTS).parse_args(argv)
    out: Path = args.out
    logs, env = stage_environment(out, args.threads)

    def tool(name: str) -> str:
        return str(args.cli_dir / f"stride-{name}")

    dataset, stats, checkpoint = out / "dataset.zarr", out / "stats.parquet", out / "checkpoint"
    print(f"dry case -> {out}", flush=True)
    stages = {
        "build": run_stage(
            "build",
            dataset,
            [tool("data"), "build", "--config", str(CONFIGS / "radar_knmi_dry.yaml"), "--out", str(dataset)],
            env,
            logs,
        ),
        "stats": run_stage(
            "stats", stats, [tool("stats"), "--dataset", str(dataset), "--out", str(stats)], env, logs
        ),
        "train": run_stage(
            "train",
            checkpoint,
            [
                tool("train"),
                "--config",
                str(CONFIGS / "train_dry.yaml"),
                "--dataset",
                str(dataset),
                "--stats",
                str(stats),
                "--out",
                str(checkpoint),
                "--set",
                f"training.threads={args.threads}",
            ],
            env,
            logs,
        ),
    }
    # The RainGate acts after sampling, on the members in physical units: one generation without it gives the
    # diffusion members, and each rule is applied to them here with the same member seeds and gate logits
    # (checked against stride-generate's own gated output on the first date below).
    generate = [
        tool("generate"),
        "--config",
        str(CONFIGS / "generate_dry.yaml"),
        "--checkpoint",
        str(checkpoint),
        "--dataset",
        str(dataset),
        "--set",
        f"threads={args.threads}",
    ]
    raw = out / "gate_off" / "samples.zarr"
    check = out / "hurdle_check" / "samples.zarr"
    stages["generate_gate_off"] = run_stage(
        "generate_gate_off", raw, [*generate, "--out", str(raw), "--set", "rain_gate.rule=none"], env, logs
    )
    stages["generate_hurdle_check"] = run_stage(
        "generate_hurdle_check", check, [*generate, "--out", str(check), "--set", "max_dates=1"], env, logs
    )
    ensembles, calibration = gated_ensembles(raw, checkpoint, dataset)
    with xr.open_zarr(check) as samples:
        cli = samples["members"].values
    consistency = float(np.abs(cli - ensembles["hurdle"][: len(cli)]).max())
    print(f"  gated here vs stride-generate on date 1: max |difference| {consistency:.3g}", flush=True)

    # Truth and climatology: the test targets, and the train split's frames as members at every pixel.
    with xr.open_zarr(dataset) as data:
        split = data["split"].values
        train = data["target"].values[split == 0][:, 0]  # [T_train, H, W]
    results: dict[str, Any] = {}
    with xr.open_zarr(raw) as samples:
        truth = samples["target"].values[:, 0]
    climatology = np.broadcast_to(train[None], (len(truth), *train.shape))
    results["truth"] = occurrence(truth)
    results["climatology"] = {
        **occurrence(train),
        "crps": crps(climatology, truth),
        "members": int(train.shape[0]),
    }
    bound = bound_share(Path(stages["generate_gate_off"]["log"]))
    for variant, values in ensembles.items():
        members = values[:, :, 0]
        valid = np.broadcast_to(np.isfinite(truth)[:, None], members.shape)
        results[variant] = {
            **occurrence(np.where(valid, members, np.nan)),
            "crps": crps(members, truth),
            "members": int(members.shape[1]),
            "share_all_members_dry": float(
                np.mean(np.asarray((members <= WET).all(axis=1))[np.isfinite(truth)])
            ),
            "intensity_bound": bound,
        }
        if variant.startswith("hurdle"):
            # The share of the draw's wet pixels where the diffusion member was dry (<= WET): lifted to the
            # wet floor by the hurdle, and the ones the "sample" rule of the same draw loses.
            drawn_wet = values > WET
            raw_dry = ensembles["gate_off"] <= WET
            results[variant]["share_drawn_wet_lifted"] = float((drawn_wet & raw_dry).sum() / drawn_wet.sum())
    assert truth is not None
    reference, clim = results["truth"], results["climatology"]
    for variant in ensembles:
        row = results[variant]
        row["wet_freq_error"] = relative_error(row["wet_freq"], reference["wet_freq"])
        row["p99_error"] = relative_error(row["p99"], reference["p99"])
        row["crps_skill_vs_climatology"] = 1 - row["crps"] / clim["crps"]
        row["bar"] = {
            "wet_freq_within_15pct": row["wet_freq_error"] <= WET_FREQ_TOLERANCE,
            "p99_within_20pct": row["p99_error"] <= P99_TOLERANCE,
            "crps_below_climatology": row["crps"] < clim["crps"],
        }
        row["bar"]["pass"] = all(row["bar"].values())

    header = f"{'ensemble':<20} {'wet freq':>9} {'wet mean':>9} {'p99':>7} {'CRPS':>8} {'skill':>7}  bar"
    print("\n" + header + "\n" + "-" * len(header))
    for name in ("truth", "climatology", *ensembles):
        row = results[name]
        skill = f"{row['crps_skill_vs_climatology']:7.3f}" if "crps_skill_vs_climatology" in row else " " * 7
        score = f"{row['crps']:8.4f}" if "crps" in row else " " * 8
        bar = ("PASS" if row["bar"]["pass"] else "FAIL") if "bar" in row else ""
        print(
            f"{name:<20} {row['wet_freq']:9.4f} {row['wet_mean']:9.3f} {row['p99']:7.3f} {score} {skill}  {bar}"
        )

    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    dirty = bool(
        subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout
    )
    report = {
        "benchmark": "dry-dominated precipitation case (issue 9 section 7)",
        "command": shlex.join(["python", "bench/dry_case.py", *(argv if argv is not None else sys.argv[1:])]),
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "device": f"{platform.processor() or platform.machine()} ({os.cpu_count()} logical CPUs, "
        f"{args.threads} torch threads; CPU only)",
        "git": {"commit": commit.strip(), "dirty": dirty},
        "wet_threshold_mm_h": WET,
        "criteria": {
            "wet_freq_within_15pct": "|wet_freq - truth| / truth <= 0.15",
            "p99_within_20pct": "|p99 - truth| / truth <= 0.20",
            "crps_below_climatology": "fair CRPS < that of the train-split climatological ensemble",
        },
        "results": results,
        "gate_calibration": calibration,
        "gated_here_vs_cli_max_abs_diff": consistency,
        "stages": stages,
    }
    args.results.parent.mkdir(parents=True, exist_ok=True)
    staging = args.results.with_suffix(".json.tmp")
    staging.write_text(json.dumps(report, indent=2) + "\n")
    staging.replace(args.results)
    for split in ("val", "test"):
        print(
            f"gate on {split}: mean P(wet) {calibration[split]['mean_p']:.4f}, "
            f"truth wet frequency {calibration[split]['wet_freq']:.4f}"
        )
    print(
        f"gate on test after a Platt fit on val: mean P(wet) {calibration['platt_fit_on_val']['test_mean_p']:.4f}"
    )
    print(f"\nwrote {args.results}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
