"""One MLflow run per CLI invocation: flattened params, metrics, lineage tags, small artifacts."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from filelock import FileLock, Timeout

from stride_contracts import ArtifactHeader, InputRef, ProducerRef
from stride_core import __version__
from stride_core.config import flatten
from stride_core.errors import StrideError

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

MAX_PARAM_CHARS = 500
TRACKING_DB = "mlflow.db"
ARTIFACT_FOLDER = "mlartifacts"
TIMEOUT_ENV = "STRIDE_TRACKING_TIMEOUT"
EXPERIMENT_TAGS = {"mlflow.experimentKind": "custom_model_development"}
"""MLflow 3's UI opens an experiment of this kind on its runs table (model training), not on the GenAI
overview it infers for an experiment without the tag."""
DEFAULT_TIMEOUT_S = 5.0
MIN_FREE_BYTES = 16 * 2**20
"""The local store needs room for its schema and a run's rows; below this the disk counts as full."""

# MLflow retries an unreachable server for minutes by default (7 retries, backoff factor 2); a CLI checks
# the server before any work, so later calls need only ride out a short glitch.
_MLFLOW_HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}

log = logging.getLogger("stride.tracking")
T = TypeVar("T")


def is_main_process() -> bool:
    """False in the non-zero ranks of a torchrun/srun job: only rank 0 tracks and writes artifacts."""
    return int(os.environ.get("RANK", "0")) == 0


def default_tracking_uri(output: Path) -> str:
    """`MLFLOW_TRACKING_URI` if set, else an SQLite store beside the output artifact."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{output.resolve().parent / TRACKING_DB}"


def sqlite_database(uri: str) -> Path | None:
    """The database file of a local SQLite store's URI; None for a server or another store."""
    return Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None


def tracking_timeout() -> float:
    """Seconds to wait for the tracking server before any work ($STRIDE_TRACKING_TIMEOUT, default 5)."""
    text = os.environ.get(TIMEOUT_ENV, "")
    try:
        return float(text) if text else DEFAULT_TIMEOUT_S
    except ValueError:
        raise StrideError(f"{TIMEOUT_ENV}={text!r} is not a number of seconds; set it to e.g. 5") from None


def check_tracking_store(output: Path) -> None:
    """Fail in one line, before any work, when the run could not be recorded.

    A server must answer its /health endpoint within the timeout; a local SQLite store needs a folder that
    can be written and has room.
    """
    uri = default_tracking_uri(output)
    if uri.startswith(("http://", "https://")):
        timeout = tracking_timeout()
        try:
            with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout) as answer:
                if answer.status != 200:
                    raise urllib.error.URLError(f"HTTP {answer.status}")
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise StrideError(
                f"MLFLOW_TRACKING_URI {uri}: the tracking server did not answer within {timeout:g} s ({reason}); "
                f"start it (mlflow server --host 127.0.0.1 --port PORT ...) or unset MLFLOW_TRACKING_URI to "
                f"record runs in the local store beside the output"
            ) from None
    elif (database := sqlite_database(uri)) is not None:
        _check_local_store(database)


def _check_local_store(database: Path) -> None:
    folder = database.parent
    fix = "free space there, give another --out, or set MLFLOW_TRACKING_URI to a tracking server"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".stride-write-check-"):
            pass
        if database.exists():
            with database.open("r+b"):
                pass
    except OSError as exc:
        raise StrideError(
            f"{database}: the tracking database cannot be written ({exc.strerror or exc}); {fix}"
        ) from None
    free = shutil.disk_usage(folder).free
    if free < MIN_FREE_BYTES:
        raise StrideError(
            f"{database}: the tracking database's disk is full ({free // 2**20} MiB free, at least "
            f"{MIN_FREE_BYTES // 2**20} MiB needed); {fix}"
        )


