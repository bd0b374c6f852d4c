"""The perfect-prognosis cases of issue 9's bar: AROME hourly precipitation from ARPEGE t2m (+ coarsened tp).

Two configurations (--case; `make bench-pp-case` runs both, each into its own entry of the JSON report):
- tp (configs/meteonet_nw_tp.yaml): LR inputs AROME tp block-averaged 4 x 4 onto the LR grid (stride-data
  coarsened_dynamic; the stand-in for a reanalysis large-scale precipitation, which ../shared/data lacks) and
  ARPEGE t2m; the target is an LR input, so stride-eval also scores the qdm (xsdba) and bicubic baselines;
  trained with rain weighting on the LR precip.
- t2m (configs/meteonet_nw.yaml), described below.

In the t2m case the predictors are independent of the target: the LR input is another model's field of another variable
(ARPEGE t2m at 0.1 deg, configs/meteonet_nw.yaml's lr_source), not a coarsened copy of the target (AROME `tp`,
227 x 315 at 0.025 deg over north-west France, 2018-05-01 01:00 to 05-02 00:00; train 01-16 h, val 17-20 h,
test 21-24 h). The CLI chain runs as subprocesses of the installed tools (.venv/bin/stride-*): stride-data
build, stride-stats, stride-train (configs/pp/train_pp.yaml, one thread), stride-generate
(configs/pp/generate_pp.yaml) on the val split once per RainGate rule (hurdle, none: RAIN_GATE_RULES) and on
the test split with the rule chosen on val (choose_rule), and stride-eval on each (its climatological ensemble
of the train split, 32 members, is the reference). The regression model of the same backbone (the train
config with model.kind=regression: same inputs, RainGate and budget, MSE loss) is trained, generated on each
split and scored in the same stride-eval table (--compare regression=...). Every stage is skipped when its
output exists, so a killed run resumes.

Reported per split (val: where choices are made; test: the bar), wet = above the RainGate's and stride-eval's
wet threshold (0.1 mm h-1):
- truth against ensemble (members pooled) wet frequency, mean wet intensity and the 99th percentile;
- stride-eval's fair CRPS of the ensemble and of the climatological ensemble, and the skill 1 - CRPS / CRPS_clim;
- the same figures of every baseline (climatology, regression; qdm and bicubic in the tp case) and STRIDE's skill
  against each;
- the gate's mean P(wet) against the truth's wet frequency (its calibration), overall and per P(wet) bin.

The bar: wet frequency within 15% of the truth's, p99 within 20%, CRPS below the climatology's.
Prints a table and writes bench/results/pp_case.json (with the machine's load, wall and CPU time).

    python bench/pp_case.py                     # -> /tmp/precip/pp_case
    python bench/pp_case.py --case tp           # -> /tmp/precip/pp_case_tp
    python bench/pp_case.py --out /tmp/pp2 --threads 1
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import xarray as xr

# bench/ is not a package: run as a script, its own folder is on sys.path and the sibling imports by name.
from dry_case import (
    P99_TOLERANCE,
    WET,
    WET_FREQ_TOLERANCE,
    bound_share,
    filled_share,
    gate_logits,
    occurrence,
    relative_error,
    reliability,
    run_arguments,
    run_stage,
    split_batch,
    stage_environment,
)

from stride_contracts import CheckpointManifest
from stride_core.artifacts import read_manifest_folder
from stride_generate.sampling import load_model

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs" / "pp"
# The two perfect-prognosis configurations (--case): the data config, the stride-eval baselines and a title.
# t2m: ARPEGE t2m only (an independent predictor, no precipitation); tp: AROME tp coarsened 4 x 4 onto the
# LR grid (the stand-in for a reanalysis large-scale precipitation, see the config) + ARPEGE t2m, where the
# target is an LR input and the interpolation + quantile-mapping baseline (qdm, xsdba) applies.
# tp also trains with data.rain_weighting on its LR precip (patches drawn towards wet LR boxes, as the dry case
# configs/dry/ does), fixed before any tp score was seen; t2m cannot (rain weighting reads an LR input).
CASES = {
    "t2m": (ROOT / "configs" / "meteonet_nw.yaml", "[climatology]", "AROME tp <- ARPEGE t2m", []),
    "tp": (
        ROOT / "configs" / "meteonet_nw_tp.yaml",
        "[climatology,qdm,bicubic]",
        "AROME tp <- AROME tp coarsened 4x (reanalysis-precipitation stand-in) + ARPEGE t2m",
        ["data.rain_weighting={variable: precip, threshold: 0.1}"],
    ),
}
# The RainGate rules tried on val; test runs the one chosen there (choose_rule). The hurdle (first: the default,
# kept when no rule meets the bar) draws occurrence from the gate's P(wet); none keeps the diffusion members as
# they are, the better ensemble where they already rain in the right places (the tp case: the target's coarse
# field is an input).
RAIN_GATE_RULES = ("hurdle", "none")
RESULTS = ROOT / "bench" / "results" / "pp_case.json"
DEFAULT_OUT = Path("/tmp/precip/pp_case")
SPLITS = ("val", "test")
EVAL_FAMILIES = "[probabilistic,distributions]"


def load() -> list[float]:
    """The 1, 5 and 15 minute load averages (the machine is shared: every figure is read beside them)."""
    return [round(value, 2) for value in os.getloadavg()]


def eval_crps(metrics: Path) -> dict[str, float]:
    """Headline fair CRPS of every model stride-eval scored (rows without a date or other qualifier)."""
    table = pd.read_parquet(metrics)
    qualifiers = [
        c for c in ("date", "threshold", "scale", "quantile", "lag", "bin", "wavenumber") if c in table
    ]
    rows = table[(table["metric"] == "crps") & table[qualifiers].isna().all(axis=1)]
    return {str(model): float(value) for model, value in zip(rows["model"], rows["value"], strict=True)}


def model_rows(metrics: Path) -> dict[str, dict[str, float]]:
    """stride-eval's headline CRPS, wet frequency, p99 and mean wet intensity of every model and baseline
    (and the truth's occurrence), so the climatology and qdm baselines are read as the model is."""
    table = pd.read_parquet(metrics)
    qualifiers = [
        c for c in ("date", "threshold", "scale", "quantile", "lag", "bin", "wavenumber") if c in table
    ]
    names = ("crps", "wet_freq", "p99", "wet_mean_intensity")
    rows = table[table["metric"].isin(names) & table[qualifiers].isna().all(axis=1)]
    out: dict[str, dict[str, float]] = {}
    for model, metric, value in zip(rows["model"], rows["metric"], rows["value"], strict=True):
        out.setdefault(str(model), {})[str(metric)] = float(value)
    return out


def gate_reliability(checkpoint: Path, dataset: Path) -> dict[str, Any]:
    """The gate's mean P(wet) against the truth's wet frequency on every split (best EMA weights)."""
    manifest = read_manifest_folder(checkpoint, CheckpointManifest)
    model = load_model(
        checkpoint, manifest, manifest.best_ema_weights_file or manifest.ema_weights_file, torch.device("cpu")
    )
    out = {}
    for split in ("train", *SPLITS):
        batch, truth = split_batch(dataset, split, manifest)
        p_wet = torch.sigmoid(gate_logits(model, manifest, batch)).numpy()[:, 0]
        out[split] = reliability(p_wet, truth)
        out[split]["per_date_mean_p"] = [float(v) for v in p_wet.mean(axis=(1, 2))]
        out[split]["per_date_wet_freq"] = [float(v) for v in np.mean(truth > WET, axis=(1, 2))]
    return out


def score(samples: Path, metrics: Path, generate_log: Path) -> dict[str, Any]:
    """Truth and ensemble occurrence statistics, the two CRPS and the bar, for one split."""
    with xr.open_zarr(samples) as store:
        members, truth = store["members"].values[:, :, 0], store["target"].values[:, 0]
    valid = np.broadcast_to(np.isfinite(truth)[:, None], members.shape)
    reference = occurrence(truth)
    ensemble: dict[str, Any] = dict(occurrence(np.where(valid, members, np.nan)))
    # Wet member values at the float32 just above the threshold: drawn wet by the gate where the diffusion
    # member was dry and given the floor (wet_fill floor, or a member with no wet value of its own to hand out).
    floor = np.nextafter(np.float32(WET), np.float32(np.inf))
    wet_values = members[valid & (members > WET)]
    ensemble["share_wet_floor"] = float(np.mean(wet_values == floor)) if wet_values.size else 0.0
    # Those drawn wet where the diffusion was dry, whatever intensity they got (stride-generate's log line).
    ensemble["rain_gate_fill"] = filled_share(generate_log)
    crps = eval_crps(metrics)
    model, clim = crps["stride"], crps["climatology"]
    ensemble.update(
        crps=model,
        members=int(members.shape[1]),
        dates=int(members.shape[0]),
        wet_freq_error=relative_error(ensemble["wet_freq"], reference["wet_freq"]),
        p99_error=relative_error(ensemble["p99"], reference["p99"]),
        crps_skill_vs_climatology=1 - model / clim,
        intensity_bound=bound_share(generate_log),
    )
    baselines = model_rows(metrics)
    for name, row in baselines.items():
        if "crps" in row and name != "stride":
            row["stride_crps_skill_vs_this"] = 1 - model / row["crps"]
    bar = {
        "wet_freq_within_15pct": ensemble["wet_freq_error"] <= WET_FREQ_TOLERANCE,
        "p99_within_20pct": ensemble["p99_error"] <= P99_TOLERANCE,
        "crps_below_climatology": model < clim,
    }
    bar["pass"] = all(bar.values())
    return {
        "truth": reference,
        "ensemble": ensemble,
        "climatology_crps": clim,
        "eval_models": baselines,
        "bar": bar,
    }


def choose_rule(candidates: dict[str, dict[str, Any]]) -> str:
    """The val choice of RainGate rule: the lowest fair CRPS among the rules that meet the bar on val; the
    default (the first rule, hurdle) when none does. A dry ensemble can score a lower CRPS than one that rains
    in the wrong places, so CRPS alone does not pick a rule whose occurrence fails."""
    passing = [rule for rule, row in candidates.items() if row["bar"]["pass"]]
    return (
        min(passing, key=lambda rule: candidates[rule]["ensemble"]["crps"])
        if passing
        else next(iter(candidates))
    )


def recorded_cases(results: Path) -> dict[str, Any]:
    """The configurations already in the JSON report (each from its own run; a run replaces only its own).

    A report from before --case (one configuration, no "cases" key) is the t2m configuration's."""
    if not results.is_file():
        return {}
    recorded = json.loads(results.read_text())
    return dict(recorded["cases"]) if "cases" in recorded else {"t2m": recorded}


def print_table(results: dict[str, Any]) -> None:
    header = (
        f"{'split':<10} {'':<11} {'wet freq':>9} {'wet mean':>9} {'p99':>7} {'CRPS':>8} {'clim CRPS':>9} "
        f"{'skill':>7}  bar (wet / p99 / CRPS)"
    )
    print("\n" + header + "\n" + "-" * len(header))
    for split, row in results.items():
        truth, ens, bar = row["truth"], row["ensemble"], row["bar"]
        print(
            f"{split:<10} {'truth':<11} {truth['wet_freq']:9.4f} {truth['wet_mean']:9.3f} {truth['p99']:7.3f}"
        )
        marks = " / ".join(
            "ok" if bar[k] else "FAIL"
            for k in ("wet_freq_within_15pct", "p99_within_20pct", "crps_below_climatology")
        )
        print(
            f"{split:<10} {'ensemble':<11} {ens['wet_freq']:9.4f} {ens['wet_mean']:9.3f} {ens['p99']:7.3f} "
            f"{ens['crps']:8.4f} {row['climatology_crps']:9.4f} {ens['crps_skill_vs_climatology']:7.3f}  "
            f"{'PASS' if bar['pass'] else 'FAIL'} ({marks}; wet {ens['wet_freq'] / truth['wet_freq'] - 1:+.0%}, "
            f"p99 {ens['p99'] / truth['p99'] - 1:+.0%})"
        )
        for name, base in row["eval_models"].items():
            if name in ("stride", "truth") or "crps" not in base:
                continue
            print(
                f"{split:<10} {name:<11} {base.get('wet_freq', float('nan')):9.4f} "
                f"{base.get('wet_mean_intensity', float('nan')):9.3f} {base.get('p99', float('nan')):7.3f} "
                f"{base['crps']:8.4f} {'':>9} {'':>7}  STRIDE skill vs {name}: "
                f"{base['stride_crps_skill_vs_this']:+.3f}"
            )


def main(argv: list[str] | None = None) -> int:
    parser = run_arguments(__doc__.splitlines()[0], DEFAULT_OUT, RESULTS)
    parser.add_argument(
        "--train-set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra stride-train --set override (repeatable), e.g. training.steps=600",
    )
    parser.add_argument(
        "--case",
        choices=sorted(CASES),
        default="t2m",
        help="configuration: t2m (ARPEGE t2m only) or tp (coarsened tp + ARPEGE t2m); default t2m",
    )
    args = parser.parse_args(argv)
    data_config, baselines, title, case_train = CASES[args.case]
    # Each configuration runs in its own folder (t2m keeps the folder of the runs before --case existed).
    out: Path = (
        args.out if args.out != DEFAULT_OUT or args.case == "t2m" else DEFAULT_OUT.with_name("pp_case_tp")
    )
    logs, env = stage_environment(out, args.threads)
    env.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{out / 'mlflow.db'}")

    def tool(name: str) -> str:
        return str(args.cli_dir / f"stride-{name}")

    load_start, wall_start = load(), time.perf_counter()
    dataset, stats, checkpoint = out / "dataset.zarr", out / "stats.parquet", out / "checkpoint"
    print(f"perfect-prognosis case -> {out} (load {load_start})", flush=True)
    train = [tool("train"), "--config", str(CONFIGS / "train_pp.yaml"), "--dataset", str(dataset)]
    train += ["--stats", str(stats), "--out", str(checkpoint), "--set", f"training.threads={args.threads}"]
    for override in [*case_train, *args.train_set]:
        train += ["--set", override]
    # Issue 9 §8: the regression model of the same backbone, inputs, RainGate and budget (MSE instead of the
    # EDM loss) in the same table; stride-generate predicts its one member, gated by P(wet) >= 0.5.
    regression = out / "regression" / "checkpoint"
    train_regression = [*train, "--set", "model.kind=regression"]
    train_regression[train_regression.index(str(checkpoint))] = str(regression)
    stages = {
        "build": run_stage(
            "build",
            dataset,
            [tool("data"), "build", "--config", str(data_config), "--out", str(dataset)],
            env,
            logs,
        ),
        "stats": run_stage(
            "stats", stats, [tool("stats"), "--dataset", str(dataset), "--out", str(stats)], env, logs
        ),
        "train": run_stage("train", checkpoint, train, env, logs),
        "train_regression": run_stage("train_regression", regression, train_regression, env, logs),
    }

    def generate(name: str, model: Path, split: str, samples: Path, *overrides: str) -> Path:
        """stride-generate of one split with configs/pp/generate_pp.yaml; returns the stage's log."""
        command = [tool("generate"), "--config", str(CONFIGS / "generate_pp.yaml")]
        command += ["--checkpoint", str(model), "--dataset", str(dataset), "--out", str(samples)]
        command += ["--set", f"split={split}", "--set", f"threads={args.threads}"]
        for override in overrides:
            command += ["--set", override]
        stages[name] = run_stage(name, samples, command, env, logs)
        return Path(stages[name]["log"])

    def regression_samples(split: str) -> Path:
        samples = out / "regression" / split / "samples.zarr"
        generate(f"generate_{split}_regression", regression, split, samples)
        return samples

    def generate_and_score(split: str, rule: str, regression_split: Path) -> dict[str, Any]:
        folder = out / split / rule
        samples, metrics = folder / "samples.zarr", folder / "metrics.parquet"
        log = generate(f"generate_{split}_{rule}", checkpoint, split, samples, f"rain_gate.rule={rule}")
        evaluate = [tool("eval"), "--samples", str(samples), "--out", str(metrics)]
        evaluate += ["--set", f"families={EVAL_FAMILIES}", "--set", f"wet_threshold={WET}"]
        evaluate += ["--set", f"baselines={baselines}", "--compare", f"regression={regression_split}"]
        stages[f"eval_{split}_{rule}"] = run_stage(f"eval_{split}_{rule}", metrics, evaluate, env, logs)
        return {"rain_gate_rule": rule, **score(samples, metrics, log)}

    # The RainGate rule is a choice, so it is made on val; test is scored once, with the rule chosen. The
    # regression members of a split are generated once: every rule's table compares against the same ones.
    regression_val = regression_samples("val")
    candidates = {rule: generate_and_score("val", rule, regression_val) for rule in RAIN_GATE_RULES}
    chosen = choose_rule(candidates)
    results: dict[str, Any] = {
        "val": candidates[chosen],
        "test": generate_and_score("test", chosen, regression_samples("test")),
    }
    calibration = gate_reliability(checkpoint, dataset)
    print("\nval candidates (RainGate rule):")
    print_table({f"val/{rule}": row for rule, row in candidates.items()})
    print(f"\nchosen on val: rain_gate.rule={chosen}")
    print_table(results)
    for split, row in calibration.items():
        print(
            f"gate on {split:<5}: mean P(wet) {row['mean_p']:.4f}, truth wet frequency {row['wet_freq']:.4f}"
        )

    skipped = [name for name, s in stages.items() if s["cpu_s"] is None]
    # A stage skipped because its output exists keeps the times of the run that made it, as recorded.
    made = recorded_cases(args.results).get(args.case, {})
    for name in skipped:
        earlier = made.get("stages", {}).get(name, {})
        if earlier.get("cpu_s") is not None and earlier.get("command") == stages[name]["command"]:
            stages[name] = {**earlier, "measured_in_run_of": made.get("created_utc")}
    measured = [s for s in stages.values() if s["cpu_s"] is not None]
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    dirty = bool(
        subprocess.run(
            ["git", "status", "--porcelain", "--", "bench/pp_case.py", "configs/pp", str(data_config)],
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout
    )
    report = {
        "benchmark": f"perfect-prognosis precipitation case (issue 9 bar): {title}",
        "case": args.case,
        "command": shlex.join(["python", "bench/pp_case.py", *(argv if argv is not None else sys.argv[1:])]),
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "device": f"{platform.processor() or platform.machine()} ({os.cpu_count()} logical CPUs, "
        f"{args.threads} torch threads; CPU only)",
        "git": {"commit": commit.strip(), "pp_files_dirty": dirty},
        "load_average_1_5_15": {"start": load_start, "end": load()},
        "wall_s_total": time.perf_counter() - wall_start,
        "cpu_s_stages_run": sum(s["cpu_s"] for s in measured),  # with those measured earlier (skipped)
        "stages_skipped": skipped,
        "wet_threshold_mm_h": WET,
        "criteria": {
            "wet_freq_within_15pct": "|wet_freq - truth| / truth <= 0.15",
            "p99_within_20pct": "|p99 - truth| / truth <= 0.20",
            "crps_below_climatology": "stride-eval fair CRPS < its climatological ensemble's (train split)",
        },
        "rain_gate_choice": {
            "rule": "lowest val fair CRPS among the rules meeting the bar on val; hurdle when none does",
            "chosen": chosen,
            "val_candidates": {
                rule: {"bar": row["bar"], **{k: row["ensemble"][k] for k in ("crps", "wet_freq", "p99")}}
                for rule, row in candidates.items()
            },
        },
        "results": results,
        "gate_calibration": calibration,
        "stages": stages,
    }
    args.results.parent.mkdir(parents=True, exist_ok=True)
    staging = args.results.with_suffix(".json.tmp")
    staging.write_text(
        json.dumps({"cases": {**recorded_cases(args.results), args.case: report}}, indent=2) + "\n"
    )
    staging.replace(args.results)
    print(
        f"\nwrote {args.results} ({report['wall_s_total']:.0f} s wall, {report['cpu_s_stages_run']:.0f} s CPU)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
