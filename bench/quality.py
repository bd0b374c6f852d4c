"""Quality bar of issue 4: STRIDE against the regression model and bicubic, on ERA5-UK and on radar.

For each dataset the whole CLI chain runs as subprocesses of the installed tools (.venv/bin/stride-*):
stride-data build, stride-stats, then for each model (STRIDE's EDM ensemble, the deterministic regression)
stride-train, stride-generate and stride-eval. Bicubic is read from the STRIDE run's metrics table (stride-eval
scores it beside the model). Every stage is skipped when its output exists and was made by the same command,
so an interrupted run resumes; a changed command over an existing output is an error (use another --out).
Prints a table and writes bench/results/quality.json with the device, git commit, training wall times and the
pass/fail of each target:

    STRIDE CRPS < 0.8 x bicubic MAE;  STRIDE CRPS < regression MAE;  0.7 <= STRIDE spread-skill <= 1.3

The number of Heun steps of STRIDE's sampler is chosen on the validation split, never on the test split: an
ensemble is generated on every `select_date_stride`-th val date for each of --select-steps (fewer steps leave
more of the sampler's noise in the members: more spread), and `choose_steps` takes the candidate whose
spread-skill over the later half of those val dates is nearest 1 (SELECTION_RULE). In both datasets val
follows the training period and the test period follows val, and on val the ensembles lose spread relative to
their error with distance from the training dates (ERA5-UK, the ERA5-only rerun of 2026-12-03 01:42 UTC at
d5bdc84, 11 steps: 1.064 on the first val day, 0.870 on the fourth; first half 0.979, later half 0.823), so
the later val dates are the val evidence nearest the test dates. This rule replaced "nearest 1 over all
selection dates" after the runs of 2026-12-03 (a316577, then that rerun) had failed the spread-skill target
on test with it (0.633, 0.621 at 11 steps); bench/README.md says what was seen when.

The four model chains (STRIDE and regression on each dataset) are independent once the datasets are built, so
--jobs of them run side by side, each process with cpu_count / jobs torch threads: these small networks use
one core each better than two cores together. The report records the run's wall time (`wall_s`) and the CPU
time of every stage.

    python bench/quality.py                                  # both datasets -> /tmp/stride-quality
    python bench/quality.py --datasets radar --threads 1
    python bench/quality.py --datasets era5_uk --label drop01 --set-train model.dropout=0.1   # an experiment
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import time
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stride_core.metrics import spread_skill_ratio
from stride_eval.stores import open_samples

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs" / "quality"
RESULTS = ROOT / "bench" / "results" / "quality.json"
DEFAULT_OUT = Path("/tmp/stride-quality")
STAGE_RECORD = ".stage.json"
"""Suffix of the file beside each stage's output that holds its command and wall time."""

CRPS_VS_BICUBIC = 0.8
SPREAD_SKILL_RANGE = (0.7, 1.3)
SELECTION_RULE = (
    "the candidate whose spread-skill over the later half (in time) of the val selection dates, those nearest "
    "the test period, is nearest 1; val CRPS is recorded beside it"
)
KEYS = ("crps", "mae", "rmse", "mae_pmm", "spread_skill", "spectrum_error")
"""Per-model keys of the JSON, from these metrics of the long table (None where a metric does not apply)."""
METRIC_OF_KEY = {
    "crps": "crps",
    "mae": "mae_mean",
    "rmse": "rmse_mean",
    "mae_pmm": "mae_pmm",
    "spread_skill": "spread_skill",
    "spectrum_error": "spectrum_error",
}
OCCURRENCE_KEYS = ("wet_freq", "wet_freq_error", "p99", "p99_error")
"""Extra keys where the variable is positive-definite (stride-eval's occurrence family)."""


