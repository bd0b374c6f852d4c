"""Where a variable's values come from, read as rows (time steps) in groups of many chunks per task.

A task reads its rows' chunks and decompresses each once into one array, so a task holds tens of MB of
values and hundreds of chunks, and the number of tasks (and Dask's per-task costs) stays small whatever the
chunk size of the store. For the layout stride-data writes (zarr v3 on a local disk, bytes + zstd codecs)
the chunk files are read and decoded directly with numcodecs' Zstd, which was measured at about 5x less CPU
per MB than zarr 3's own selection path on 64 KiB chunks (355 against 74 MB per CPU-second); any other
layout goes through zarr's selection. A missing chunk reads as the fill value, as in zarr.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import zarr
from numcodecs import Zstd
from zarr.codecs import BytesCodec, ZstdCodec
from zarr.core.metadata import ArrayV3Metadata
from zarr.storage import LocalStore


class Source(Protocol):
    """Values of one variable as `rows` rows of `row_size` entries each (row_size 1 for a 1-D array)."""

    @property
    def rows(self) -> int: ...

    @property
    def row_size(self) -> int: ...

    def read(self, rows: np.ndarray) -> np.ndarray:
        """The values of these rows (sorted indices), as an array whose first axis is the rows."""
        ...


@dataclass(frozen=True)
class ZarrSource:
    """Channel `channel` of array `array` in the zarr store at `path`, at the time indices `times` (sorted),
    or, for an array without a time axis (cond_static [C, H, W]), the whole channel as one row."""

    path: str
    array: str
    channel: int
    times: np.ndarray | None = None

    def _open(self) -> zarr.Array:
        # Opened in the task (a path travels to a worker; an open array need not pickle).
        array = zarr.open_group(Path(self.path), mode="r")[self.array]
        assert isinstance(array, zarr.Array)
        return array

    @property
    def rows(self) -> int:
        return 1 if self.times is None else int(self.times.size)

    @property
    def row_size(self) -> int:
        shape = self._open().shape
        return math.prod(shape[1:]) if self.times is None else math.prod(shape[2:])

    def read(self, rows: np.ndarray) -> np.ndarray:
        array = self._open()
        if self.times is None:
            return np.asarray(array[self.channel])[None]
        times = self.times[rows]
        raw = read_chunk_files(array, times, self.channel)
        if raw is not None:
            return raw
        if times.size and times[-1] - times[0] + 1 == times.size:  # contiguous: a plain slice
            return np.asarray(array[int(times[0]) : int(times[-1]) + 1, self.channel])
        return np.asarray(array.get_orthogonal_selection((times, self.channel)))


def read_chunk_files(array: zarr.Array, times: np.ndarray, channel: int) -> np.ndarray | None:
    """array[times, channel] ([T, C, H, W] array) from its chunk files, or None for another layout."""
    meta = array.metadata
    store = array.store_path.store
    if not isinstance(meta, ArrayV3Metadata) or not isinstance(store, LocalStore) or array.ndim != 4:
        return None
    codecs = meta.codecs
    if not codecs or not isinstance(codecs[0], BytesCodec) or len(codecs) > 2:
        return None
    if len(codecs) == 2 and not (isinstance(codecs[1], ZstdCodec) and not codecs[1].checksum):
        return None
    dtype = meta.data_type.to_native_dtype()
    if codecs[0].endian is not None:
        dtype = dtype.newbyteorder("<" if codecs[0].endian.value == "little" else ">")
    decode = Zstd().decode if len(codecs) == 2 else bytes
    root = Path(store.root) / array.store_path.path
    ct, cc, ch, cw = array.chunks
    _, _, height, width = array.shape
    out = np.empty((times.size, height, width), dtype=dtype.newbyteorder("="))
    for chunk_t in np.unique(times // ct):
        inside = np.flatnonzero(times // ct == chunk_t)
        local = times[inside] - chunk_t * ct
        for y in range(0, height, ch):
            for x in range(0, width, cw):
                key = meta.encode_chunk_key((int(chunk_t), channel // cc, y // ch, x // cw))
                try:
                    data = (root / key).read_bytes()
                except FileNotFoundError:
                    out[inside, y : y + ch, x : x + cw] = meta.fill_value
                    continue
                chunk = np.frombuffer(decode(data), dtype=dtype).reshape(ct, cc, ch, cw)
                block = chunk[local, channel % cc, : min(ch, height - y), : min(cw, width - x)]
                out[inside, y : y + ch, x : x + cw] = block
    return out


@dataclass(frozen=True)
class ArraySource:
    """An in-memory array (tests, small data): rows along its first axis."""

    values: np.ndarray

    @property
    def rows(self) -> int:
        return 1 if self.values.ndim == 0 else self.values.shape[0]

    @property
    def row_size(self) -> int:
        return math.prod(self.values.shape[1:])

    def read(self, rows: np.ndarray) -> np.ndarray:
        return self.values.reshape(1) if self.values.ndim == 0 else self.values[rows]


def row_groups(rows: int, row_size: int, task_values: int) -> list[np.ndarray]:
    """Consecutive row indices cut into groups of about `task_values` values (at least one row each)."""
    per_task = max(1, task_values // max(row_size, 1))
    return [np.arange(start, min(start + per_task, rows)) for start in range(0, rows, per_task)]


def pilot_rows(rows: int, row_size: int, pilot_values: int, min_rows: int) -> np.ndarray:
    """At least `min_rows` rows (or all) spread evenly over the rows, holding about `pilot_values` values."""
    wanted = max(min_rows, math.ceil(pilot_values / max(row_size, 1)))
    if wanted >= rows:
        return np.arange(rows)
    return np.unique(np.linspace(0, rows - 1, wanted).round().astype(np.int64))
