"""The direct chunk-file reader returns exactly what zarr's own selection returns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import zarr
from zarr.codecs import GzipCodec, ZstdCodec

from stride_stats.sources import ZarrSource, read_chunk_files


def test_chunk_files_read_as_zarr_reads_them(tmp_path: Path) -> None:
    # Chunks of 2 steps and 2 channels with partial edge chunks in every dimension, and one chunk deleted.
    values = np.random.default_rng(0).normal(size=(7, 3, 10, 13)).astype(np.float32)
    group = zarr.open_group(tmp_path / "s.zarr", mode="w")
    array = group.create_array(
        "target",
        shape=values.shape,
        chunks=(2, 2, 4, 5),
        dtype="float32",
        compressors=ZstdCodec(level=0),
        fill_value=np.nan,
    )
    array[:] = values
    (tmp_path / "s.zarr" / "target" / "c" / "1" / "1" / "2" / "0").unlink()  # steps 2-3, channel 2, y 8-9
    times = np.array([0, 2, 3, 6])
    for channel in range(3):
        expected = array.get_orthogonal_selection((times, channel))
        found = read_chunk_files(array, times, channel)
        assert found is not None
        np.testing.assert_array_equal(found, expected)
    assert np.isnan(read_chunk_files(array, np.array([2]), 2)[0, 8:, :5]).all()
    source = ZarrSource(str(tmp_path / "s.zarr"), "target", 1, np.arange(1, 6))
    np.testing.assert_array_equal(source.read(np.array([0, 1, 4])), values[[1, 2, 5], 1])


def test_another_codec_falls_back_to_zarr_and_no_codec_is_read_raw(tmp_path: Path) -> None:
    values = np.arange(2 * 1 * 4 * 4, dtype=np.float32).reshape(2, 1, 4, 4)
    group = zarr.open_group(tmp_path / "s.zarr", mode="w")
    for name, compressors in (("gzip", GzipCodec()), ("raw", None)):
        array = group.create_array(
            name, shape=values.shape, chunks=(1, 1, 4, 4), dtype="float32", compressors=compressors
        )
        array[:] = values
        source = ZarrSource(str(tmp_path / "s.zarr"), name, 0, np.arange(2))
        np.testing.assert_array_equal(source.read(np.arange(2)), values[:, 0])
        assert (read_chunk_files(array, np.arange(2), 0) is None) == (name == "gzip")
