"""Zarr chunk shapes of dataset.zarr, chosen so that a random patch of a few time steps reads few, small chunks."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_TILE = 128
"""Edge of a spatial chunk in grid cells. A random 128x128 HR crop then touches at most 2x2 target chunks of
64 KiB each (float32); measured on a 512x512 store, 64-cell tiles were slower (more chunks, zarr's per-chunk
overhead) and whole fields far slower (a whole field is decoded to use a small part of it)."""


@dataclass(frozen=True)
class DatasetChunks:
    """Chunk shape of each dataset array (dims as in stride_contracts.dataset.DATASET_ARRAYS)."""

    target: tuple[int, int, int, int]
    cond_dynamic: tuple[int, int, int, int]
    cond_static: tuple[int, int, int]


def spatial_chunk(height: int, width: int, tile: int) -> tuple[int, int]:
    """A field whose cells fit in two tiles is one chunk (whole rows); a larger one is cut into tile x tile
    squares (the last row/column of chunks is partial)."""
    if height * width <= 2 * tile * tile:
        return height, width
    return min(height, tile), min(width, tile)


def dataset_chunks(
    target_shape: tuple[int, ...],
    dynamic_shape: tuple[int, ...],
    static_shape: tuple[int, ...],
    *,
    tile: int = DEFAULT_TILE,
    time_steps: int = 1,
) -> DatasetChunks:
    """Chunks for target [time, C_out, H, W], cond_dynamic [time, C_dyn, h, w] and cond_static [C_s, H, W].

    `time_steps` per chunk (1: a sample reads only the steps it uses); every variable of a role shares a
    chunk, since a sample always reads all of them. The LR grid uses the same tile in LR cells, so an LR chunk
    covers factor^2 times the area of an HR one: a sample's T LR boxes usually sit in one chunk per step.
    Statics are read once per process, so they are chunked for size, not for patches.
    """
    if tile < 1 or time_steps < 1:
        raise ValueError(f"tile {tile} and time_steps {time_steps} must be >= 1")
    if len(target_shape) != 4 or len(dynamic_shape) != 4 or len(static_shape) != 3:
        raise ValueError(
            f"expected 4-D, 4-D and 3-D shapes, got {target_shape}, {dynamic_shape}, {static_shape}"
        )
    target_hr, dynamic_lr, static_hr = (
        (target_shape[2], target_shape[3]),
        (dynamic_shape[2], dynamic_shape[3]),
        (static_shape[1], static_shape[2]),
    )
    n_times = max(1, min(time_steps, target_shape[0]))
    return DatasetChunks(
        target=(n_times, max(1, target_shape[1]), *spatial_chunk(*target_hr, tile)),
        cond_dynamic=(n_times, max(1, dynamic_shape[1]), *spatial_chunk(*dynamic_lr, tile)),
        cond_static=(max(1, static_shape[0]), *spatial_chunk(*static_hr, 4 * tile)),
    )
