"""Fault injection: each case names the fault, runs the CLI as a user would, and checks the exit code, the one
line it prints, that no input changed and that no artifact is left looking complete."""

from __future__ import annotations

import hashlib
import shutil
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import BIN, REPO, Chain, run_cli, small_generation

pytestmark = pytest.mark.e2e


def tree_digest(path: Path) -> str:
    """SHA-256 over every file's relative path and bytes: any change to an input shows."""
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        digest.update(str(file.relative_to(path.parent)).encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()


def assert_one_line_failure(result: subprocess.CompletedProcess[str], *needles: str, code: int = 2) -> str:
    stderr = result.stderr.strip()
    assert result.returncode == code, stderr
    assert "Traceback" not in stderr, stderr
    last = stderr.splitlines()[-1]
    for needle in needles:
        assert needle in last, last
    return last


@pytest.fixture
def inputs(chain: Chain, tmp_path: Path) -> dict[str, Path]:
    """Copies of the chain's dataset and samples, so a destroyed input cannot spoil other tests."""
    copies = {}
    for name in ("dataset.zarr", "samples.zarr"):
        copies[name] = tmp_path / name
        shutil.copytree(chain.path(name), copies[name])
    return copies


# --- 1. An output that is, lies inside or contains an input -----------------------------------------------


@pytest.mark.parametrize(
    ("fault", "make_args", "needle"),
    [
        (
            "stats output is the dataset",
            lambda d, s, t: ["stride-stats", "--dataset", str(d), "--out", str(d)],
            "is the input dataset",
        ),
        (
            "stats output inside the dataset",
            lambda d, s, t: ["stride-stats", "--dataset", str(d), "--out", str(d / "stats.parquet")],
            "lies inside the input dataset",
        ),
        (
            "eval output is the samples",
            lambda d, s, t: ["stride-eval", "--samples", str(s), "--out", str(s)],
            "is the input samples",
        ),
        (
            "generate output is the dataset",
            lambda d, s, t: [
                "stride-generate",
                "--checkpoint",
                str(t),
                "--dataset",
                str(d),
                "--out",
                str(d),
            ],
            "is the input dataset",
        ),
        (
            "plot output contains the samples",
            lambda d, s, t: ["stride-plot", "--samples", str(s), "--out", str(s.parent)],
            "contains the input samples",
        ),
    ],
)
def test_output_never_replaces_an_input(
    chain: Chain, inputs: dict[str, Path], fault: str, make_args: object, needle: str
) -> None:
    dataset, samples = inputs["dataset.zarr"], inputs["samples.zarr"]
    before = {name: tree_digest(path) for name, path in inputs.items()}
    args = make_args(dataset, samples, chain.path("checkpoint"))  # type: ignore[operator]
    result = run_cli(args, chain.env)
    assert_one_line_failure(result, needle, "choose an output path outside the inputs")
    assert {name: tree_digest(path) for name, path in inputs.items()} == before, fault


def test_symlinked_output_is_followed(chain: Chain, inputs: dict[str, Path], tmp_path: Path) -> None:
    dataset = inputs["dataset.zarr"]
    link = tmp_path / "link.parquet"
    link.symlink_to(dataset)
    before = tree_digest(dataset)
    result = run_cli(["stride-stats", "--dataset", str(dataset), "--out", str(link)], chain.env)
    assert_one_line_failure(result, "is the input dataset")
    assert tree_digest(dataset) == before


# --- 2-4. The tracking store ---------------------------------------------------------------------------------


def test_unreachable_tracking_server_fails_fast_in_one_line(chain: Chain, tmp_path: Path) -> None:
    env = {**chain.env, "MLFLOW_TRACKING_URI": "http://127.0.0.1:9", "STRIDE_TRACKING_TIMEOUT": "3"}
    out = tmp_path / "stats.parquet"
    started = time.monotonic()
    result = run_cli(["stride-stats", "--dataset", str(chain.path("dataset.zarr")), "--out", str(out)], env)
    elapsed = time.monotonic() - started
    assert_one_line_failure(result, "http://127.0.0.1:9", "start it", "unset MLFLOW_TRACKING_URI")
    assert not out.exists()
    # Not a timing test: the bound only tells a silent hang (minutes of MLflow retries) from a fast failure.
    assert elapsed < 60, f"took {elapsed:.0f} s"


def test_tracking_database_that_cannot_be_opened(chain: Chain, tmp_path: Path) -> None:
    (tmp_path / "mlflow.db").mkdir()  # a folder where the SQLite file should be: opening it for writing fails
    out = tmp_path / "stats.parquet"
    result = run_cli(
        ["stride-stats", "--dataset", str(chain.path("dataset.zarr")), "--out", str(out)], chain.env
    )
    assert_one_line_failure(result, "mlflow.db", "cannot be written", "MLFLOW_TRACKING_URI")
    assert not out.exists()


@contextmanager
def small_tmpfs(folder: Path, size: str) -> Iterator[Path]:
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], check=False
    )
    if mounted.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root with CAP_SYS_ADMIN)")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def test_full_disk_under_the_tracking_store(chain: Chain, tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "full", "1m") as full:
        out = full / "stats.parquet"
        result = run_cli(
            ["stride-stats", "--dataset", str(chain.path("dataset.zarr")), "--out", str(out)], chain.env
        )
        assert_one_line_failure(result, "mlflow.db", "disk is full", "free space")
        assert not out.exists() and not [p for p in full.iterdir() if p.name.startswith(".stats.parquet")]


