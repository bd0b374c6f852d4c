"""A real Dask cluster on this machine: `dask scheduler` and `dask worker` processes on 127.0.0.1.

The same programs a SLURM job starts on its nodes (README: stride-stats on a Dask cluster), here on loopback
for the cluster test and the benchmark. The scheduler picks a free port and writes its address to a
scheduler file; every process started is stopped on exit, also when the body raises.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from stride_core.errors import StrideError

IDLE_TIMEOUT = "600s"
"""A scheduler left without clients and tasks this long exits; workers exit 60 s after losing it. A safety net
for a parent killed before its clean-up (SIGKILL): nothing started here outlives it by much."""
START_TIMEOUT_S = 120.0
"""How long the scheduler and workers may take to come up (imports are slow on a loaded machine)."""


@dataclass
class LoopbackCluster:
    address: str
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self.processes]


def _dask() -> list[str]:
    # The `dask` console script of this interpreter's environment (workers must import stride_stats).
    script = Path(sys.executable).parent / "dask"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "dask"]


@contextmanager
def loopback_cluster(
    workers: int = 2, threads: int = 1, log_dir: Path | None = None
) -> Iterator[LoopbackCluster]:
    """A scheduler and `workers` worker processes of `threads` threads each, on 127.0.0.1."""
    with tempfile.TemporaryDirectory(prefix="stride-dask-") as scratch:
        logs = Path(log_dir or scratch)
        scheduler_file = Path(scratch) / "scheduler.json"
        cluster = LoopbackCluster(address="")
        env = {**os.environ, "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
        # SIGTERM (a timeout, scancel) becomes SystemExit in the main thread, so the finally below runs.
        previous = None
        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
        try:
            cluster.processes.append(
                _start(
                    [
                        *_dask(),
                        "scheduler",
                        "--host",
                        "127.0.0.1",
                        "--port",
                        "0",
                        "--no-dashboard",
                        "--idle-timeout",
                        IDLE_TIMEOUT,
                        "--scheduler-file",
                        str(scheduler_file),
                    ],
                    logs / "scheduler.log",
                    env,
                )
            )
            cluster.address = _wait_for_address(scheduler_file, cluster.processes[0], logs / "scheduler.log")
            for index in range(workers):
                cluster.processes.append(
                    _start(
                        [
                            *_dask(),
                            "worker",
                            cluster.address,
                            "--nthreads",
                            str(threads),
                            "--nworkers",
                            "1",
                            "--no-dashboard",
                            "--host",
                            "127.0.0.1",
                            "--local-directory",
                            scratch,
                            "--name",
                            f"stride-worker-{index}",
                            "--death-timeout",
                            "60",
                        ],
                        logs / f"worker-{index}.log",
                        env,
                    )
                )
            _wait_for_workers(cluster.address, workers)
            yield cluster
        finally:
            for process in reversed(cluster.processes):
                _stop(process)
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _start(command: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )


def _wait_for_address(scheduler_file: Path, scheduler: subprocess.Popen[bytes], log: Path) -> str:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if scheduler.poll() is not None:
            raise StrideError(f"dask scheduler exited with {scheduler.returncode}: {log.read_text()[-2000:]}")
        try:
            return str(json.loads(scheduler_file.read_text())["address"])
        except (OSError, ValueError, KeyError):
            time.sleep(0.2)
    raise StrideError(f"dask scheduler did not write {scheduler_file} within {START_TIMEOUT_S:.0f} s")


def _wait_for_workers(address: str, workers: int) -> None:
    from distributed import Client

    with Client(address, timeout=START_TIMEOUT_S) as client:
        client.wait_for_workers(workers, timeout=START_TIMEOUT_S)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process's own session (a worker's nanny and its child), then SIGKILL if it lingers."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=20)
    except ProcessLookupError:
        pass
