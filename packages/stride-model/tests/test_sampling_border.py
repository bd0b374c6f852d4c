"""The mirrored margin of tiled generation (stride_model.sampling.border): the conditioning it builds against
numpy's own padding, and that it removes the zero-padding artefact of a network at the domain's edge."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from stride_contracts.checkpoint import ModelSpec
from stride_model import build_model
from stride_model.conditioning import Conditioning
from stride_model.sampling import auto_tiling, predict, sample_ensemble
from stride_model.sampling.border import crop, grow


def test_grow_mirrors_the_image_zero_pads_the_context_and_crop_undoes_it() -> None:
    image = torch.randn(2, 3, 16, 24)
    context = torch.randn(2, 5, 4 + 2, 6 + 2)  # LR 4x6 plus a context margin of 1 cell
    grown = grow(Conditioning(image, context=context), border=8, factor=4)
    reference = np.pad(image.numpy(), ((0, 0), (0, 0), (8, 8), (8, 8)), mode="reflect")
    np.testing.assert_array_equal(grown.image.numpy(), reference)
    assert grown.context is not None
    np.testing.assert_array_equal(
        grown.context.numpy(), np.pad(context.numpy(), ((0, 0), (0, 0), (2, 2), (2, 2)))
    )
    torch.testing.assert_close(crop(grown.image, 8), image, rtol=0, atol=0)


def box_filter(cond: Conditioning) -> Tensor:
    """A 3x3 mean of the first image channel with the zero padding of a convolution: one-sided at the edges."""
    return F.conv2d(cond.image[:, :1], torch.full((1, 1, 3, 3), 1 / 9), padding=1)


def test_the_margin_removes_a_zero_padding_artefact_at_the_domain_border() -> None:
    """On a constant field a zero-padded 3x3 mean gives 4/9 at the corners and 6/9 along the edges: the
    artefact of a patch-trained network at the domain's edge. With the margin every border pixel is inside
    its tile and sees the mirrored (here constant) field, so the border is exact; without it, it is not."""
    cond = Conditioning(torch.ones(1, 2, 32, 48))
    bare = auto_tiling((32, 48), (16, 24), 4, border=0)
    grown = auto_tiling((32, 48), (16, 24), 4)  # the default margin: the overlap, 4 px
    assert bare is not None and grown is not None and grown.border == grown.overlap == 4
    without = predict(box_filter, cond, bare)[0, 0]
    assert without[0, 0] == pytest.approx(4 / 9) and without[0, 30] == pytest.approx(6 / 9)

    with_margin = predict(box_filter, cond, grown)[0, 0]
    assert with_margin.shape == (32, 48)
    layout = grown.layout((32, 48))
    # Inner tile edges (in domain pixels) carry the blend's small share of a tile's own edge: leave them out.
    near_tile_edge = np.zeros((32, 48), dtype=bool)
    for axis, (starts, size) in enumerate(((layout.row_starts, 16), (layout.col_starts, 24))):
        for start in starts:
            for line in (start, start + size - 1):
                index: list[slice | int] = [slice(None), slice(None)]
                index[axis] = slice(max(line - grown.border - 1, 0), max(line - grown.border + 2, 0))
                near_tile_edge[tuple(index)] = True
    ring = np.zeros((32, 48), dtype=bool)
    ring[[0, -1], :] = ring[:, [0, -1]] = True
    checked = ring & ~near_tile_edge
    assert checked[[0, -1]].any() and checked[:, [0, -1]].any() and checked[0, 0]
    np.testing.assert_allclose(with_margin.numpy()[checked], 1.0, rtol=0, atol=1e-6)


def test_a_margin_keeps_the_network_on_tiles_and_returns_the_domain(
    tiny_spec: Callable[..., ModelSpec],
) -> None:
    spec = tiny_spec()  # trained on 16x24 patches
    model = build_model(spec).eval()
    seen: list[tuple[int, ...]] = []
    model.register_forward_pre_hook(lambda _, args: seen.append(tuple(args[0].shape[-2:])))
    cond = Conditioning(torch.randn(1, spec.in_channels, 32, 48))
    tiling = auto_tiling((32, 48), spec.hr_shape, spec.factor, border=8)
    assert tiling is not None and tiling.layout((32, 48)).domain == (48, 64)
    with torch.no_grad():
        members = sample_ensemble(model, cond, [[1, 2]], spec.out_channels, num_steps=2, tiling=tiling)
    assert members.shape == (1, 2, 1, 32, 48) and torch.isfinite(members).all()
    assert set(seen) == {(16, 24)}


@pytest.mark.parametrize("border", [3, 32])
def test_a_bad_margin_names_the_field(border: int) -> None:
    with pytest.raises(ValueError, match=r"^tiling\.border: .*; e\.g\. tiling\.border=[48]$"):
        auto_tiling((32, 48), (16, 24), 4, border=border)
