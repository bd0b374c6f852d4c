"""Run `stride-data build` from a config template filled with a source path."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from stride_data.cli import main

Build = Callable[..., int]
EXPERIMENT = "stride-data-tests"


@pytest.fixture(scope="session")
def mlflow_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One SQLite MLflow store for every build of the session: creating one (schema migrations) takes seconds."""
    from mlflow.tracking import MlflowClient

    folder = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    # An explicit artifact location: MLflow's default (./mlruns) would write into the working directory.
    MlflowClient(tracking_uri=uri).create_experiment(
        EXPERIMENT, artifact_location=(folder / "artifacts").as_uri()
    )
    return uri


@pytest.fixture(autouse=True)
def shared_mlflow_store(mlflow_store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_store)
    monkeypatch.setenv("STRIDE_EXPERIMENT", EXPERIMENT)


@pytest.fixture
def build_from(tmp_path: Path) -> Callable[[str], Build]:
    """`build_from(template)(source, *options)` writes the config and builds tmp_path/dataset.zarr."""

    def with_template(template: str) -> Build:
        def build(source: Path | list[Path], *extra: str) -> int:
            config = tmp_path / "data.yaml"
            paths = f"[{', '.join(map(str, source))}]" if isinstance(source, list) else str(source)
            config.write_text(template.format(path=paths))
            return main(["build", "--config", str(config), "--out", str(tmp_path / "dataset.zarr"), *extra])

        return build

    return with_template
