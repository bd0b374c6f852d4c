"""Tests for bicubic upsampling."""

from __future__ import annotations

import numpy as np
import pytest

from stride_core.metrics import bicubic_upsample, cubic_interpolation_matrix


def source_coordinates(n: int, factor: int) -> np.ndarray:
    return (np.arange(n * factor) + 0.5) / factor - 0.5


@pytest.mark.parametrize("factor", [1, 2, 3, 4, 8])
def test_output_shape_and_constant(factor: int) -> None:
    field = np.full((2, 3, 5, 7), 4.25)
    out = bicubic_upsample(field, factor)
    assert out.shape == (2, 3, 5 * factor, 7 * factor)
    np.testing.assert_allclose(out, 4.25, rtol=1e-12)


def test_factor_one_is_identity_and_dtype_is_kept() -> None:
    field = np.random.default_rng(0).normal(size=(6, 9)).astype(np.float32)
    out = bicubic_upsample(field, 1)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, field, rtol=1e-6)


@pytest.mark.parametrize("factor", [2, 3, 4])
def test_linear_field_in_the_interior(factor: int) -> None:
    ny, nx, gy, gx = 10, 12, 0.7, -1.3
    y, x = np.meshgrid(np.arange(ny, dtype=float), np.arange(nx, dtype=float), indexing="ij")
    sy, sx = np.meshgrid(source_coordinates(ny, factor), source_coordinates(nx, factor), indexing="ij")
    interior = (slice(2 * factor, -2 * factor), slice(2 * factor, -2 * factor))

    # a = -0.5 (Keys' own choice) reproduces linear fields exactly; torch's a = -0.75 to within
    # 0.048 of the ramp's change per input pixel along each axis.
    exact = bicubic_upsample(gy * y + gx * x, factor, a=-0.5)
    np.testing.assert_allclose(exact[interior], (gy * sy + gx * sx)[interior], atol=1e-12)
    torch_like = bicubic_upsample(gy * y + gx * x, factor)
    error = np.abs(torch_like - (gy * sy + gx * sx))[interior]
    assert error.max() <= 0.0482 * (abs(gy) + abs(gx))


def test_odd_factor_reproduces_input_at_pixel_centres() -> None:
    field = np.random.default_rng(1).normal(size=(5, 6))
    out = bicubic_upsample(field, 3)
    np.testing.assert_allclose(out[1::3, 1::3], field, atol=1e-12)


def test_matrix_rows_sum_to_one() -> None:
    matrix = cubic_interpolation_matrix(7, 4)
    assert matrix.shape == (28, 7)
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0, atol=1e-12)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="factor"):
        bicubic_upsample(np.zeros((4, 4)), 0)
    with pytest.raises(ValueError, match="factor"):
        bicubic_upsample(np.zeros((4, 4)), 2.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"\(4,\)"):
        bicubic_upsample(np.zeros(4), 2)


@pytest.mark.parametrize("factor", [2, 3, 4])
def test_matches_torch_bicubic(factor: int) -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    field = rng.normal(size=(2, 3, 9, 13)).astype(np.float32)
    expected = torch.nn.functional.interpolate(
        torch.from_numpy(field), scale_factor=factor, mode="bicubic", align_corners=False
    ).numpy()
    np.testing.assert_allclose(bicubic_upsample(field, factor), expected, atol=1e-5)
    np.testing.assert_allclose(
        bicubic_upsample(field.astype(np.float64), factor),
        torch.nn.functional.interpolate(
            torch.from_numpy(field.astype(np.float64)), size=(9 * factor, 13 * factor), mode="bicubic"
        ).numpy(),
        atol=1e-12,
    )
