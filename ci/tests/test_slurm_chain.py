"""The STRIDE chain on a real one-node SLURM cluster, as users submit it: slurm/submit.sh at smoke budget.

Starts slurmctld, slurmd and munged with ci/local-slurm.sh (installing slurm-wlm and munge with apt where
missing; needs root), submits the six steps with afterok/aftercorr dependencies (generate, eval and plot as
array jobs over two shards) calling the repository's CLIs (STRIDE_RUNNER=local; the images are checked by
ci/test-images.sh), pre-empts the training job twice while it runs (`scontrol requeue`, then the time-limit
warning `--signal=B:USR1` that the batch script handles itself), and checks that every job completed, every
artifact is there and valid, and that the resumed training ended with the weights of an uninterrupted run
submitted beside it. Run with `make test-slurm`.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import torch
from mlflow.tracking import MlflowClient

from stride_model import load_weights

REPO = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("STRIDE_DATA") or REPO.parent / "shared" / "data")
BIN = Path(sys.executable).parent
# The smoke budget shared with ci/test-images.sh, plus what this machine needs: every job asks for one CPU
# so that the two shards run side by side, and the CLIs of this virtual environment.
SMOKE = dict(re.findall(r'^(\w+)="(.*)"$', (REPO / "ci" / "smoke.env").read_text(), re.M))
SMOKE.update(STRIDE_SBATCH_ARGS="--cpus-per-task=1", STRIDE_RUNNER="local")
STEPS = int(re.search(r"--steps (\d+)", SMOKE["STRIDE_TRAIN_ARGS"]).group(1))  # type: ignore[union-attr]
MEMBERS = int(re.search(r"--members (\d+)", SMOKE["STRIDE_GENERATE_ARGS"]).group(1))  # type: ignore[union-attr]
TIMEOUT_S = 1500


def sh(*args: str | Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run([str(a) for a in args], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, (
        f"{' '.join(map(str, args))} exited {done.returncode}:\n{done.stderr[-3000:]}"
    )
    return done.stdout


@pytest.fixture(scope="module")
def slurm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A one-node cluster for this module; its daemons are stopped afterwards."""
    if os.geteuid() != 0:
        pytest.fail("the SLURM check runs slurmd, which must run as root; run `make test-slurm` as root")
    if not (DATA / "era5_uk_t2m_2019-03.nc").is_file():
        pytest.fail(f"real sample data missing under {DATA}; set STRIDE_DATA")
    folder = tmp_path_factory.mktemp("slurm-cluster")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "MLFLOW_"))}
    try:
        exports = sh(REPO / "ci" / "local-slurm.sh", "start", folder, env=env)
        env["SLURM_CONF"] = re.search(r"SLURM_CONF=(\S+)", exports).group(1)  # type: ignore[union-attr]
        env["PATH"] = f"{BIN}:{env['PATH']}"
        yield env
    finally:
        subprocess.run([str(REPO / "ci" / "local-slurm.sh"), "stop", str(folder)], check=False)


def job_records(job: str, env: dict[str, str]) -> list[dict[str, str]]:
    """`scontrol show job` as key=value records, one per job or array task."""
    out = subprocess.run(
        ["scontrol", "show", "job", "-o", job], env=env, capture_output=True, text=True, check=False
    ).stdout
    return [dict(re.findall(r"(\w+)=(\S*)", line)) for line in out.splitlines() if line.strip()]


def state(job: str, env: dict[str, str]) -> str:
    records = job_records(job, env)
    return records[0]["JobState"] if records else "GONE"


