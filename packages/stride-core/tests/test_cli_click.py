"""What the click layer adds: verbs in groups, a default verb, --version, shell completion, one-line usage errors."""

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from pydantic import Field

from stride_core import __version__
from stride_core.cli import Option, Tool, command, group, invoke
from stride_core.config import StrictConfig
from stride_core.tracking import RunContext


class MakeConfig(StrictConfig):
    output: Path
    words: list[str] = Field(default_factory=list)


def make(config: MakeConfig, run: RunContext) -> None:
    config.output.write_text(" ".join(config.words))


MAKE = Tool(
    name="stride-toy",
    summary="make a file",
    example="stride-toy --out x --word a --word b",
    config_model=MakeConfig,
    run=make,
    options=(
        Option("--out", "output", "output file", Path),
        Option("--word", "words", "a word", repeat=True),
    ),
)
COPY = Tool(
    name="stride-toy copy",
    summary="copy a file",
    example="stride-toy copy --out y",
    config_model=MakeConfig,
    run=make,
    options=(Option("--out", "output", "output file", Path),),
)
CLI = group(
    "stride-toy", "toys", "stride-toy --out x", [command(MAKE, "make"), command(COPY, "copy")], "make"
)


def test_the_default_verb_runs_without_its_name(tmp_path: Path) -> None:
    assert invoke(CLI, ["--out", str(tmp_path / "a.txt"), "--word", "x", "--word", "y"]) == 0
    assert (tmp_path / "a.txt").read_text() == "x y"
    assert invoke(CLI, ["make", "--out", str(tmp_path / "b.txt"), "--word", "z"]) == 0
    assert (tmp_path / "b.txt").read_text() == "z"
    assert invoke(CLI, ["copy", "--out", str(tmp_path / "c.txt")]) == 0
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("stride").experiment_id])
    assert sorted(run.data.tags["stride.tool"] for run in runs) == [
        "stride-toy",
        "stride-toy",
        "stride-toy copy",
    ]


def test_experiment_comes_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRIDE_EXPERIMENT", "from-env")
    assert invoke(command(MAKE), ["--out", str(tmp_path / "a.txt")]) == 0
    assert invoke(command(MAKE), ["--out", str(tmp_path / "b.txt"), "--experiment", "from-flag"]) == 0
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert {e.name for e in client.search_experiments()} >= {"from-env", "from-flag"}


def test_version_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert invoke(CLI, ["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"stride-toy {__version__}"
    assert invoke(CLI, ["copy", "--version"]) == 0
    assert capsys.readouterr().out.strip() == f"stride-toy copy {__version__}"
    assert invoke(CLI, ["make", "--help"]) == 0
    out = capsys.readouterr().out
    assert "(config: words; default: [])" in out
    assert "example:\n    stride-toy --out x --word a --word b" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["copy", "--word", "x"], "stride-toy copy: error: No such option '--word'"),
        (["--out"], "stride-toy: error: Option '--out' requires an argument."),
        (["make", "extra"], "stride-toy make: error: Got unexpected extra argument (extra)"),
    ],
)
def test_usage_errors_are_one_line_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert invoke(CLI, argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(message) and err.count("\n") == 0, err


def test_a_group_without_a_verb_shows_its_help_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    plain = group("stride-toy", "toys", "stride-toy make --out x", [command(MAKE, "make")])
    assert invoke(plain, []) == 2
    assert "Commands:" in capsys.readouterr().err


def test_shell_completion_lists_options_and_verbs(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("_STRIDE_TOY_COMPLETE", "bash_complete")
    monkeypatch.setenv("COMP_WORDS", "stride-toy co")
    monkeypatch.setenv("COMP_CWORD", "1")
    with pytest.raises(SystemExit) as stop:
        invoke(CLI, [])
    assert stop.value.code == 0 and capsys.readouterr().out.split() == ["plain,copy"]
    monkeypatch.setenv("COMP_WORDS", "stride-toy make --wo")
    monkeypatch.setenv("COMP_CWORD", "2")
    with pytest.raises(SystemExit):
        invoke(CLI, [])
    assert capsys.readouterr().out.split() == ["plain,--word"]
    monkeypatch.setenv("_STRIDE_TOY_COMPLETE", "bash_source")
    with pytest.raises(SystemExit):
        invoke(CLI, [])
    assert "complete -o nosort -F _stride_toy_completion stride-toy" in capsys.readouterr().out
