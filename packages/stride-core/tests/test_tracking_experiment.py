from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from stride_core.tracking import ARTIFACT_FOLDER, TRACKING_DB, tracked_run


@pytest.fixture(autouse=True)
def local_store(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


def test_new_and_older_experiments_are_marked_as_model_training(tmp_path: Path) -> None:
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / TRACKING_DB}")
    client.create_experiment("older")  # made before STRIDE tagged its experiments
    for name in ("older", "new"):
        with tracked_run("stride-test", {"a": 1}, tmp_path / "out", name):
            pass
        experiment = client.get_experiment_by_name(name)
        assert experiment is not None
        assert experiment.tags.get("mlflow.experimentKind") == "custom_model_development", name


def test_a_store_named_by_the_environment_keeps_artifacts_beside_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, elsewhere = tmp_path / "store", tmp_path / "started-here"
    store.mkdir()
    elsewhere.mkdir()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store / TRACKING_DB}")
    monkeypatch.chdir(elsewhere)
    artifact = tmp_path / "table.txt"
    artifact.write_text("rows")
    with tracked_run("stride-test", {"a": 1}, tmp_path / "out", "env-store") as run:
        run.log_artifact(artifact)
    assert list(elsewhere.iterdir()) == []  # MLflow's default would have made ./mlruns here
    assert [p.name for p in (store / ARTIFACT_FOLDER).rglob("table.txt")] == ["table.txt"]