class RunContext:
    """What a tool sees of its MLflow run: lineage, metrics, artifacts (no-ops without a client).

    Once the run has started, a tracking failure (the server went away, the disk filled) never stops the
    work: the first one is reported in one line, tracking stops, and the run's record is marked incomplete,
    while the artifact on disk is written as usual.
    """

    def __init__(self, tool: str, output: Path, client: MlflowClient | None, run_id: str | None) -> None:
        self.tool = tool
        self.output = output
        self.run_id = run_id
        self.inputs: list[InputRef] = []
        self._client = client
        self.incomplete = False

    def _call(self, action: Callable[[MlflowClient, str], T]) -> T | None:
        if self._client is None or self.run_id is None:
            return None
        try:
            return action(self._client, self.run_id)
        except Exception as exc:
            log.warning(
                "tracking failed (%s: %s); the MLflow record of run %s is incomplete from here on, the "
                "output is written as usual",
                type(exc).__name__,
                str(exc).splitlines()[0][:200] if str(exc) else "",
                self.run_id,
            )
            self._client = None
            self.incomplete = True
            return None

    def record_input(self, role: str, path: Path, manifest: ArtifactHeader) -> None:
        """Note an input artifact and the run that produced it, as lineage tags and manifest inputs."""
        uri = Path(path).resolve().as_uri()
        self.inputs.append(
            InputRef(
                role=role, uri=uri, contract=manifest.contract, mlflow_run_id=manifest.producer.mlflow_run_id
            )
        )
        self.set_tags({f"stride.input.{role}.uri": uri, f"stride.input.{role}.contract": manifest.contract})
        if manifest.producer.mlflow_run_id:
            self.set_tags({f"stride.input.{role}.run_id": manifest.producer.mlflow_run_id})

    def producer(self) -> ProducerRef:
        return ProducerRef(
            tool=self.tool,
            stride_version=__version__,
            mlflow_run_id=self.run_id,
            created_utc=datetime.now(UTC),
        )

    def set_tags(self, tags: dict[str, str]) -> None:
        from mlflow.entities import RunTag

        if tags:
            self._call(
                lambda client, run_id: client.log_batch(run_id, tags=[RunTag(k, v) for k, v in tags.items()])
            )

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        from mlflow.entities import Metric

        now = int(datetime.now(UTC).timestamp() * 1000)
        batch = [Metric(key, float(value), now, step or 0) for key, value in metrics.items()]
        if batch:
            self._call(lambda client, run_id: client.log_batch(run_id, metrics=batch))

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        self._call(lambda client, run_id: client.log_artifact(run_id, str(path), artifact_path))

    def terminate(self, status: str) -> None:
        """End the run (FINISHED, FAILED or KILLED); nothing more is sent once the record is incomplete."""
        if self.incomplete:
            return
        self._call(lambda client, run_id: client.set_terminated(run_id, status))


def _quiet_mlflow_logs() -> None:
    for name in ("alembic", "mlflow", "mlflow.store", "mlflow.tracking"):
        logging.getLogger(name).setLevel(logging.WARNING)


@contextmanager
def tracked_run(tool: str, config: dict[str, Any], output: Path, experiment: str) -> Iterator[RunContext]:
    """Start the MLflow run for one CLI invocation; it ends FINISHED, FAILED or KILLED with the block.

    Non-zero ranks of a distributed job get a context that records nothing, so a job is one run.
    """
    if not is_main_process():
        yield RunContext(tool, output, None, None)
        return
    _quiet_mlflow_logs()
    for key, value in _MLFLOW_HTTP_DEFAULTS.items():
        os.environ.setdefault(key, value)
    uri = default_tracking_uri(output)
    try:
        client, run_id = _start_run(uri, tool, config, output, experiment)
    except StrideError:
        raise
    except Exception as exc:
        database = sqlite_database(uri)
        where = str(database) if database is not None else f"MLFLOW_TRACKING_URI {uri}"
        first = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
        raise StrideError(
            f"{where}: cannot record the run ({type(exc).__name__}: {first}); free space or fix permissions "
            f"there, or point MLFLOW_TRACKING_URI at a running tracking server"
        ) from None
    context = RunContext(tool, output, client, run_id)
    try:
        yield context
    except KeyboardInterrupt:
        context.terminate("KILLED")
        raise
    except BaseException:
        context.terminate("FAILED")
        raise
    context.terminate("FINISHED")
    if context.incomplete:
        log.warning("the MLflow record of run %s is incomplete; the output %s is complete", run_id, output)


