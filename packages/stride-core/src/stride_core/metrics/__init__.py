"""Pure numpy metric kernels for evaluating downscaled fields and ensembles against truth.

One module per family. Every kernel takes plain arrays, has keyword-only options and reports
shape mismatches with both shapes. NaN in the truth marks an invalid pixel, excluded everywhere;
a NaN in a forecast at a valid pixel propagates into the score so a broken forecast stays visible.
"""

from stride_core.metrics.deterministic import bias, mae, rmse
from stride_core.metrics.interpolation import bicubic_upsample, cubic_interpolation_matrix
from stride_core.metrics.pmm import probability_matched_mean
from stride_core.metrics.probabilistic import crps_ensemble_fair, spread_skill_ratio
from stride_core.metrics.spectrum import radial_power_spectrum, spectrum_error

__all__ = [
    "bias",
    "bicubic_upsample",
    "crps_ensemble_fair",
    "cubic_interpolation_matrix",
    "mae",
    "probability_matched_mean",
    "radial_power_spectrum",
    "rmse",
    "spectrum_error",
    "spread_skill_ratio",
]
