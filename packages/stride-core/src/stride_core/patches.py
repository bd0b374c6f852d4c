"""Anchored patches: LR-aligned boxes whose HR box is exactly factor x the LR box, drawn per sample from a seed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from stride_core.config import StrictConfig
from stride_core.errors import ConfigError


class RainWeighting(StrictConfig):
    """Draw patch positions with weight `floor` + the fraction of the box's LR cells above `threshold`.

    The field is the LR dynamic variable `variable` at the sample's anchor time, in physical units, so a wet
    box is up to (1 + floor) / floor times as likely as a dry one; `floor` keeps every position possible.
    """

    variable: str = Field(
        description="Dynamic (LR) variable whose field weights the positions, e.g. 'precip'."
    )
    threshold: float = Field(default=0.1, description="Wet above this value, in the variable's units.")
    floor: float = Field(default=0.1, gt=0, description="Weight of a box without any wet cell.")


Box = tuple[slice, slice]


def lr_patch_shape(hr_patch: tuple[int, int], factor: int, hr_domain: tuple[int, int]) -> tuple[int, int]:
    """The LR shape of an HR patch; the patch must be a multiple of the factor and fit in the domain."""
    for axis, size, domain in zip(("height", "width"), hr_patch, hr_domain, strict=True):
        if size < 1 or size % factor:
            raise ConfigError(
                f"patch {axis} {size} is not a positive multiple of the coarsening factor {factor}; choose a "
                f"patch shape divisible by {factor}"
            )
        if size > domain:
            raise ConfigError(
                f"patch {axis} {size} exceeds the dataset's HR {axis} {domain}; choose a smaller patch or none"
            )
    return hr_patch[0] // factor, hr_patch[1] // factor


@dataclass(frozen=True)
class PatchBox:
    """One sample's boxes: LR box at `lr_origin`, HR box factor times it, context box `margin` LR cells wider."""

    lr_origin: tuple[int, int]
    lr_shape: tuple[int, int]
    factor: int
    margin: int

    @property
    def hr_origin(self) -> tuple[int, int]:
        return self.lr_origin[0] * self.factor, self.lr_origin[1] * self.factor

    @property
    def hr_shape(self) -> tuple[int, int]:
        return self.lr_shape[0] * self.factor, self.lr_shape[1] * self.factor

    @property
    def context_origin(self) -> tuple[int, int]:
        """LR row/col of the context box's top-left; negative where the box extends past the domain."""
        return self.lr_origin[0] - self.margin, self.lr_origin[1] - self.margin

    @property
    def context_shape(self) -> tuple[int, int]:
        return self.lr_shape[0] + 2 * self.margin, self.lr_shape[1] + 2 * self.margin

    @property
    def hr_box(self) -> Box:
        (row, col), (height, width) = self.hr_origin, self.hr_shape
        return slice(row, row + height), slice(col, col + width)

    def context_in_domain(self, lr_domain: tuple[int, int]) -> tuple[Box, Box]:
        """The part of the context box inside the LR domain: (its LR box, where it sits in the context array).

        Context cells outside the domain are left to the caller to fill (0 in model space, the mean).
        """
        (row, col), (height, width) = self.context_origin, self.context_shape
        source, target = [], []
        for start, size, domain in ((row, height, lr_domain[0]), (col, width, lr_domain[1])):
            low, high = max(start, 0), min(start + size, domain)
            source.append(slice(low, high))
            target.append(slice(low - start, high - start))
        return (source[0], source[1]), (target[0], target[1])


@dataclass(frozen=True)
class PatchLayout:
    """Where patches of one shape may sit on a dataset's grid: every LR-aligned position inside the domain."""

    lr_domain: tuple[int, int]
    factor: int
    lr_shape: tuple[int, int]
    margin: int = 0

    @classmethod
    def build(
        cls, hr_domain: tuple[int, int], factor: int, patch_shape: tuple[int, int] | None, margin: int = 0
    ) -> PatchLayout:
        """`patch_shape` is the HR crop; None means the whole domain (one position, origin 0, 0)."""
        if hr_domain[0] % factor or hr_domain[1] % factor:
            raise ConfigError(f"HR domain {hr_domain} is not a multiple of the coarsening factor {factor}")
        hr_patch = hr_domain if patch_shape is None else (int(patch_shape[0]), int(patch_shape[1]))
        return cls(
            lr_domain=(hr_domain[0] // factor, hr_domain[1] // factor),
            factor=factor,
            lr_shape=lr_patch_shape(hr_patch, factor, hr_domain),
            margin=margin,
        )

    @property
    def n_positions(self) -> tuple[int, int]:
        """Possible LR origins along each axis."""
        return self.lr_domain[0] - self.lr_shape[0] + 1, self.lr_domain[1] - self.lr_shape[1] + 1

    def box(self, lr_origin: tuple[int, int]) -> PatchBox:
        box = PatchBox(lr_origin=lr_origin, lr_shape=self.lr_shape, factor=self.factor, margin=self.margin)
        rows, cols = self.n_positions
        assert 0 <= lr_origin[0] < rows and 0 <= lr_origin[1] < cols, (
            f"LR origin {lr_origin} outside the domain"
        )
        # The alignment STRIDE relies on: the HR box covers exactly the HR cells of the LR box.
        assert box.hr_origin == (self.factor * lr_origin[0], self.factor * lr_origin[1])
        assert box.hr_shape == (self.factor * self.lr_shape[0], self.factor * self.lr_shape[1])
        return box

    def draw(self, rng: np.random.Generator, weights: NDArray[np.floating] | None = None) -> PatchBox:
        """A random box: uniform over positions, or proportional to `weights` [n_positions]."""
        rows, cols = self.n_positions
        if rows * cols == 1:
            return self.box((0, 0))
        if weights is None:
            return self.box((int(rng.integers(rows)), int(rng.integers(cols))))
        assert weights.shape == (rows, cols), f"weights {weights.shape} for positions {(rows, cols)}"
        cumulative = np.cumsum(weights, axis=None, dtype=np.float64)
        flat = int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"))
        row, col = divmod(min(flat, rows * cols - 1), cols)
        return self.box((row, col))


def sample_rng(seed: int, draw: int, sample_index: int) -> np.random.Generator:
    """The generator of one sample's random choices: a function of (seed, draw, sample) only, never of the
    worker or the order of loading. The sample index is part of the key so that a fixed draw (validation)
    still spreads patches over the domain."""
    return np.random.default_rng([seed, draw, sample_index])


def rain_position_weights(
    lr_field: NDArray[np.floating], lr_shape: tuple[int, int], threshold: float, floor: float
) -> NDArray[np.float64]:
    """Weight of every LR origin: floor + fraction of the box's LR cells with a value above `threshold`.

    Box sums for all positions at once from a 2-D cumulative sum (summed-area table); NaN counts as dry.
    """
    wet = np.zeros((lr_field.shape[0] + 1, lr_field.shape[1] + 1), dtype=np.int64)
    with np.errstate(invalid="ignore"):
        np.cumsum(np.cumsum(lr_field > threshold, axis=0), axis=1, out=wet[1:, 1:])
    height, width = lr_shape
    counts = wet[height:, width:] - wet[:-height, width:] - wet[height:, :-width] + wet[:-height, :-width]
    return floor + counts / float(height * width)
