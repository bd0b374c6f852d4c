"""Bicubic upsampling that matches torch's, as the interpolation baseline for downscaling."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from stride_core.metrics._checks import float_array

TORCH_KEYS_A = (
    -0.75
)  # torch's (and OpenCV's) choice; Keys (1981) derives -0.5, the only value exact for linear


def bicubic_upsample(field: ArrayLike, factor: int, *, a: float = TORCH_KEYS_A) -> NDArray[np.floating[Any]]:
    """Upsample the last two axes by an integer factor with Keys cubic convolution.

    Output pixel o along an axis of n input pixels samples the input at the source coordinate

        s = (o + 1/2) / factor - 1/2      (pixel centres aligned, align_corners=False)

    as sum_{j=-1..2} W(s - (i + j)) f[clamp(i + j, 0, n - 1)] with i = floor(s) and the Keys
    (1981) kernel, by default with a = -0.75:

        W(x) = (a + 2)|x|^3 - (a + 3)|x|^2 + 1          for |x| <= 1
        W(x) = a|x|^3 - 5a|x|^2 + 8a|x| - 4a            for 1 < |x| < 2

    This is what torch.nn.functional.interpolate(mode='bicubic', align_corners=False) computes
    (edge indices clamped, s not clamped). The weights sum to one, so constant fields come back
    exactly. Linear fields come back exactly (away from the clamped edges) only for a = -0.5;
    with torch's a = -0.75 the error on a ramp is up to 0.048 times its change per input pixel,
    and zero where s falls on an input pixel centre (odd factors). The separable filter is two
    dense (factor*n, n) matrices applied by matmul, which vectorises over any leading axes.

    Not NaN-safe: a NaN pixel spreads to the up to 4x4 output block it feeds. Fill or mask first.

    Reference:
        Keys, R. (1981): Cubic convolution interpolation for digital image processing. IEEE Trans.
        Acoust., Speech, Signal Process. 29, 1153-1160.

    Args:
        field: array whose last two axes are (y, x).
        factor: integer upsampling factor >= 1.
        a: the kernel parameter; keep the default to match torch.

    Returns:
        Shape (..., factor*ny, factor*nx); floating input keeps its dtype.
    """
    values = float_array(field)
    if values.ndim < 2:
        raise ValueError(f"field needs at least 2 dimensions (..., y, x), got shape {values.shape}")
    if isinstance(factor, bool) or not isinstance(factor, int | np.integer) or factor < 1:
        raise ValueError(f"factor must be an integer >= 1, got {factor!r}")
    ny, nx = values.shape[-2:]
    rows = cubic_interpolation_matrix(ny, int(factor), a=a).astype(values.dtype)
    cols = cubic_interpolation_matrix(nx, int(factor), a=a).astype(values.dtype)
    return np.matmul(np.matmul(rows, values), cols.T)


def cubic_interpolation_matrix(n_in: int, factor: int, *, a: float = TORCH_KEYS_A) -> NDArray[np.float64]:
    """The (factor*n_in, n_in) matrix of Keys weights that `bicubic_upsample` applies along one axis."""
    out = np.arange(factor * n_in)
    source = (out + 0.5) / factor - 0.5
    base = np.floor(source).astype(np.int64)
    t = source - base
    weights = np.stack(
        [_keys_outer(t + 1.0, a), _keys_inner(t, a), _keys_inner(1.0 - t, a), _keys_outer(2.0 - t, a)], axis=1
    )
    columns = np.clip(base[:, None] + np.arange(-1, 3)[None, :], 0, n_in - 1)
    matrix = np.zeros((out.size, n_in))
    np.add.at(matrix, (np.repeat(out, 4), columns.ravel()), weights.ravel())
    return matrix


def _keys_inner(x: NDArray[np.float64], a: float) -> NDArray[np.float64]:
    """Keys kernel on 0 <= x <= 1."""
    return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0


def _keys_outer(x: NDArray[np.float64], a: float) -> NDArray[np.float64]:
    """Keys kernel on 1 <= x <= 2."""
    return ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a


def bilinear_upsample(field: ArrayLike, factor: int) -> NDArray[np.floating[Any]]:
    """Upsample the last two axes by an integer factor with bilinear interpolation.

    The source coordinate is s = (o + 1/2) / factor - 1/2 as in `bicubic_upsample`, clamped to the first
    and last pixel centres: what torch.nn.functional.interpolate(mode='bilinear', align_corners=False)
    computes. Linear fields come back exactly between the outer pixel centres. Not NaN-safe.
    """
    values = float_array(field)
    if values.ndim < 2:
        raise ValueError(f"field needs at least 2 dimensions (..., y, x), got shape {values.shape}")
    if isinstance(factor, bool) or not isinstance(factor, int | np.integer) or factor < 1:
        raise ValueError(f"factor must be an integer >= 1, got {factor!r}")
    ny, nx = values.shape[-2:]
    rows = linear_interpolation_matrix(ny, int(factor)).astype(values.dtype)
    cols = linear_interpolation_matrix(nx, int(factor)).astype(values.dtype)
    return np.matmul(np.matmul(rows, values), cols.T)


def linear_interpolation_matrix(n_in: int, factor: int) -> NDArray[np.float64]:
    """The (factor*n_in, n_in) matrix of linear weights that `bilinear_upsample` applies along one axis."""
    out = np.arange(factor * n_in)
    source = np.clip((out + 0.5) / factor - 0.5, 0.0, n_in - 1)
    base = np.minimum(np.floor(source).astype(np.int64), max(n_in - 2, 0))
    t = source - base
    matrix = np.zeros((out.size, n_in))
    np.add.at(matrix, (out, base), 1.0 - t)
    np.add.at(matrix, (out, np.minimum(base + 1, n_in - 1)), t)
    return matrix