def test_concurrent_first_use_of_a_fresh_store(chain: Chain, tmp_path: Path) -> None:
    outs = [tmp_path / f"stats_{i}.parquet" for i in range(3)]
    procs = [
        subprocess.Popen(
            [str(BIN / "stride-stats"), "--dataset", str(chain.path("dataset.zarr")), "--out", str(out)],
            env=chain.env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for out in outs
    ]
    results = [(proc.wait(timeout=600), proc.stderr.read() if proc.stderr else "") for proc in procs]
    for code, stderr in results:
        assert code == 0, stderr[-2000:]
    rows = sqlite3.connect(tmp_path / "mlflow.db").execute("select status from runs").fetchall()
    assert sorted(status for (status,) in rows) == ["FINISHED"] * 3


def test_a_killed_run_is_closed_when_its_output_is_redone(chain: Chain, tmp_path: Path) -> None:
    out = tmp_path / "samples.zarr"
    args = small_generation(chain, out, "--set", "date_stride=24")
    proc = subprocess.Popen(
        [str(BIN / args[0]), *args[1:]],
        env=chain.env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    database = tmp_path / "mlflow.db"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if database.exists():
            try:
                if sqlite3.connect(database).execute("select count(*) from runs").fetchone()[0]:
                    break
            except sqlite3.Error:
                pass
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    result = run_cli(args, chain.env)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = dict(sqlite3.connect(database).execute("select run_uuid, status from runs").fetchall())
    assert sorted(rows.values()) == ["FINISHED", "KILLED"]
    killed = next(run for run, status in rows.items() if status == "KILLED")
    tags = dict(
        sqlite3.connect(database).execute("select key, value from tags where key = 'stride.previous_run_ids'")
    )
    assert tags == {"stride.previous_run_ids": killed}


# --- 8. The source of a bad value -----------------------------------------------------------------------------


def test_bad_set_value_names_set_not_the_file(chain: Chain, tmp_path: Path) -> None:
    result = run_cli(
        [
            "stride-train",
            "--config",
            "configs/train_era5_uk.yaml",
            "--set",
            "training.steps=five",
            "--dataset",
            str(chain.path("dataset.zarr")),
            "--stats",
            str(chain.path("stats.parquet")),
            "--out",
            str(tmp_path / "checkpoint"),
        ],
        chain.env,
    )
    last = assert_one_line_failure(result, "--set training.steps=five", "'training.steps'")
    assert "configs/train_era5_uk.yaml" not in last


# --- 5, 7. Damaged artifacts ----------------------------------------------------------------------------------


@pytest.mark.parametrize("array", ["cond_static", "target"])
@pytest.mark.parametrize("tool", ["stride-stats", "stride-generate"])
def test_array_missing_from_the_dataset(chain: Chain, inputs: dict[str, Path], tool: str, array: str) -> None:
    dataset = inputs["dataset.zarr"]
    shutil.rmtree(dataset / array)  # the store's consolidated metadata still lists it
    out = dataset.parent / "out"
    args = {
        "stride-stats": ["stride-stats", "--dataset", str(dataset), "--out", str(out)],
        "stride-generate": [
            "stride-generate",
            "--checkpoint",
            str(chain.path("checkpoint")),
            "--dataset",
            str(dataset),
            "--out",
            str(out),
        ],
    }[tool]
    assert_one_line_failure(run_cli(args, chain.env), f"missing array '{array}'", "stride-data build")
    assert not out.exists()


class Payload:
    """Any object a pickle may carry: torch's weights-only loader must refuse it without running it."""


def test_foreign_pickle_in_a_checkpoint(chain: Chain, tmp_path: Path) -> None:
    import torch

    checkpoint = tmp_path / "checkpoint"
    shutil.copytree(chain.path("checkpoint"), checkpoint)
    for weights in checkpoint.glob("*.pt"):
        torch.save({"payload": Payload()}, weights)
    out = tmp_path / "samples.zarr"
    args = ["stride-generate", "--checkpoint", str(checkpoint), "--dataset", str(chain.path("dataset.zarr"))]
    result = run_cli([*args, "--out", str(out)], chain.env)
    last = assert_one_line_failure(result, "not a STRIDE weights file, or it has been tampered with")
    assert "weights_only" not in result.stderr and last.count("stride-generate: error") == 1
    assert not out.exists()


# --- 10. A damaged store ---------------------------------------------------------------------------------


def test_a_deleted_chunk_is_detected(chain: Chain, inputs: dict[str, Path], tmp_path: Path) -> None:
    dataset = inputs["dataset.zarr"]
    # One time step of the target (chunks are one step each): it would read as NaN, like cells without data.
    chunk = dataset / "target" / "c" / "0"
    assert chunk.is_dir()
    shutil.rmtree(chunk)
    out = tmp_path / "stats.parquet"
    result = run_cli(["stride-stats", "--dataset", str(dataset), "--out", str(out)], chain.env)
    assert_one_line_failure(result, "target 't2m'", "the store is damaged", "stride-data build")
    assert not out.exists()
