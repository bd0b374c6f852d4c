"""Fields every STRIDE artifact manifest carries: contract identity, producer and lineage."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class StrictModel(BaseModel):
    """Base for contract models: unknown keys are errors, values are re-validated on assignment."""

    # Non-finite floats (the sampler's S_max = inf) are written as JSON constants so they read back exactly.
    model_config = ConfigDict(extra="forbid", validate_assignment=True, ser_json_inf_nan="constants")


class ProducerRef(StrictModel):
    """Which tool wrote the artifact, and under which MLflow run."""

    tool: str = Field(description="CLI that wrote the artifact, e.g. 'stride-data'.")
    stride_version: str
    mlflow_run_id: str | None = Field(default=None, description="MLflow run that produced it.")
    created_utc: datetime


class InputRef(StrictModel):
    """An artifact this one was made from (lineage)."""

    role: str = Field(description="What the input was used as, e.g. 'dataset', 'checkpoint'.")
    uri: str = Field(description="Absolute file URI of the input artifact.")
    contract: str
    mlflow_run_id: str | None = None


class ArtifactHeader(StrictModel):
    """Common header: subclasses pin `contract` and `version` with Literal defaults."""

    contract: str
    version: int
    producer: ProducerRef
    inputs: list[InputRef] = Field(default_factory=list)
