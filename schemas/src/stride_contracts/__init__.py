"""STRIDE artifact contracts: the pydantic models every CLI writes and reads."""

from stride_contracts.base import ArtifactHeader, InputRef, ProducerRef
from stride_contracts.checkpoint import CheckpointManifest, FeatureSpec, ModelSpec, TransformSpec
from stride_contracts.dataset import DatasetManifest, SplitRange, VariableRef
from stride_contracts.metrics import METRIC_QUALIFIERS, METRICS_COLUMNS, MetricRow, MetricsManifest
from stride_contracts.samples import SamplerSettings, SamplesManifest
from stride_contracts.stats import STATS_COLUMNS, StatsManifest, StatsRow

CONTRACTS: dict[str, type[ArtifactHeader]] = {
    model.model_fields["contract"].default: model
    for model in (DatasetManifest, StatsManifest, CheckpointManifest, SamplesManifest, MetricsManifest)
}
"""Contract name -> manifest model, for every artifact STRIDE exchanges."""

__all__ = [
    "CONTRACTS",
    "METRICS_COLUMNS",
    "METRIC_QUALIFIERS",
    "STATS_COLUMNS",
    "ArtifactHeader",
    "CheckpointManifest",
    "DatasetManifest",
    "FeatureSpec",
    "InputRef",
    "MetricRow",
    "MetricsManifest",
    "ModelSpec",
    "ProducerRef",
    "SamplerSettings",
    "SamplesManifest",
    "SplitRange",
    "StatsManifest",
    "StatsRow",
    "TransformSpec",
    "VariableRef",
]
