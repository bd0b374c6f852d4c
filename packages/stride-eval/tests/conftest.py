"""A contract-valid samples.zarr writer for stride-eval's tests (small generated arrays)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from stride_contracts import InputRef, ProducerRef, SamplerSettings, SamplesManifest, VariableRef
from stride_contracts.checkpoint import TransformSet, VariableTransform, ZScoreSpec
from stride_contracts.dataset import GridInfo
from stride_core.artifacts import write_zarr_artifact
from stride_core.grid import coarsen_conservative, latitude_area_weights
from stride_core.metrics import probability_matched_mean


def write_samples(
    path: Path,
    members: np.ndarray,
    truth: np.ndarray,
    *,
    variable: str = "t2m",
    units: str = "K",
    factor: int = 4,
    model_kind: str = "edm",
    start: str = "2020-01-01",
    freq: str = "D",
    chunk_dates: int = 1,
    has_target: bool = True,
    lr_offset: float = 0.0,
    lineage: Path | None = None,
) -> Path:
    """samples.zarr of one target variable: members [time, member, H, W], truth [time, H, W] (NaN allowed)."""
    n_times, n_members, height, width = members.shape
    lat = np.linspace(58, 50, height)
    weights = np.broadcast_to(latitude_area_weights(lat)[:, None], (height, width))
    lr = coarsen_conservative(np.nan_to_num(truth, nan=float(np.nanmean(truth))), factor, weights) + lr_offset
    dataset = xr.Dataset(
        {
            "members": (("time", "member", "var", "y", "x"), members[:, :, None].astype(np.float32)),
            "pmm": (
                ("time", "var", "y", "x"),
                probability_matched_mean(members, member_axis=1)[:, None].astype(np.float32),
            ),
            "target": (("time", "var", "y", "x"), truth[:, None].astype(np.float32)),
            "cond_dynamic": (("time", "dynamic_var", "y_lr", "x_lr"), lr[:, None]),
            "cond_static": (
                ("static_var", "y", "x"),
                (np.arange(width) >= width // 2)[None, None].repeat(height, 1).astype(np.float32),
            ),
            "seeds": (("time", "member"), np.arange(n_times * n_members).reshape(n_times, n_members)),
        },
        coords={
            "time": pd.date_range(start, periods=n_times, freq=freq),
            "member": np.arange(n_members),
            "var": np.array([variable], dtype=object),
            "dynamic_var": np.array([variable], dtype=object),
            "static_var": np.array(["lsm"], dtype=object),
            "lat": ("y", lat),
            "lon": ("x", np.linspace(-10, 2, width)),
        },
    )
    dataset["members"].encoding["chunks"] = (chunk_dates, n_members, 1, height, width)
    ref = VariableRef(name=variable, units=units)
    transform = VariableTransform(variable=variable, transform=ZScoreSpec(mean=0.0, std=1.0))
    manifest = SamplesManifest(
        producer=ProducerRef(tool="test", stride_version="0", created_utc=datetime.now(UTC)),
        target=[ref],
        dynamic=[ref],
        static=[VariableRef(name="lsm", units="1")],
        grid=GridInfo(
            hr_shape=(height, width),
            lr_shape=(height // factor, width // factor),
            factor=factor,
            lat_descending=True,
        ),
        split="test",
        n_members=n_members,
        base_seed=0,
        sampler=SamplerSettings(),
        use_ema=True,
        model_kind=model_kind,
        checkpoint_step=1,
        transforms=TransformSet(target=[transform], dynamic=[transform], static=[]),
        has_target=has_target,
        inputs=[]
        if lineage is None
        else [InputRef(role="dataset", uri=lineage.resolve().as_uri(), contract="stride.dataset")],
    )
    if not has_target:  # as stride-generate writes an inference store: the target array all NaN
        dataset["target"] = xr.full_like(dataset["target"], np.nan)
    write_zarr_artifact(dataset, manifest, path)
    return path


@pytest.fixture(autouse=True)
def isolated_tracking(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("STRIDE_PROGRESS", "0")


@pytest.fixture(name="write_samples")
def write_samples_fixture() -> Callable[..., Path]:
    """`write_samples` for tests (a fixture, since another conftest.py shadows `import conftest`)."""
    return write_samples