@dataclass(frozen=True)
class Dataset:
    """One dataset of the bar: its data config and the train/generate configs of each model."""

    name: str
    data_config: Path
    train_configs: dict[str, Path]
    generate_config: Path
    variable: str
    select_date_stride: int
    """Every n-th val date samples the step-count candidates (the val split's dates are hours or minutes apart,
    so neighbours add little; the selection costs a fraction of the test ensemble)."""


DATASETS = {
    "era5_uk": Dataset(
        name="era5_uk",
        data_config=ROOT / "configs" / "era5_uk.yaml",
        train_configs={
            "stride": CONFIGS / "train_era5_uk.yaml",
            "regression": CONFIGS / "regression_era5_uk.yaml",
        },
        generate_config=CONFIGS / "generate_era5_uk.yaml",
        variable="t2m",
        select_date_stride=6,  # 16 of the 96 hourly val dates, 00/06/12/18 UTC
    ),
    "radar": Dataset(
        name="radar",
        data_config=CONFIGS / "radar_knmi.yaml",
        train_configs={
            "stride": CONFIGS / "train_radar.yaml",
            "regression": CONFIGS / "regression_radar.yaml",
        },
        generate_config=CONFIGS / "generate_radar.yaml",
        variable="precip",
        select_date_stride=3,  # 4 of the 11 val frames, 15 minutes apart
    ),
}
MODELS = ("stride", "regression")


class StageError(RuntimeError):
    pass


