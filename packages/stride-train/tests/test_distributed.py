"""DDP under torchrun: 2 CPU processes (gloo) against one process, one MLflow run, a common stop."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient

from stride_contracts import CheckpointManifest
from stride_core.artifacts import read_manifest_folder
from stride_model import load_weights
from stride_train.cli import main

pytestmark = pytest.mark.skipif(
    not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
    reason="torch built without gloo",
)


def torchrun(args: list[str], **popen: object) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "RANK", "WORLD_SIZE")}
    env.update(STRIDE_PROGRESS="0", OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    return subprocess.Popen(
        [*command, "-m", "stride_train.cli", *args, "--set", "training.device=cpu"],
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        **popen,  # type: ignore[call-overload]
    )


def test_two_processes_train_as_one(tiny_args: list[str], tmp_path: Path) -> None:
    steps = ["--steps", "6", "--set", "training.val_every=3"]
    assert main([*tiny_args, *steps, "--out", str(tmp_path / "single" / "ckpt")]) == 0
    job = torchrun([*tiny_args, *steps, "--out", str(tmp_path / "ddp" / "ckpt")])
    _, stderr = job.communicate(timeout=240)
    assert job.returncode == 0, stderr

    single = read_manifest_folder(tmp_path / "single" / "ckpt", CheckpointManifest)
    ddp = read_manifest_folder(tmp_path / "ddp" / "ckpt", CheckpointManifest)
    assert ddp.best_step == single.best_step and ddp.step == single.step == 6
    assert ddp.best_val_loss == pytest.approx(single.best_val_loss, rel=1e-5)
    # Same samples, noise and loss scale; only the order of float32 sums differs (per-rank convolutions on
    # 2 samples, gradients all-reduced): about 1 ulp of the weights (1.2e-7 seen). A wrong share, noise
    # slice or loss scale moves weights by about lr = 1e-3 per step, so atol 1e-5 tells them apart.
    for name in ("weights.pt", "ema_weights.pt", "best_ema_weights.pt"):
        one, two = (
            load_weights(tmp_path / "single" / "ckpt" / name),
            load_weights(tmp_path / "ddp" / "ckpt" / name),
        )
        for key, value in one.items():
            torch.testing.assert_close(two[key], value, rtol=0, atol=1e-5, msg=f"{name}:{key}")

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'ddp' / 'mlflow.db'}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    assert runs[0].data.metrics["world_size"] == 2


def _worker_of_rank(parent: int, rank: int) -> int | None:
    """The pid of torchrun's worker with the given RANK, once it has a handler for SIGUSR1."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        ppid = int(re.search(r"^PPid:\s+(\d+)", status, re.M).group(1))  # type: ignore[union-attr]
        caught = int(re.search(r"^SigCgt:\s+([0-9a-f]+)", status, re.M).group(1), 16)  # type: ignore[union-attr]
        if ppid == parent and f"RANK={rank}".encode() in environ and caught & (1 << (signal.SIGUSR1 - 1)):
            return int(entry.name)
    return None


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="needs Linux /proc to find the workers")
def test_a_signal_to_one_rank_stops_all_at_the_same_step(tiny_args: list[str], tmp_path: Path) -> None:
    out = tmp_path / "ckpt"
    job = torchrun([*tiny_args, "--steps", "100000", "--set", "training.val_every=100000", "--out", str(out)])
    deadline, worker = time.monotonic() + 120, None
    while worker is None and job.poll() is None and time.monotonic() < deadline:
        worker = _worker_of_rank(job.pid, rank=1)
        time.sleep(0.2)
    assert worker is not None, "rank 1 never installed its SIGUSR1 handler"
    time.sleep(1.0)  # a few steps in
    os.kill(worker, signal.SIGUSR1)  # SLURM's pre-emption warning, delivered to one process only
    _, stderr = job.communicate(timeout=120)
    assert job.returncode != 0
    stopped = re.findall(r"stride-train: error: stopped by SIGUSR1 at step (\d+)", stderr)
    assert len(stopped) == 2 and stopped[0] == stopped[1], stderr
    state = torch.load(tmp_path / ".ckpt.inprogress" / "state.pt", weights_only=True)
    assert state["step"] == int(stopped[0]) > 0


def test_global_batch_must_divide_by_the_processes(
    tiny_args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WORLD_SIZE", "3")  # as torchrun sets it; checked before any process group starts
    assert main([*tiny_args, "--out", str(tmp_path / "ckpt"), "--steps", "2"]) == 2
    assert "training.batch_size 4 is the global batch of all 3 processes" in capsys.readouterr().err
