"""Under load, with a real tracking server: MLflow backed by PostgreSQL on loopback, started and stopped here.

Concurrent CLIs (generate shards and evaluations) all record their runs with lineage; then the server is
stopped in the middle of a run, which must finish its work, keep its artifact intact, and say in one line
that its tracking record is incomplete (the documented choice: work is never lost to tracking).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import BIN, REPO, Chain, small_generation

pytestmark = pytest.mark.e2e


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _postgres_bin() -> Path:
    """The folder of initdb/pg_ctl, installing Debian's postgresql when it is missing (a fresh CI machine)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, timeout=600)
        subprocess.run(["apt-get", "install", "-y", "-qq", "postgresql"], check=True, env=env, timeout=900)
        found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    assert found, "Debian's postgresql installed no initdb under /usr/lib/postgresql/*/bin"
    return found[-1].parent


def _as_postgres(args: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root; Debian's package creates the 'postgres' user.
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


def _wait_for(check: object, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.5)
    pytest.fail(f"timed out waiting for {what}")


@pytest.fixture
def postgres() -> Iterator[str]:
    """A PostgreSQL server on 127.0.0.1 with a database 'mlflow'; yields its SQLAlchemy URI."""
    pg = _postgres_bin()
    # Not under pytest's tmp_path: that lies in a folder only root may enter, and the server runs as postgres.
    home = Path(tempfile.mkdtemp(prefix="stride-pg-"))
    home.chmod(0o755)
    data = home / "data"
    data.mkdir()
    if os.geteuid() == 0:
        shutil.chown(data, "postgres", "postgres")
    subprocess.run(
        _as_postgres([str(pg / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"]),
        check=True,
        capture_output=True,
        timeout=300,
    )
    port = _free_port()
    options = f"-h 127.0.0.1 -p {port} -k {data}"
    subprocess.run(
        _as_postgres(
            [str(pg / "pg_ctl"), "-D", str(data), "-o", options, "-w", "-l", str(data / "log"), "start"]
        ),
        check=True,
        capture_output=True,
        timeout=120,
    )
    try:
        subprocess.run(
            [str(pg / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "mlflow"],
            check=True,
            capture_output=True,
            timeout=60,
        )
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/mlflow"
    finally:
        subprocess.run(
            _as_postgres([str(pg / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
            check=False,
            capture_output=True,
            timeout=120,
        )
        shutil.rmtree(home, ignore_errors=True)


class Server:
    def __init__(self, backend: str, artifacts: Path) -> None:
        self.port = _free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [
                str(BIN / "mlflow"),
                "server",
                "--backend-store-uri",
                backend,
                "--artifacts-destination",
                artifacts.as_uri(),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                # One worker: with several, uvicorn's supervisor killed its children as unresponsive on a
                # loaded 2-core machine (seen here); the load below is on the database, not the web workers.
                "--workers",
                "1",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def healthy(self) -> bool:
        import urllib.request

        try:
            with urllib.request.urlopen(self.uri + "/health", timeout=2) as answer:
                return bool(answer.status == 200)
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)
            self.proc.wait(timeout=60)


@pytest.fixture
def server(postgres: str, tmp_path: Path) -> Iterator[Server]:
    running = Server(postgres, tmp_path / "artifacts")
    try:
        _wait_for(lambda: running.healthy() or running.proc.poll() is not None, "mlflow server", 600)
        assert running.proc.poll() is None, "mlflow server exited at start"
        yield running
    finally:
        running.stop()


def _generate(
    chain: Chain, out: Path, env: dict[str, str], *, dates: int = 2, stride: int = 24
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            str(BIN / "stride-generate"),
            *small_generation(chain, out)[1:],
            "--set",
            f"max_dates={dates}",
            "--set",
            f"date_stride={stride}",
            "--set",
            "threads=1",
        ],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_concurrent_runs_and_a_server_that_dies(chain: Chain, server: Server, tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    env = {**chain.env, "MLFLOW_TRACKING_URI": server.uri, "STRIDE_EXPERIMENT": "load"}
    started = time.monotonic()
    procs = [_generate(chain, tmp_path / f"shard_{i}.zarr", env, dates=2 + i) for i in range(4)]
    procs += [
        subprocess.Popen(
            [
                str(BIN / "stride-eval"),
                "--samples",
                str(chain.path("samples.zarr")),
                "--out",
                str(tmp_path / f"metrics_{i}.parquet"),
            ],
            env=env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(4)
    ]
    failures = []
    for proc in procs:
        _, stderr = proc.communicate(timeout=900)
        if proc.returncode != 0:
            failures.append(stderr[-1500:])
    elapsed = time.monotonic() - started
    assert not failures, failures
    client = MlflowClient(server.uri)
    experiment = client.get_experiment_by_name("load")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    statuses = sorted(run.info.status for run in runs)
    print(
        f"\nload: {len(procs)} concurrent CLIs, {len(runs)} runs recorded, {len(failures)} failures, "
        f"{elapsed:.1f} s",
        file=sys.stderr,
    )
    assert statuses == ["FINISHED"] * 8
    for run in runs:
        tags = run.data.tags
        role = "dataset" if tags["stride.tool"] == "stride-generate" else "samples"
        assert tags[f"stride.input.{role}.uri"].startswith("file://"), tags
        assert tags["stride.output.uri"].startswith("file://")
    for i in range(4):
        assert (tmp_path / f"shard_{i}.zarr" / "zarr.json").is_file()
        assert (tmp_path / f"metrics_{i}.parquet").stat().st_size > 0

    # The server dies while a run is under way: the work finishes, the artifact is intact, one line says so.
    out = tmp_path / "late.zarr"
    proc = _generate(chain, out, env, dates=48, stride=1)  # long enough to be under way when the server dies
    _wait_for(lambda: len(client.search_runs([experiment.experiment_id])) > 8, "the late run to start", 300)
    server.stop()
    _, stderr = proc.communicate(timeout=900)
    assert proc.returncode == 0, stderr[-2000:]
    assert "Traceback" not in stderr
    assert "is incomplete" in stderr, stderr[-2000:]
    import xarray as xr

    samples = xr.open_zarr(out, consolidated=False)
    assert samples["members"].shape[0] == 48 and bool(samples["members"].notnull().all())
