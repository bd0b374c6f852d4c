"""Shared fixtures for stride-core tests: a throwaway MLflow store and a minimal valid manifest."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from stride_contracts import ProducerRef
from stride_contracts.stats import StatsManifest


@pytest.fixture(autouse=True)
def isolated_tracking(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


@pytest.fixture
def producer() -> ProducerRef:
    return ProducerRef(tool="test", stride_version="0", mlflow_run_id=None, created_utc=datetime.now(UTC))


@pytest.fixture
def stats_manifest(producer: ProducerRef) -> StatsManifest:
    return StatsManifest(producer=producer, n_times=3)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path
