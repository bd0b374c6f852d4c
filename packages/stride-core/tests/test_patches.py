"""Anchored patch boxes: alignment, reproducible draws, rain-weighted positions, context boxes, chunk shapes."""

from __future__ import annotations

import numpy as np
import pytest

from stride_core.chunking import dataset_chunks, spatial_chunk
from stride_core.errors import ConfigError
from stride_core.patches import PatchLayout, RainWeighting, rain_position_weights, sample_rng


def test_boxes_are_aligned_to_the_lr_grid() -> None:
    layout = PatchLayout.build((64, 96), 4, (16, 24), margin=2)
    assert layout.lr_domain == (16, 24) and layout.lr_shape == (4, 6) and layout.n_positions == (13, 19)
    box = layout.box((3, 5))
    assert box.hr_origin == (12, 20) and box.hr_shape == (16, 24)
    assert box.hr_box == (slice(12, 28), slice(20, 44))
    assert box.context_origin == (1, 3) and box.context_shape == (8, 10)
    with pytest.raises(AssertionError, match="outside the domain"):
        layout.box((13, 0))


def test_whole_domain_is_one_position_at_the_origin() -> None:
    layout = PatchLayout.build((64, 96), 4, None)
    assert layout.lr_shape == (16, 24) and layout.n_positions == (1, 1)
    box = layout.draw(sample_rng(0, 5, 7))
    assert box.lr_origin == (0, 0) and box.hr_box == (slice(0, 64), slice(0, 96))


def test_bad_patch_shapes_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="not a positive multiple of the coarsening factor 4"):
        PatchLayout.build((64, 96), 4, (18, 24))
    with pytest.raises(ConfigError, match="exceeds the dataset's HR width 96"):
        PatchLayout.build((64, 96), 4, (16, 100))


def test_draws_depend_on_seed_draw_and_sample_only() -> None:
    layout = PatchLayout.build((64, 96), 4, (16, 24))
    first = [layout.draw(sample_rng(3, draw, 1)).lr_origin for draw in range(50)]
    again = [layout.draw(sample_rng(3, draw, 1)).lr_origin for draw in range(50)]
    assert first == again
    assert first != [layout.draw(sample_rng(4, draw, 1)).lr_origin for draw in range(50)]
    assert first != [layout.draw(sample_rng(3, draw, 2)).lr_origin for draw in range(50)]
    rows, cols = zip(*(layout.draw(sample_rng(0, draw, 0)).lr_origin for draw in range(2000)), strict=True)
    assert set(rows) == set(range(13)) and set(cols) == set(range(19))  # every position is reachable


def test_rain_weights_match_a_direct_count() -> None:
    rng = np.random.default_rng(0)
    field = rng.exponential(size=(10, 12)).astype(np.float32)
    field[2, 3] = np.nan  # counts as dry
    weights = rain_position_weights(field, (3, 4), threshold=1.0, floor=0.25)
    assert weights.shape == (8, 9)
    for row in range(8):
        for col in range(9):
            wet = np.nan_to_num(field[row : row + 3, col : col + 4]) > 1.0
            assert weights[row, col] == pytest.approx(0.25 + wet.mean())


def test_rain_weighting_prefers_wet_boxes() -> None:
    layout = PatchLayout.build((40, 40), 4, (8, 8))  # LR 10x10, patch 2x2 LR
    field = np.zeros((10, 10), np.float32)
    field[6:8, 1:3] = 5.0  # one wet 2x2 LR box at origin (6, 1)
    weights = rain_position_weights(field, layout.lr_shape, threshold=0.1, floor=0.01)
    origins = [layout.draw(sample_rng(0, draw, 0), weights).lr_origin for draw in range(400)]
    # Weights: 1.01 at (6, 1), 0.51 at its 4 edge neighbours, 0.26 at its 4 corners, 0.01 at the other 72:
    # P((6, 1)) = 1.01 / 4.81 = 0.21, P(a box with rain) = 4.09 / 4.81 = 0.85 (uniform: 9 / 81 = 0.11).
    assert 60 < origins.count((6, 1)) < 110
    assert sum(5 <= row <= 7 and 0 <= col <= 2 for row, col in origins) > 300
    dry = layout.draw(sample_rng(0, 0, 0), rain_position_weights(np.zeros((10, 10)), (2, 2), 0.1, 0.5))
    assert 0 <= dry.lr_origin[0] < 9
    assert RainWeighting(variable="precip").floor > 0


def test_context_box_is_clipped_to_the_domain() -> None:
    layout = PatchLayout.build((40, 48), 4, (8, 8), margin=3)  # LR 10x12, patch 2x2, context 8x8
    source, target = layout.box((0, 9)).context_in_domain(layout.lr_domain)
    # Context rows -3..4 -> 0..4 inside; cols 6..13 -> 6..11 inside.
    assert source == (slice(0, 5), slice(6, 12))
    assert target == (slice(3, 8), slice(0, 6))
    inside, where = layout.box((4, 4)).context_in_domain(layout.lr_domain)
    assert inside == (slice(1, 9), slice(1, 9)) and where == (slice(0, 8), slice(0, 8))


def test_chunks_tile_large_fields_and_keep_small_ones_whole() -> None:
    assert spatial_chunk(33, 49, 128) == (33, 49)
    assert spatial_chunk(512, 512, 128) == (128, 128)
    assert spatial_chunk(765, 100, 128) == (128, 100)
    chunks = dataset_chunks((2000, 2, 512, 512), (2000, 3, 128, 128), (2, 512, 512))
    assert chunks.target == (1, 2, 128, 128)
    assert chunks.cond_dynamic == (1, 3, 128, 128)  # 128x128 LR fits in two tiles: one chunk per step
    assert chunks.cond_static == (2, 512, 512)
    assert dataset_chunks((5, 1, 16, 24), (5, 1, 4, 6), (0, 16, 24), time_steps=24).target == (5, 1, 16, 24)
    assert dataset_chunks((5, 1, 16, 24), (5, 1, 4, 6), (0, 16, 24)).cond_static == (1, 16, 24)
