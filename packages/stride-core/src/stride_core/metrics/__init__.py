"""Pure numpy metric kernels for evaluating downscaled fields and ensembles against truth.

One module per family. Every kernel takes plain arrays, has keyword-only options and reports
shape mismatches with both shapes. NaN in the truth marks an invalid pixel, excluded everywhere;
a NaN in a forecast at a valid pixel propagates into the score so a broken forecast stays visible.
Callers mask forecasts where the truth is invalid (stride-eval does it once for every family), so a
statistic of a forecast alone (a spectrum, a PMM, a quantile) sees the same pixels as the truth's.
"""

from stride_core.metrics.deterministic import bias, mae, rmse
from stride_core.metrics.distributions import (
    block_maxima,
    common_bins,
    dry_spell_lengths,
    lag_autocorrelation,
    perkins_skill_score,
    quantiles,
    relative_histogram,
    wasserstein_1,
)
from stride_core.metrics.interpolation import (
    bicubic_upsample,
    bilinear_upsample,
    cubic_interpolation_matrix,
    linear_interpolation_matrix,
)
from stride_core.metrics.pmm import probability_matched_mean
from stride_core.metrics.probabilistic import (
    brier_score_fair,
    crps_ensemble_fair,
    exceedance_probability,
    rank_counts,
    rank_histogram,
    rank_histogram_flatness,
    reliability_curve,
    reliability_sums,
    spread_skill_ratio,
)
from stride_core.metrics.spatial import (
    fractions_skill_score,
    fss_sums,
    fss_terms,
    pointwise_correlation,
    semivariogram,
    semivariogram_sums,
    weighted_mean,
    window_sums,
)
from stride_core.metrics.spectrum import radial_power_spectrum, ralsd, spectrum_error

__all__ = [
    "bias",
    "bicubic_upsample",
    "bilinear_upsample",
    "block_maxima",
    "brier_score_fair",
    "common_bins",
    "crps_ensemble_fair",
    "cubic_interpolation_matrix",
    "dry_spell_lengths",
    "exceedance_probability",
    "fractions_skill_score",
    "fss_sums",
    "fss_terms",
    "lag_autocorrelation",
    "linear_interpolation_matrix",
    "mae",
    "perkins_skill_score",
    "pointwise_correlation",
    "probability_matched_mean",
    "quantiles",
    "radial_power_spectrum",
    "ralsd",
    "rank_counts",
    "rank_histogram",
    "rank_histogram_flatness",
    "relative_histogram",
    "reliability_curve",
    "reliability_sums",
    "rmse",
    "semivariogram",
    "semivariogram_sums",
    "spectrum_error",
    "spread_skill_ratio",
    "wasserstein_1",
    "weighted_mean",
    "window_sums",
]
