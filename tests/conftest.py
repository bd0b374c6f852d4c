"""End-to-end fixture: run the six CLIs once, as a user would, on the real ERA5-UK sample (smoke budget)."""

from __future__ import annotations

import atexit
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("STRIDE_DATA") or REPO.parent / "shared" / "data")
ERA5 = "era5_uk_t2m_2019-03.nc"
CLIS = ("stride-data", "stride-stats", "stride-train", "stride-generate", "stride-eval", "stride-plot")


def _tool_folder() -> Path:
    """The folder holding the six CLIs and the other tools the tests run (mlflow, shellcheck, ...).

    With the packages installed (make test) that is the interpreter's bin/. Under `pants test` the sources
    are only on sys.path and nothing is installed, so each CLI gets a launcher that runs its entry point with
    this sys.path, beside links to the interpreter's own tools.
    """
    installed = Path(sys.executable).parent
    if (installed / CLIS[0]).exists():
        return installed
    folder = Path(tempfile.mkdtemp(prefix="stride-clis-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    for tool in installed.iterdir():
        (folder / tool.name).symlink_to(tool)
    paths = [os.path.abspath(p) for p in sys.path if p]
    for cli in CLIS:
        module = cli.replace("-", "_") + ".cli"
        launcher = folder / cli
        launcher.write_text(
            f"#!{sys.executable}\nimport sys\nsys.path[:0] = {paths!r}\n"
            f"from {module} import main\nsys.exit(main())\n"
        )
        launcher.chmod(0o755)
    return folder


BIN = _tool_folder()


@dataclass
class Chain:
    out: Path
    env: dict[str, str]
    logs: dict[str, str] = field(default_factory=dict)

    def path(self, name: str) -> Path:
        return self.out / name


def load_script(path: Path, name: str) -> ModuleType:
    """Import a repository script (bench/, ci/) by path as module `name`.

    The script's folder is on sys.path while it loads, since scripts import their siblings by name, and the
    module is registered in sys.modules first, since dataclasses resolve their annotations through it."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None, f"cannot load {path}"
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(path.parent))
    return module


def run_cli(args: list[str], env: dict[str, str], cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    """Run one CLI as a subprocess, as a shell script would."""
    return subprocess.run(
        [str(BIN / args[0]), *args[1:]],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


@pytest.fixture(scope="session")
def cli_env() -> dict[str, str]:
    if not (DATA / ERA5).is_file():
        pytest.fail(
            f"real sample data missing: {DATA / ERA5}; set STRIDE_DATA to the folder holding it (public sources: "
            f"pydata/xarray-data era5-2mt-2019-03-uk.grib and kardaneh/IPSL-AID ERA5_const_sfc_variables.nc)"
        )
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env.update(STRIDE_DATA=str(DATA), STRIDE_PROGRESS="0", PYTHONWARNINGS="ignore::DeprecationWarning")
    return env


# The smoke-budget model of the end-to-end chains: 16 channels, two levels, attention at the lower one.
SMOKE_MODEL = [
    "--set",
    "model.model_channels=16",
    "--set",
    "model.channel_mult=[1,2]",
    "--set",
    "model.attn_resolutions=[1]",
    "--set",
    "optim.warmup_steps=5",
]


def chain_commands(out: Path, *, data: list[str], train: list[str], generate: list[str]) -> list[list[str]]:
    """The six CLIs writing into `out`; `data`, `train` and `generate` add each step's own options."""
    return [
        ["stride-data", "build", *data, "--out", f"{out}/dataset.zarr"],
        ["stride-stats", "--dataset", f"{out}/dataset.zarr", "--out", f"{out}/stats.parquet"],
        [
            "stride-train",
            *train,
            "--dataset",
            f"{out}/dataset.zarr",
            "--stats",
            f"{out}/stats.parquet",
            "--out",
            f"{out}/checkpoint",
        ],
        [
            "stride-generate",
            *generate,
            "--checkpoint",
            f"{out}/checkpoint",
            "--dataset",
            f"{out}/dataset.zarr",
            "--out",
            f"{out}/samples.zarr",
        ],
        ["stride-eval", "--samples", f"{out}/samples.zarr", "--out", f"{out}/metrics.parquet"],
        [
            "stride-plot",
            "--samples",
            f"{out}/samples.zarr",
            "--metrics",
            f"{out}/metrics.parquet",
            "--out",
            f"{out}/plots",
            "--n-dates",
            "2",
        ],
    ]


def small_generation(chain: Chain, out: Path, *extra: str) -> list[str]:
    """A `stride-generate` of 2 members in 4 steps from the chain's checkpoint and dataset (CLI name first)."""
    return [
        "stride-generate",
        "--config",
        "configs/generate_era5_uk.yaml",
        "--checkpoint",
        str(chain.path("checkpoint")),
        "--dataset",
        str(chain.path("dataset.zarr")),
        "--out",
        str(out),
        "--members",
        "2",
        "--steps",
        "4",
        *extra,
    ]


def run_chain(commands: list[list[str]], env: dict[str, str]) -> dict[str, str]:
    """Run the commands in order, failing with the tool's own stderr; returns each tool's log."""
    logs = {}
    for args in commands:
        completed = run_cli(args, env)
        logs[args[0]] = completed.stderr
        if completed.returncode != 0:
            pytest.fail(f"{args[0]} exited {completed.returncode}:\n{completed.stderr[-3000:]}")
    return logs


@pytest.fixture(scope="session")
def chain(tmp_path_factory: pytest.TempPathFactory, cli_env: dict[str, str]) -> Chain:
    """The demo chain on ERA5-UK at smoke budget: a small model, 30 steps, 3 members on 6 test dates."""
    out = tmp_path_factory.mktemp("chain")
    commands = chain_commands(
        out,
        data=["--config", "configs/era5_uk.yaml"],
        train=[
            "--config",
            "configs/train_era5_uk.yaml",
            "--steps",
            "30",
            *SMOKE_MODEL,
            "--set",
            "training.val_every=15",
            "--set",
            "training.batch_size=16",
        ],
        generate=[
            "--config",
            "configs/generate_era5_uk.yaml",
            "--members",
            "3",
            "--steps",
            "6",
            "--set",
            "date_stride=24",
        ],
    )
    return Chain(out=out, env=cli_env, logs=run_chain(commands, cli_env))
