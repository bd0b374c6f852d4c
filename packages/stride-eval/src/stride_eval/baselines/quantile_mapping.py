"""Quantile-mapping baseline (BCSD/QDM style): the LR field interpolated to the HR grid, then mapped onto the
HR truth's distribution with a transfer function fitted on the training split, per HR cell and per season.

This is the classical statistical downscaling users would otherwise run, and where the target is among the
LR inputs the baseline STRIDE must beat. The mapping is xsdba's (Ouranos; the maintained successor of
`xclim.sdba`): `EmpiricalQuantileMapping` (default; the quantile-mapping step of BCSD) or
`QuantileDeltaMapping` (Cannon et al. 2015), trained with ref = HR truth, hist = interpolated LR, both on the
training split, and applied to the interpolated LR of the evaluated dates. xsdba was chosen over ibicus
because it is xarray-native and vectorised over cells (ibicus loops over cells in Python), groups by month or
by a day-of-year window out of the box (`Grouper("time.dayofyear", window=...)`), and installs against the
pinned numpy/xarray; ibicus would add seaborn and scikit-learn-style per-location loops for the same maps.

EQM is the default because QDM ranks the evaluated values among themselves inside each group: meant for a
projection period of decades, it is biased on a test split of a few dates per month (their percent ranks
are coarse and lean high). The additive kind is used for every variable: for EQM the kind only changes how
the transfer function is interpolated between quantiles and extrapolated beyond them, and the additive form
stays finite on fields with exact zeros (the multiplicative one divides by them); positive-definite results
are clipped at zero. Each season is fitted on its own (xsdba `group="time"` on the training dates of that
month or day-of-year window, `stride_eval.baselines.season`): this works for any calendar and for a training
split that covers only some months, where xsdba's own month grouping interpolates across missing months.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from numpy.typing import NDArray

from stride_core.calendars import TimeIndex, days_in_year, iso, year_phase
from stride_core.errors import ArtifactError
from stride_core.metrics import bicubic_upsample, bilinear_upsample
from stride_eval.baselines.season import same_season
from stride_eval.baselines.settings import BaselineSettings

UPSAMPLERS = {"bicubic": bicubic_upsample, "bilinear": bilinear_upsample}
UNITS = "1"
"""Units given to xsdba: ref and hist are in the same (the variable's) units, so no conversion is wanted."""


def _as_array(values: NDArray[np.float32], times: TimeIndex) -> xr.DataArray:
    return xr.DataArray(
        values.astype(np.float64), dims=("time", "y", "x"), coords={"time": times}, attrs={"units": UNITS}
    )


def quantile_mapped(
    truth_train: NDArray[np.float32],
    lr_train: NDArray[np.float32],
    train_times: TimeIndex,
    lr_eval: NDArray[np.float32],
    eval_times: TimeIndex,
    factor: int,
    settings: BaselineSettings,
    *,
    positive_definite: bool,
) -> NDArray[np.float32]:
    """[time, H, W]: the interpolated `lr_eval` mapped onto the truth's distribution (fitted on training)."""
    import xsdba

    upsample = UPSAMPLERS[settings.interpolation]
    hist = upsample(lr_train, factor)
    sim = upsample(lr_eval, factor)
    if hist.shape != truth_train.shape:
        raise ArtifactError(
            f"qdm: interpolated LR {hist.shape} and HR truth {truth_train.shape} differ in shape; "
            f"the dataset's grid factor does not match its arrays"
        )
    method = xsdba.EmpiricalQuantileMapping if settings.method == "eqm" else xsdba.QuantileDeltaMapping
    if settings.season == "month":
        keys = np.asarray(eval_times.month)
    else:
        keys = np.floor(year_phase(eval_times) * days_in_year(eval_times)).astype(int)  # day of year - 1
    in_season = same_season(eval_times, train_times, season=settings.season, window_days=settings.window_days)
    result = np.full(sim.shape, np.nan, dtype=np.float32)
    for key in np.unique(keys):
        chosen = np.flatnonzero(keys == key)
        fit = np.flatnonzero(in_season[chosen[0]])
        if fit.size < 2:
            raise ArtifactError(
                f"qdm: the training split has {fit.size} date(s) in the season of {iso(eval_times[chosen[0]])}; "
                f"use baseline.season=window with a larger baseline.window_days"
            )
        with xr.set_options(keep_attrs=True):
            trained = method.train(
                _as_array(truth_train[fit], train_times[fit]),
                _as_array(hist[fit], train_times[fit]),
                nquantiles=settings.nquantiles,
                group="time",
                kind="+",
            )
            adjusted = trained.adjust(
                _as_array(sim[chosen], eval_times[chosen]), interp="linear", extrapolation="constant"
            )
        result[chosen] = adjusted.transpose("time", "y", "x").values
    if positive_definite:
        result = np.maximum(result, 0.0, where=np.isfinite(result), out=result)
    return result