class Chain:
    """Runs the CLI stages of one dataset under out/<dataset>/, skipping finished ones."""

    def __init__(self, args: argparse.Namespace, dataset: Dataset) -> None:
        self.args, self.dataset = args, dataset
        self.folder = args.out / dataset.name
        self.logs = self.folder / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env.setdefault("STRIDE_DATA", str(ROOT.parent / "shared" / "data"))
        env["STRIDE_PROGRESS"] = "0"
        if args.threads:
            for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
                env[name] = str(args.threads)
        self.env = env

    def tool(self, name: str) -> str:
        return str(self.args.cli_dir / f"stride-{name}")

    def stage(self, label: str, output: Path, command: list[str]) -> dict[str, Any]:
        """Run `command` unless `output` exists from the same command; returns its record (with wall_s)."""
        record_file = output.with_name(output.name + STAGE_RECORD)
        # The record stores the command relative to the chain folder, so a moved --out still resumes.
        shown = [part.replace(str(self.folder), "$OUT") for part in command[1:]]
        if output.exists():
            if record_file.is_file():
                record = json.loads(record_file.read_text())
                if record["command"] != shown:
                    raise StageError(
                        f"{output}: exists from another command ({' '.join(record['command'])}); delete it or "
                        f"choose another --out"
                    )
                print(
                    f"  {self.dataset.name}: {label:<28} done before ({record['wall_s']:.0f} s)", flush=True
                )
                return dict(record)
            print(f"  {self.dataset.name}: {label:<28} exists (no record; kept)", flush=True)
            return {"command": shown, "wall_s": None}
        # Named after the output's path under the chain folder: unique per model, label and candidate.
        log_file = self.logs / ("-".join(output.relative_to(self.folder).parts) + ".log")
        print(f"  {self.dataset.name}: {label:<28} running ... (log {log_file})", flush=True)
        start = time.perf_counter()
        with log_file.open("w") as log:
            log.write("$ " + shlex.join(command) + "\n")
            log.flush()
            process = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
            # wait4 gives this child's own CPU time (with its reaped children, e.g. loader workers);
            # getrusage(RUSAGE_CHILDREN) would mix in the stages running beside it.
            _, status, used = os.wait4(process.pid, 0)
            process.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - start
        # The CPU budget of the bar: user + system time of the stage's process tree (wall time varies with
        # whatever else the machine runs).
        cpu = used.ru_utime + used.ru_stime
        if process.returncode != 0:
            tail = "".join(log_file.read_text().splitlines(keepends=True)[-15:])
            raise StageError(
                f"{self.dataset.name}: {label} failed (exit {process.returncode}) after {wall:.0f} s; see "
                f"{log_file}:\n{tail}"
            )
        record = {
            "command": shown,
            "wall_s": wall,
            "cpu_s": cpu,
            "finished_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        record_file.write_text(json.dumps(record, indent=2) + "\n")
        print(f"  {self.dataset.name}: {label:<28} {wall:.0f} s ({cpu:.0f} CPU-s)", flush=True)
        return record

    def data(self) -> tuple[Path, Path]:
        dataset = self.folder / "dataset.zarr"
        stats = self.folder / "stats.parquet"
        self.stage(
            "stride-data build",
            dataset,
            [self.tool("data"), "build", "--config", str(self.dataset.data_config), "--out", str(dataset)],
        )
        self.stage(
            "stride-stats", stats, [self.tool("stats"), "--dataset", str(dataset), "--out", str(stats)]
        )
        return dataset, stats

    def generate_and_eval(
        self, label: str, checkpoint: Path, dataset: Path, folder: Path, extra: list[str]
    ) -> tuple[dict[str, Any], Path]:
        """stride-generate then stride-eval into folder/; returns the generate record and the metrics path."""
        samples = folder / "samples.zarr"
        threads = ["--set", f"threads={self.args.threads}"] if self.args.threads else []
        generate = self.stage(
            f"stride-generate ({label})",
            samples,
            [
                self.tool("generate"),
                "--config",
                str(self.dataset.generate_config),
                "--checkpoint",
                str(checkpoint),
                "--dataset",
                str(dataset),
                "--out",
                str(samples),
                *threads,
                *[part for item in extra for part in ("--set", item)],
            ],
        )
        metrics = folder / "metrics.parquet"
        self.stage(
            f"stride-eval ({label})",
            metrics,
            [self.tool("eval"), "--samples", str(samples), "--out", str(metrics)],
        )
        return generate, metrics

    def select_steps(self, label: str, checkpoint: Path, dataset: Path, folder: Path) -> dict[str, Any]:
        """Val ensembles for each candidate step count; `choose_steps` picks one from their val scores."""
        overall: dict[int, dict[str, float]] = {}
        later: dict[int, float] = {}
        per_date: dict[int, pd.Series] = {}
        for steps in self.args.select_steps:
            candidate = folder / "select" / f"steps{steps}"
            candidate.mkdir(parents=True, exist_ok=True)
            _, metrics = self.generate_and_eval(
                f"{label} val, {steps} steps",
                checkpoint,
                dataset,
                candidate,
                [
                    *self.args.set_generate,
                    "split=val",
                    f"date_stride={self.dataset.select_date_stride}",
                    f"sampler.steps={steps}",
                ],
            )
            values = headline(metrics, "stride", self.dataset.variable)
            overall[steps] = {"spread_skill": values["spread_skill"], "crps": values["crps"]}
            later[steps] = stored_later_spread_skill(candidate / "samples.zarr", self.dataset.variable)
            per_date[steps] = date_crps(metrics, "stride", self.dataset.variable)
        chosen = choose_steps(later)
        shown = ", ".join(
            f"{steps}: {later[steps]:.3f} (all {score['spread_skill']:.3f}, CRPS {score['crps']:.4f})"
            for steps, score in overall.items()
        )
        print(
            f"  {self.dataset.name}: val spread-skill of the later half by steps {shown} -> {chosen} steps",
            flush=True,
        )
        return {
            "split": "val",
            "date_stride": self.dataset.select_date_stride,
            "rule": SELECTION_RULE,
            "later_half_spread_skill_by_steps": later,
            "spread_skill_by_steps": {steps: score["spread_skill"] for steps, score in overall.items()},
            "crps_by_steps": {steps: score["crps"] for steps, score in overall.items()},
            "crps_excess_z_by_steps": crps_excess_z(per_date),
            "chosen_steps": chosen,
        }

    def model(self, model: str, dataset: Path, stats: Path) -> dict[str, Any]:
        """Train, generate and evaluate one model; returns paths and the training record."""
        label = self.args.label if model == "stride" and self.args.label else model
        folder = self.folder / label
        folder.mkdir(exist_ok=True)
        extra_train = self.args.set_train if model == "stride" else self.args.set_regression
        threads = ["--set", f"training.threads={self.args.threads}"] if self.args.threads else []
        checkpoint = folder / "checkpoint"
        train = self.stage(
            f"stride-train ({label})",
            checkpoint,
            [
                self.tool("train"),
                "--config",
                str(self.dataset.train_configs[model]),
                "--dataset",
                str(dataset),
                "--stats",
                str(stats),
                "--out",
                str(checkpoint),
                *threads,
                *[part for item in extra_train for part in ("--set", item)],
            ],
        )
        selection = None
        extra_generate = list(self.args.set_generate) if model == "stride" else []
        if model == "stride" and self.args.select_steps:
            selection = self.select_steps(label, checkpoint, dataset, folder)
            extra_generate.append(f"sampler.steps={selection['chosen_steps']}")
        generate, metrics = self.generate_and_eval(label, checkpoint, dataset, folder, extra_generate)
        return {
            "folder": folder,
            "metrics": metrics,
            "checkpoint": checkpoint,
            "train": train,
            "generate": generate,
            "selection": selection,
        }


def headline(metrics: Path, model: str, variable: str) -> dict[str, float]:
    """Aggregate rows (no date, no wavenumber) of one model and variable: metric -> value."""
    table = pd.read_parquet(metrics)
    rows = table[
        (table["model"] == model)
        & (table["variable"] == variable)
        & table["date"].isna()
        & table["wavenumber"].isna()
    ]
    return {str(metric): float(value) for metric, value in zip(rows["metric"], rows["value"], strict=True)}


def date_crps(metrics: Path, model: str, variable: str) -> pd.Series:
    """Per-date CRPS rows of one model and variable, indexed by date."""
    table = pd.read_parquet(metrics)
    rows = table[
        (table["model"] == model)
        & (table["variable"] == variable)
        & (table["metric"] == "crps")
        & table["date"].notna()
    ]
    return pd.Series(rows["value"].to_numpy(float), index=rows["date"].to_numpy()).sort_index()


def crps_excess_z(per_date: dict[int, pd.Series]) -> dict[int, float]:
    """Each candidate's val CRPS above the best candidate's, in paired standard errors over the val dates.

    The candidates are scored on the same dates, so the date-to-date weather (most of the CRPS's variance)
    cancels in the paired differences; the best candidate itself scores 0.
    """
    means = {steps: float(series.mean()) for steps, series in per_date.items()}
    best = min(means, key=means.__getitem__)
    z: dict[int, float] = {}
    for steps, series in per_date.items():
        diff = (series - per_date[best]).dropna()
        if steps == best or len(diff) < 2:
            z[steps] = 0.0
            continue
        se = float(diff.std(ddof=1)) / math.sqrt(len(diff))
        z[steps] = float(diff.mean()) / se if se > 0 else math.inf
    return z


def later_half(times: np.ndarray) -> np.ndarray:
    """Indices of the later half of `times` in time (the middle date too when their number is odd)."""
    order = np.argsort(times, kind="stable")
    return np.sort(order[len(order) // 2 :])


def later_spread_skill(members: np.ndarray, truth: np.ndarray, times: np.ndarray) -> float:
    """stride-eval's spread-skill ratio (stride_core's) over the later half of the dates.

    members [T, M, H, W] and truth [T, H, W] of one variable; times [T].
    """
    late = later_half(times)
    return float(spread_skill_ratio(members[late], truth[late], member_axis=1))


def stored_later_spread_skill(samples: Path, variable: str) -> float:
    """`later_spread_skill` of one variable of a samples store."""
    store = open_samples(samples, None)
    index = [target.name for target in store.manifest.target].index(variable)
    members = store.load("members")[:, :, index].astype(np.float64)
    truth = store.load("target")[:, index].astype(np.float64)
    return later_spread_skill(members, truth, np.asarray(store.dataset["time"].values))


def choose_steps(later: dict[int, float]) -> int:
    """The step count of the test ensemble from the candidates' val scores alone (SELECTION_RULE).

    Nearest 1 of the later val dates' spread-skill; on a tie the more steps (the finer solve).
    """
    return min(later, key=lambda steps: (abs(later[steps] - 1.0), -steps))


def model_entry(values: dict[str, float], occurrence: bool) -> dict[str, float | None]:
    entry: dict[str, float | None] = {key: values.get(METRIC_OF_KEY[key]) for key in KEYS}
    if occurrence:
        entry.update({key: values.get(key) for key in OCCURRENCE_KEYS})
    return entry


def training_entry(run: dict[str, Any]) -> dict[str, Any]:
    manifest = json.loads((run["checkpoint"] / "manifest.json").read_text())
    config = manifest["training_config"]
    return {
        "wall_s": run["train"]["wall_s"],
        "cpu_s": run["train"].get("cpu_s"),
        "steps": manifest["step"],
        "best_step": manifest.get("best_step"),
        "batch_size": config["training"]["batch_size"],
        "threads": config["training"]["threads"],
        "samples_per_s": manifest.get("final_metrics", {}).get("samples_per_s"),
        "command": run["train"]["command"],
        "config": {key: config[key] for key in ("model", "edm", "optim", "training") if key in config},
    }


def targets(entries: dict[str, dict[str, float | None]]) -> dict[str, dict[str, Any]]:
    """The three targets; `pass` is None when the reference model was not part of this run."""
    crps, ssr = entries["stride"]["crps"], entries["stride"]["spread_skill"]
    bicubic_mae = entries["bicubic"]["mae"] if "bicubic" in entries else None
    regression_mae = entries["regression"]["mae"] if "regression" in entries else None

    def below(value: float | None, bound: float | None) -> dict[str, Any]:
        verdict = None if bound is None else value is not None and value < bound
        return {"value": value, "low": None, "high": bound, "pass": verdict}

    low, high = SPREAD_SKILL_RANGE
    return {
        "crps_below_0.8x_bicubic_mae": below(
            crps, None if bicubic_mae is None else CRPS_VS_BICUBIC * bicubic_mae
        ),
        "crps_below_regression_mae": below(crps, regression_mae),
        "spread_skill_in_0.7_1.3": {
            "value": ssr,
            "low": low,
            "high": high,
            "pass": ssr is not None and low <= ssr <= high,
        },
    }


def run_all(args: argparse.Namespace) -> dict[str, dict[str, dict[str, Any]]]:
    """Builds each dataset, then runs the model chains --jobs at a time; dataset -> model -> run."""
    chains = {name: Chain(args, DATASETS[name]) for name in args.datasets}
    inputs = {}
    for name, chain in chains.items():
        print(f"\n== {name} -> {chain.folder}", flush=True)
        inputs[name] = chain.data()
    # STRIDE's chains (training, step selection, test ensemble) are the longest: they start first.
    order = [(name, model) for model in args.models for name in args.datasets]
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = {
            (name, model): pool.submit(chains[name].model, model, *inputs[name]) for name, model in order
        }
        wait(futures.values(), return_when=FIRST_EXCEPTION)
        for future in futures.values():
            future.cancel()  # after a failure: the chains not started yet do not start
    return {name: {model: futures[(name, model)].result() for model in args.models} for name in args.datasets}


def summarise(dataset: Dataset, folder: Path, runs: dict[str, dict[str, Any]], label: str) -> dict[str, Any]:
    occurrence = False
    entries: dict[str, dict[str, float | None]] = {}
    truth: dict[str, float] = {}
    for model, run in runs.items():
        # stride-eval names the regression model's rows "regression" (an EDM ensemble's "stride").
        values = headline(run["metrics"], model, dataset.variable) or headline(
            run["metrics"], "stride", dataset.variable
        )
        occurrence = occurrence or "wet_freq" in values
        entries[model] = model_entry(values, "wet_freq" in values)
    first = runs.get("stride") or next(iter(runs.values()))
    bicubic = headline(first["metrics"], "bicubic", dataset.variable)
    if bicubic:
        entries["bicubic"] = model_entry(bicubic, occurrence)
    if occurrence:
        truth = {
            key: value
            for key, value in headline(first["metrics"], "truth", dataset.variable).items()
            if key in OCCURRENCE_KEYS
        }
    # The samples manifest (Zarr v3 root attribute `stride`): members, sampler settings, units.
    manifest = json.loads((first["folder"] / "samples.zarr" / "zarr.json").read_text())["attributes"][
        "stride"
    ]
    result: dict[str, Any] = {
        **entries,
        "variable": dataset.variable,
        "units": next((v["units"] for v in manifest["target"] if v["name"] == dataset.variable), None),
        "truth": truth or None,
        "targets": targets(entries) if "stride" in entries else None,
        "training": {model: training_entry(run) for model, run in runs.items()},
        "generation": {
            "members": manifest["n_members"],
            "sampler": manifest["sampler"],
            "split": manifest["split"],
            "command": first["generate"]["command"],
            "sampler_selection": first.get("selection"),
        },
        "data_config": str(dataset.data_config.relative_to(ROOT)),
        "out": str(folder),
    }
    if label:
        result["label"] = label
    return result


def stage_cpu(out: Path, datasets: list[str]) -> float:
    """CPU seconds of every stage record under the datasets' folders (stages resumed count their first run)."""
    return sum(
        json.loads(record.read_text()).get("cpu_s") or 0.0
        for name in datasets
        for record in (out / name).rglob("*" + STAGE_RECORD)
    )


def device(threads: int | None) -> str:
    """The CPU (or GPU) the CLIs ran on, with the torch thread count they were given."""
    try:
        import torch

        if torch.cuda.is_available():
            return f"{torch.cuda.get_device_name(0)} (CUDA)"
    except ImportError:
        pass
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    used = f"{threads} torch threads" if threads else "torch's default threads"
    return f"{model} ({os.cpu_count()} logical CPUs, {used}; CPU only)"


def git_commit() -> dict[str, Any]:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()

    return {"commit": git("rev-parse", "HEAD") or None, "dirty": bool(git("status", "--porcelain"))}


def finite(value: Any) -> Any:
    """The report with infinite floats (the sampler's S_max) as strings: strict JSON has no Infinity."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [finite(item) for item in value]
    return value


def fmt(value: float | None, width: int = 9) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.4f}"


def print_table(report: dict[str, Any]) -> None:
    print(
        f"\ndevice: {report['device']}; git {report['git']['commit']}{' (dirty)' if report['git']['dirty'] else ''}"
    )
    for name in report["datasets"]:
        result = report[name]
        units = result.get("units") or ""
        occurrence = result.get("truth") is not None
        keys = KEYS + (OCCURRENCE_KEYS if occurrence else ())
        print(f"\n{name} ({result['variable']}, {units}; {result['generation']['members']} members)")
        header = f"{'model':<11}" + "".join(f"{key:>15}" for key in keys)
        print(header)
        print("-" * len(header))
        for model in ("stride", "regression", "bicubic"):
            if model in result:
                print(f"{model:<11}" + "".join(fmt(result[model].get(key), 15) for key in keys))
        if occurrence:
            truth = result["truth"]
            print(
                f"{'truth':<11}"
                + "".join(fmt(truth.get(key), 15) if key in truth else f"{'':>15}" for key in keys)
            )
        for model, training in result["training"].items():
            wall, cpu = training["wall_s"], training.get("cpu_s")
            print(
                f"  train {model:<10} {training['steps']} steps (best {training['best_step']}), "
                f"{'?' if wall is None else f'{wall / 60:.1f}'} min wall, "
                f"{'?' if cpu is None else f'{cpu / 60:.1f}'} min CPU"
            )
        for target, check in (result["targets"] or {}).items():
            verdict = {True: "PASS", False: "FAIL", None: "n/a"}[check["pass"]]
            bounds = " ".join(
                f"{side} {check[side]:.4f}" for side in ("low", "high") if check[side] is not None
            )
            print(f"  {verdict:<5} {target:<30} {fmt(check['value'], 8)}  ({bounds})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", choices=tuple(DATASETS), default=list(DATASETS))
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"work folder (default {DEFAULT_OUT})")
    parser.add_argument(
        "--threads", type=int, default=0, help="torch threads of train/generate (default: torch's)"
    )
    parser.add_argument(
        "--cli-dir", type=Path, default=ROOT / ".venv" / "bin", help="folder of the stride-* executables"
    )
    parser.add_argument("--label", default="", help="sub-folder name of the STRIDE run (experiments)")
    parser.add_argument(
        "--set-train", action="append", default=[], metavar="KEY=VALUE", help="STRIDE training"
    )
    parser.add_argument("--set-regression", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument(
        "--set-generate", action="append", default=[], metavar="KEY=VALUE", help="STRIDE sampling"
    )
    parser.add_argument(
        "--select-steps",
        type=int,
        nargs="*",
        default=[8, 11, 14],
        metavar="N",
        help="Heun step counts tried on the val split (default 8 11 14; none: the generate config's)",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=2,
        help="model chains run side by side (default 2); with --threads 0 each gets cpu_count/jobs threads",
    )
    parser.add_argument("--results", type=Path, default=RESULTS, help=f"JSON report (default {RESULTS})")
    args = parser.parse_args(argv)
    args.out = args.out.resolve()
    if args.jobs < 1:
        parser.error("--jobs must be >= 1")
    if not args.threads and args.jobs > 1:
        args.threads = max(1, (os.cpu_count() or 1) // args.jobs)
    start = time.perf_counter()
    load_start = os.getloadavg()

    report: dict[str, Any] = {
        "benchmark": "stride quality bar (issue 4)",
        "command": shlex.join(["python bench/quality.py", *(sys.argv[1:] if argv is None else argv)]),
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "device": device(args.threads or None),
        "git": git_commit(),
        "datasets": list(args.datasets),
        "criteria": {
            "crps_below_0.8x_bicubic_mae": "STRIDE fair CRPS < 0.8 x bicubic MAE",
            "crps_below_regression_mae": "STRIDE fair CRPS < regression MAE (of its single member)",
            "spread_skill_in_0.7_1.3": "0.7 <= STRIDE spread-skill ratio <= 1.3",
        },
    }
    try:
        runs = run_all(args)
    except StageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for name in args.datasets:
        folder = args.out / name
        report[name] = summarise(DATASETS[name], folder, runs[name], args.label)
    report["wall_s"] = time.perf_counter() - start
    # 1/5/15-minute load averages: wall_s measured on a shared machine reads with them.
    report["load_start"] = list(load_start)
    report["load_end"] = list(os.getloadavg())
    report["cpu_s"] = stage_cpu(args.out, args.datasets)
    report["jobs"] = args.jobs
    print_table(report)
    print(
        f"\nwall time {report['wall_s'] / 60:.1f} min, CPU time of the stages {report['cpu_s'] / 60:.1f} min"
    )
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(finite(report), indent=2, allow_nan=False) + "\n")
    print(f"\nwrote {args.results}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
