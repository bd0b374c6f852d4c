"""One MLflow run per CLI invocation: flattened params, metrics, lineage tags, small artifacts."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stride_contracts import ArtifactHeader, InputRef, ProducerRef
from stride_core import __version__
from stride_core.config import flatten

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

MAX_PARAM_CHARS = 500
TRACKING_DB = "mlflow.db"
ARTIFACT_FOLDER = "mlartifacts"


def is_main_process() -> bool:
    """False in the non-zero ranks of a torchrun/srun job: only rank 0 tracks and writes artifacts."""
    return int(os.environ.get("RANK", "0")) == 0


def default_tracking_uri(output: Path) -> str:
    """`MLFLOW_TRACKING_URI` if set, else an SQLite store beside the output artifact."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{output.resolve().parent / TRACKING_DB}"


class RunContext:
    """What a tool sees of its MLflow run: lineage, metrics, artifacts (no-ops without a client)."""

    def __init__(self, tool: str, output: Path, client: MlflowClient | None, run_id: str | None) -> None:
        self.tool = tool
        self.output = output
        self.run_id = run_id
        self.inputs: list[InputRef] = []
        self._client = client

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
        if self._client is None or self.run_id is None:
            return
        for key, value in tags.items():
            self._client.set_tag(self.run_id, key, value)

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        from mlflow.entities import Metric

        if self._client is None or self.run_id is None:
            return
        now = int(datetime.now(UTC).timestamp() * 1000)
        batch = [Metric(key, float(value), now, step or 0) for key, value in metrics.items()]
        if batch:
            self._client.log_batch(self.run_id, metrics=batch)

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        if self._client is None or self.run_id is None:
            return
        self._client.log_artifact(self.run_id, str(path), artifact_path)


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
    from mlflow.entities import Param
    from mlflow.tracking import MlflowClient

    uri = default_tracking_uri(output)
    client = MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name(experiment)
    if found is not None:
        experiment_id = found.experiment_id
    else:
        location = None
        if not os.environ.get("MLFLOW_TRACKING_URI"):
            location = (output.resolve().parent / ARTIFACT_FOLDER).as_uri()
        experiment_id = client.create_experiment(experiment, artifact_location=location)
    run = client.create_run(
        experiment_id,
        run_name=f"{tool} {output.name}",
        tags={
            "stride.tool": tool,
            "stride.version": __version__,
            "stride.output.uri": output.resolve().as_uri(),
        },
    )
    run_id = run.info.run_id
    params = [Param(key, str(value)[:MAX_PARAM_CHARS]) for key, value in flatten(config).items()]
    for start in range(0, len(params), 100):
        client.log_batch(run_id, params=params[start : start + 100])
    context = RunContext(tool, output, client, run_id)
    try:
        yield context
    except KeyboardInterrupt:
        client.set_terminated(run_id, "KILLED")
        raise
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        raise
    client.set_terminated(run_id, "FINISHED")
