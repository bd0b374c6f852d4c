"""samples.zarr written as it is sampled: pre-created in the work folder, filled date chunk by date chunk.

The store is created once, with every array at its final shape and one Zarr chunk per date, inside the
hidden work folder (`.NAME.inprogress/`), so it never looks like a finished artifact. Each finished chunk
of dates is written with a region write (whole Zarr chunks only, so writers of different date chunks never
touch the same file) and then marked done; a chunk without its mark (a killed job's half-written one) is
simply written again. Once every chunk is done, the manifest is attached and the store is moved onto its
final name. Memory holds one chunk of dates, never the run.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
import zarr
from numpy.typing import NDArray

from stride_contracts import ArtifactHeader
from stride_core.artifacts import seal_zarr_store
from stride_core.atomic import publish
from stride_core.metrics import probability_matched_mean

CREATED = "created"
"""Mark written once the store exists with all its arrays (a job killed while creating it starts over)."""


@dataclass(frozen=True)
class StoreLayout:
    """What a samples store holds, known before sampling starts."""

    times: Any
    """The dates (pandas or cftime index; written with xarray's CF time encoding, calendar kept)."""
    seeds: NDArray[np.int64]
    """[date, member]."""
    target_names: Sequence[str]
    dynamic_names: Sequence[str]
    static_names: Sequence[str]
    hr_shape: tuple[int, int]
    lr_shape: tuple[int, int]
    cond_static: NDArray[np.float32]
    coords: dict[str, tuple[tuple[str, ...], NDArray[Any]]]
    has_target: bool

    def arrays(self) -> dict[str, tuple[tuple[str, ...], tuple[int, ...]]]:
        """The per-date arrays: name -> (dims, shape)."""
        n, members = self.seeds.shape
        field = (n, len(self.target_names), *self.hr_shape)
        arrays = {
            "members": (("time", "member", "var", "y", "x"), (n, members, *field[1:])),
            "pmm": (("time", "var", "y", "x"), field),
            "mean": (("time", "var", "y", "x"), field),
            "std": (("time", "var", "y", "x"), field),
            "cond_dynamic": (
                ("time", "dynamic_var", "y_lr", "x_lr"),
                (n, len(self.dynamic_names), *self.lr_shape),
            ),
        }
        if self.has_target:
            arrays["target"] = (("time", "var", "y", "x"), field)
        return arrays


def ensemble_fields(members: NDArray[np.float32]) -> dict[str, NDArray[np.float32]]:
    """members [dates, M, C, H, W] and their PMM, mean and standard deviation over members.

    std uses ddof = 1 (the unbiased ensemble variance that spread-skill compares with the error), 0 for
    one member.
    """
    values = members.astype(np.float64)
    ddof = 1 if members.shape[1] > 1 else 0
    return {
        "members": members.astype(np.float32),
        "pmm": probability_matched_mean(members, member_axis=1).astype(np.float32),
        "mean": values.mean(axis=1).astype(np.float32),
        "std": values.std(axis=1, ddof=ddof).astype(np.float32),
    }


class SamplesStore:
    """The samples store under construction in a work folder."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.path = work / "samples.zarr"
        self.marks = work / "done"

    def create(self, layout: StoreLayout) -> None:
        """Create the store (again, if a previous job died while creating it)."""
        if (self.work / CREATED).is_file():
            return
        base = xr.Dataset(
            {
                "cond_static": (("static_var", "y", "x"), layout.cond_static),
                "seeds": (("time", "member"), layout.seeds),
            },
            coords={
                "time": layout.times,
                "member": np.arange(layout.seeds.shape[1]),
                "var": np.array(list(layout.target_names), dtype=object),
                "dynamic_var": np.array(list(layout.dynamic_names), dtype=object),
                "static_var": np.array(list(layout.static_names), dtype=object),
                **layout.coords,
            },
        )
        base.to_zarr(self.path, mode="w", consolidated=False, zarr_format=3)
        group = zarr.open_group(self.path, mode="r+")
        for name, (dims, shape) in layout.arrays().items():
            group.create_array(
                name,
                shape=shape,
                chunks=(1, *shape[1:]),
                dtype="float32",
                fill_value=np.nan,
                dimension_names=dims,
            )
        self.marks.mkdir(exist_ok=True)
        (self.work / CREATED).write_text("ok\n")

    def done(self, start: int) -> bool:
        return (self.marks / f"{start:06d}").is_file()

    def write(self, start: int, fields: dict[str, NDArray[np.float32]]) -> None:
        """Write dates start.. of each array (a region write), then mark the chunk done."""
        group = zarr.open_group(self.path, mode="r+")
        for name, values in fields.items():
            array = group[name]
            assert isinstance(array, zarr.Array)
            array[start : start + values.shape[0]] = values
        (self.marks / f"{start:06d}").write_text("ok\n")

    def pending(self, starts: Iterable[int]) -> list[int]:
        return [start for start in starts if not self.done(start)]

    def publish(self, manifest: ArtifactHeader, final: Path) -> None:
        """Attach the manifest and move the finished store onto its final name."""
        seal_zarr_store(self.path, manifest)
        publish(self.path, final)
