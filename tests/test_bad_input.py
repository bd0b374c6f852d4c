"""Bad input never crashes: a non-zero exit, one line naming the file or field and the fix, no artifact left."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import zarr
from conftest import Chain, run_cli

pytestmark = pytest.mark.e2e


def assert_clean_failure(result: object, *needles: str, output: Path) -> None:
    stderr = result.stderr.strip()  # type: ignore[attr-defined]
    assert result.returncode == 2, stderr  # type: ignore[attr-defined]
    last = stderr.splitlines()[-1]
    assert "Traceback" not in stderr, stderr
    for needle in needles:
        assert needle in last, last
    assert not output.exists()
    assert not [p for p in output.parent.iterdir() if p.name.startswith(f".{output.name}.partial")]


def test_missing_path(chain: Chain, tmp_path: Path) -> None:
    out = tmp_path / "stats.parquet"
    result = run_cli(["stride-stats", "--dataset", str(tmp_path / "nope.zarr"), "--out", str(out)], chain.env)
    assert_clean_failure(result, "nope.zarr: not found", "stride-data build", output=out)


def test_artifact_of_the_wrong_contract(chain: Chain, tmp_path: Path) -> None:
    out = tmp_path / "stats.parquet"
    result = run_cli(
        ["stride-stats", "--dataset", str(chain.path("samples.zarr")), "--out", str(out)], chain.env
    )
    assert_clean_failure(
        result, "samples.zarr: is a 'stride.samples' artifact, expected 'stride.dataset'", output=out
    )
    out = tmp_path / "samples.zarr"
    result = run_cli(
        [
            "stride-generate",
            "--checkpoint",
            str(chain.path("stats.parquet")),
            "--dataset",
            str(chain.path("dataset.zarr")),
            "--out",
            str(out),
        ],
        chain.env,
    )
    assert_clean_failure(result, "stats.parquet", "expected a stride.checkpoint", output=out)


def test_artifact_of_the_wrong_version(chain: Chain, tmp_path: Path) -> None:
    dataset = tmp_path / "dataset.zarr"
    shutil.copytree(chain.path("dataset.zarr"), dataset)
    group = zarr.open_group(dataset, mode="r+")
    group.attrs["stride"] = {**group.attrs["stride"], "version": 2}
    out = tmp_path / "stats.parquet"
    result = run_cli(["stride-stats", "--dataset", str(dataset), "--out", str(out)], chain.env)
    assert_clean_failure(result, "contract version 2 is not supported", output=out)


def test_corrupt_zarr_store(chain: Chain, tmp_path: Path) -> None:
    samples = tmp_path / "samples.zarr"
    shutil.copytree(chain.path("samples.zarr"), samples)
    chunks = sorted(p for p in (samples / "members" / "c").rglob("*") if p.is_file())
    chunks[0].write_bytes(b"\x00garbage" * 3)
    out = tmp_path / "metrics.parquet"
    result = run_cli(["stride-eval", "--samples", str(samples), "--out", str(out)], chain.env)
    assert_clean_failure(
        result, "samples.zarr: array 'members' could not be read", "re-create it", output=out
    )
    (samples / "zarr.json").write_text("{ truncated")
    result = run_cli(["stride-eval", "--samples", str(samples), "--out", str(out)], chain.env)
    assert_clean_failure(result, "not a readable Zarr store", output=out)


def test_config_with_an_unknown_key(chain: Chain, tmp_path: Path) -> None:
    config = tmp_path / "train.yaml"
    config.write_text("training:\n  stepz: 10\n")
    out = tmp_path / "checkpoint"
    result = run_cli(
        [
            "stride-train",
            "--config",
            str(config),
            "--dataset",
            str(chain.path("dataset.zarr")),
            "--stats",
            str(chain.path("stats.parquet")),
            "--out",
            str(out),
        ],
        chain.env,
    )
    assert_clean_failure(
        result, "train.yaml: unknown key 'training.stepz'", "allowed here: steps", output=out
    )


def test_missing_data_folder_names_the_files(chain: Chain, tmp_path: Path) -> None:
    out = tmp_path / "dataset.zarr"
    result = run_cli(
        ["stride-data", "build", "--config", "configs/era5_uk.yaml", "--out", str(out)],
        {**chain.env, "STRIDE_DATA": str(tmp_path / "no-data")},
    )
    assert_clean_failure(result, "era5_uk_t2m_2019-03.nc", "set STRIDE_DATA", "xarray-data", output=out)


@pytest.mark.parametrize(
    "tool", ["stride-data", "stride-stats", "stride-train", "stride-generate", "stride-eval", "stride-plot"]
)
def test_help_shows_an_example(chain: Chain, tool: str) -> None:
    args = [tool, "build", "--help"] if tool == "stride-data" else [tool, "--help"]
    result = run_cli(args, chain.env)
    assert result.returncode == 0 and "example:" in result.stdout and tool in result.stdout
