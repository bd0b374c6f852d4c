from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from pydantic import Field

from stride_core.cli import Option, Tool, run_tool
from stride_core.config import StrictConfig
from stride_core.errors import InputDataError
from stride_core.tracking import RunContext


class ToyConfig(StrictConfig):
    output: Path
    size: int = Field(default=2, ge=1)
    fail: bool = False


def toy_run(config: ToyConfig, run: RunContext) -> None:
    if config.fail:
        raise InputDataError(f"{config.output}: cannot make it; fix the input")
    config.output.write_text("x" * config.size)
    run.log_metrics({"size": config.size})


TOOL = Tool(
    name="stride-toy",
    summary="toy",
    example="stride-toy --out x",
    config_model=ToyConfig,
    run=toy_run,
    options=(Option("--out", "output", "output file", Path), Option("--size", "size", "size", int)),
)


def test_success_tracks_one_run_and_writes_resolved_config(tmp_path: Path) -> None:
    out = tmp_path / "result.txt"
    assert run_tool(TOOL, ["--out", str(out), "--size", "3"]) == 0
    assert out.read_text() == "xxx"
    assert "size: 3" in (tmp_path / "result.txt.resolved.yaml").read_text()
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("stride").experiment_id])
    assert len(runs) == 1
    run = runs[0]
    assert run.info.status == "FINISHED"
    assert run.data.tags["stride.tool"] == "stride-toy" and run.data.params["size"] == "3"
    assert run.data.metrics["size"] == 3


def test_user_errors_exit_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_tool(TOOL, ["--out", str(tmp_path / "o"), "--set", "colour=red"]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err == "stride-toy: error: --set colour=red: unknown key 'colour' (allowed here: output, size, fail)"
    )
    assert run_tool(TOOL, ["--out", str(tmp_path / "o"), "--set", "fail=true"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "fix the input" in err and "Traceback" not in err
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("stride").experiment_id])
    assert [r.info.status for r in runs] == ["FAILED"]


def test_dry_run_prints_config_and_does_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_tool(TOOL, ["--out", str(tmp_path / "o"), "--dry-run"]) == 0
    assert "size: 2" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []


def test_non_zero_ranks_do_not_track(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RANK", "1")
    assert run_tool(TOOL, ["--out", str(tmp_path / "o.txt")]) == 0
    assert (tmp_path / "o.txt").read_text() == "xx"
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "o.txt.resolved.yaml").exists()