def wait_for(condition: object, what: str, timeout: float = TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out after {timeout:.0f} s waiting for {what}"
        time.sleep(1)


def _check_chain() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_chain", REPO / "ci" / "check_chain.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_chain_on_slurm_resumes_preempted_training(slurm: dict[str, str], tmp_path: Path) -> None:
    started = time.monotonic()
    chain, reference = tmp_path / "chain", tmp_path / "reference"
    store = tmp_path / "mlflow" / "mlflow.db"
    env = {**slurm, **SMOKE, "STRIDE_DATA": str(DATA), "MLFLOW_TRACKING_URI": f"sqlite:///{store}"}
    # A shared SQLite store keeps artifacts where its experiment says; MLflow's default is ./mlruns of
    # whichever job creates the experiment first. Create it with its artifact folder beside the store.
    store.parent.mkdir()
    MlflowClient(tracking_uri=f"sqlite:///{store}").create_experiment(
        "stride", artifact_location=(store.parent / "artifacts").as_uri()
    )
    out = sh(REPO / "slurm" / "submit.sh", env={**env, "STRIDE_OUT": str(chain)})
    jobs = dict(line.split("=", 1) for line in out.splitlines())
    assert list(jobs) == ["data", "stats", "train", "generate", "eval", "plot"]
    assert (chain / "jobs.env").read_text() == out

    # The same training, never interrupted, in its own folder on the chain's dataset and stats.
    reference.mkdir()
    (reference / "logs").mkdir()
    for name in ("dataset.zarr", "stats.parquet"):
        (reference / name).symlink_to(chain / name)
    ref_env = {
        **env,
        "STRIDE_OUT": str(reference),
        "STRIDE_ROOT": str(REPO),
        "STRIDE_SLURM_DIR": str(REPO / "slurm"),
        "STRIDE_TRAIN_CONFIG": "configs/train_era5_uk.yaml",
    }
    ref_job = sh(
        "sbatch", "--parsable", "--cpus-per-task=1", "--chdir", REPO, "--dependency", f"afterok:{jobs['stats']}",
        "--output", reference / "logs" / "train.out", REPO / "slurm" / "03-train.sbatch", env=ref_env,
    ).strip()  # fmt: skip

    # Pre-emption 1: `scontrol requeue` while training runs (SIGTERM to every process of the job).
    train, state_file = jobs["train"], chain / ".checkpoint.inprogress" / "state.pt"
    wait_for(
        lambda: state(train, env) == "RUNNING" and state_file.is_file(), "the first saved training state"
    )
    sh("scontrol", "requeue", train, env=env)
    log = chain / "logs" / f"stride-train-{train}.out"
    wait_for(lambda: "attempt 2 " in log.read_text(), "the requeued training job to start again")
    # Pre-emption 2: the time-limit warning (--signal=B:USR1@300) that the batch script handles itself.
    saved = state_file.stat().st_mtime_ns
    wait_for(
        lambda: state_file.is_file() and state_file.stat().st_mtime_ns != saved, "a state saved by attempt 2"
    )
    sh("scancel", "--batch", "--signal=USR1", train, env=env)
    wait_for(lambda: "attempt 3 " in log.read_text(), "the training job to requeue itself after USR1")

    everything = [*jobs.values(), ref_job]
    wait_for(lambda: all(state(j, env) in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT") for j in everything),
             "every job to end")  # fmt: skip
    wall = time.monotonic() - started
    for name, job in [*jobs.items(), ("reference", ref_job)]:
        for record in job_records(job, env):
            assert (record["JobState"], record["ExitCode"]) == ("COMPLETED", "0:0"), (
                f"{name} job {job}: {record['JobState']} {record['ExitCode']}; logs in {chain / 'logs'}"
            )
    assert len(job_records(jobs["generate"], env)) == 2, "one generate task per shard"
    (train_record,) = job_records(train, env)
    assert train_record["Restarts"] == "2"
    stops = [int(s) for s in re.findall(r"stopped by SIG\w+ at step (\d+)", log.read_text())]
    assert len(stops) == 2 and 0 < stops[0] < stops[1] < STEPS, f"expected two stops mid-run, got {stops}"

    # Every artifact, with the manifest its contract describes.
    problems = _check_chain().check_chain(chain, STEPS, MEMBERS, {"val": 4, "test": 6})
    assert not problems, "\n".join(problems)

    # One MLflow run per invocation in the shared store: the three training attempts included.
    client = MlflowClient(tracking_uri=f"sqlite:///{store}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    tools = sorted(r.data.tags.get("stride.tool", r.info.run_name or "") for r in runs)
    assert len(runs) == 1 + 1 + 3 + 1 + 2 + 2 + 2, tools

    # The twice pre-empted training ends with exactly the weights of the uninterrupted one.
    for name in ("weights.pt", "ema_weights.pt", "best_ema_weights.pt"):
        resumed = load_weights(chain / "checkpoint" / name)
        straight = load_weights(reference / "checkpoint" / name)
        assert resumed.keys() == straight.keys()
        for key, value in straight.items():
            assert torch.equal(resumed[key], value), f"{name}:{key} differs after the resumes"
    print(f"\nSLURM chain at smoke budget with two pre-emptions: {wall:.0f} s")