def _start_run(
    uri: str, tool: str, config: dict[str, Any], output: Path, experiment: str
) -> tuple[MlflowClient, str]:
    from mlflow.entities import Param
    from mlflow.tracking import MlflowClient

    with _first_use_lock(uri):
        # Creating (and migrating) a new SQLite store, and creating the experiment, race between CLIs that
        # start at once on a fresh folder; the lock makes the first one do it and the others find it done.
        client = MlflowClient(tracking_uri=uri)
        found = client.get_experiment_by_name(experiment)
        if found is not None:
            experiment_id = found.experiment_id
            for key, value in EXPERIMENT_TAGS.items():
                if key not in found.tags:  # a store made before the tag was set
                    client.set_experiment_tag(experiment_id, key, value)
        else:
            # A local SQLite store keeps its artifacts beside it. Left to MLflow, they would go to ./mlruns
            # of whatever folder the CLI was started in (a store named by MLFLOW_TRACKING_URI did that).
            # A server places them itself.
            database = sqlite_database(uri)
            location = (database.parent / ARTIFACT_FOLDER).as_uri() if database is not None else None
            experiment_id = _create_experiment(client, experiment, location)
    stale = _stale_runs(client, experiment_id, output)
    run = client.create_run(
        experiment_id,
        run_name=f"{tool} {output.name}",
        tags={
            "stride.tool": tool,
            "stride.version": __version__,
            "stride.output.uri": output.resolve().as_uri(),
            **({"stride.previous_run_ids": ",".join(stale)} if stale else {}),
        },
    )
    run_id = run.info.run_id
    params = [Param(key, str(value)[:MAX_PARAM_CHARS]) for key, value in flatten(config).items()]
    for start in range(0, len(params), 100):
        client.log_batch(run_id, params=params[start : start + 100])
    return client, run_id


def _create_experiment(client: MlflowClient, name: str, location: str | None) -> str:
    """Create the experiment, or take the one another CLI created a moment earlier on the same server (the
    file lock covers only a local store; on a server the second create answers RESOURCE_ALREADY_EXISTS)."""
    try:
        return str(client.create_experiment(name, artifact_location=location, tags=EXPERIMENT_TAGS))
    except Exception:
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return str(found.experiment_id)


@contextmanager
def _first_use_lock(uri: str) -> Iterator[None]:
    database = sqlite_database(uri)
    if database is None:
        yield
        return
    lock = FileLock(f"{database}.lock")
    try:
        with lock.acquire(timeout=120):
            yield
    except Timeout:
        raise StrideError(
            f"{lock.lock_file}: another process has held the tracking store's lock for 120 s; if none runs, "
            f"delete the lock file. Many concurrent runs belong on a tracking server (MLFLOW_TRACKING_URI)"
        ) from None


def _stale_runs(client: MlflowClient, experiment_id: str, output: Path) -> list[str]:
    """Close the runs of this output left RUNNING by a killed process (kill -9) as KILLED.

    A CLI run of one output at a time is the rule (its work folder is locked by its fingerprint), so a run
    of the same output still RUNNING when a new one starts belongs to a process that died.
    """
    uri = output.resolve().as_uri().replace("'", "\\'")
    found = client.search_runs(
        [experiment_id], filter_string=f"tags.`stride.output.uri` = '{uri}' and attributes.status = 'RUNNING'"
    )
    stale = [run.info.run_id for run in found]
    for run_id in stale:
        client.set_terminated(run_id, "KILLED")
        log.warning(
            "closed run %s of %s, left RUNNING by a process that was killed, as KILLED", run_id, output
        )
    return stale
