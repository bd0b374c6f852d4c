"""Bounded-memory evaluation: accumulate scores over chunks of dates instead of loading every member.

The truth of one variable [time, H, W] is held whole (1/m of the members' size: it fixes the thresholds and
the histogram bins before the first chunk); members, PMM and baselines are read `chunk_dates` dates at a time
and only running sums survive a chunk. Rows have the names of the in-memory families:

- probabilistic: crps (and per date), spread_skill, rank_histogram, rank_flatness, brier and the reliability
  diagram at each threshold, crpss against each baseline;
- deterministic: rmse/mae/bias of the ensemble mean and the PMM (and rmse_mean per date);
- dates: the dates chosen from the whole truth, each scored in its chunk (`DatesRows`);
- extremes: the truth's exact, the models' exceedance ratios and block maxima exact, quantiles from the
  histogram below (`ExtremesSums`);
- features: LR consistency and perturbation response from sums (`FeaturesSums`), exact;
- occurrence: wet_freq (exact) and p99 (from the histogram below, within one bin width) of each model;
- scale, spatial and temporal: their own sums (`ScaleSums`, `SpatialSums`, `TemporalSums`), exact (power
  spectra weighted by their fields, pooled scores; per-pixel error and correlation sums, FSS and
  semivariogram sums; lag-k pair sums with the previous chunk's last dates kept);
- distributions: histogram, qq, wasserstein, perkins, wet_freq, p99, wet_mean_intensity, and the dry-spell
  lengths exactly (`DrySpellSums`: the spell open at each pixel and member carried from chunk to chunk).
  Here Wasserstein-1, the models' qq quantiles and p99 come from a histogram of STREAM_BINS bins over the
  truth's range (values beyond it in the end bins), so they are exact to within one bin width
  ((max - min) / STREAM_BINS); the in-memory family's are exact.

Every sum skips NaN truth, like the in-memory kernels, so both paths agree (a test holds them equal).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from matplotlib.figure import Figure
from numpy.typing import NDArray

from stride_contracts import MetricRow
from stride_core.calendars import iso
from stride_core.metrics import (
    brier_score_fair,
    crps_ensemble_fair,
    quantiles,
    rank_counts,
    rank_histogram_flatness,
)
from stride_eval.families import REGISTRY
from stride_eval.families.base import finite
from stride_eval.families.dates import DatesRows
from stride_eval.families.distributions import QQ_LEVELS, DrySpellSums
from stride_eval.families.extremes import ExtremesSums, histogram_quantile
from stride_eval.families.features import FeaturesSums
from stride_eval.families.occurrence import QUANTILE, upper_quantile, wet_frequency
from stride_eval.families.probabilistic import crpss_rows, reliability_rows, reliability_terms
from stride_eval.families.scale import ScaleSums
from stride_eval.families.spatial import SpatialSums
from stride_eval.families.temporal import TemporalSums
from stride_eval.inputs import EvalInputs, Prediction

STREAMING_FAMILIES = (
    "probabilistic",
    "dates",
    "deterministic",
    "distributions",
    "extremes",
    "features",
    "occurrence",
    "scale",
    "spatial",
    "temporal",
)
Accumulator = DatesRows | DrySpellSums | ExtremesSums | FeaturesSums | ScaleSums | SpatialSums | TemporalSums
STREAM_BINS = 2000
"""Fine bins of the streamed value histograms (Wasserstein-1, p99)."""


@dataclass
class Sums:
    """Running sums of one model."""

    crps: float = 0.0
    count: int = 0
    variance: float = 0.0
    squared_mean_error: float = 0.0
    members: int = 0
    ranks: NDArray[np.float64] | None = None
    brier: dict[float, float] = field(default_factory=lambda: defaultdict(float))
    reliability: dict[float, list[NDArray[np.floating]]] = field(default_factory=dict)
    """threshold -> [sum of forecast probability, sum of events, count] per probability bin."""
    errors: dict[str, list[float]] = field(default_factory=dict)
    """which -> [sum error, sum |error|, sum error^2, count] for 'mean' and 'pmm'."""
    fine: NDArray[np.float64] | None = None
    wet_sum: float = 0.0
    wet_count: int = 0
    values: int = 0
    broken: bool = False
    """Whether a value was NaN or infinite where the truth is valid (occurrence leaves such a model out)."""
    per_date: list[tuple[object, str, float]] = field(default_factory=list)


class StreamingEvaluation:
    """Accumulate one variable's scores chunk by chunk (`update`), then turn them into rows (`rows`)."""

    def __init__(self, template: EvalInputs, families: list[str]) -> None:
        self.template = template
        self.families = [f for f in families if f in STREAMING_FAMILIES]
        truth = template.truth[np.isfinite(template.truth)].astype(np.float64)
        low, high = (float(truth.min()), float(truth.max())) if truth.size else (0.0, 1.0)
        self.fine_edges = np.linspace(low, high if high > low else low + 1.0, STREAM_BINS + 1)
        self.truth_fine = self._fine(truth)
        self.sums: dict[str, Sums] = defaultdict(Sums)
        # Families that keep their own sums (their in-memory compute is one chunk of every date).
        kinds: dict[str, Callable[[EvalInputs], Accumulator]] = {
            "features": FeaturesSums,
            "extremes": lambda t: ExtremesSums(t, self.fine_edges),
            "dates": DatesRows,
            "distributions": DrySpellSums,
            "scale": ScaleSums,
            "spatial": SpatialSums,
            "temporal": TemporalSums,
        }
        self.accumulators: dict[str, Accumulator] = {
            name: make(template) for name, make in kinds.items() if name in self.families
        }

    def _fine(self, values: NDArray[np.floating]) -> NDArray[np.float64]:
        clipped = np.clip(values, self.fine_edges[0], self.fine_edges[-1])
        return np.histogram(clipped, bins=self.fine_edges)[0].astype(np.float64)

    def update(self, chunk: EvalInputs) -> None:
        """Add one chunk of dates (masked like `masked_inputs`)."""
        for accumulator in self.accumulators.values():
            accumulator.update(chunk)
        valid = chunk.valid
        n_valid = int(valid.sum())
        for model, prediction in chunk.predictions.items():
            sums = self.sums[model]
            ensemble = prediction.ensemble
            if "probabilistic" in self.families:
                self._probabilistic(sums, chunk, prediction, n_valid)
            if "deterministic" in self.families:
                self._deterministic(sums, chunk, prediction)
            if "distributions" in self.families or "occurrence" in self.families:
                values = ensemble[np.broadcast_to(valid[:, None], ensemble.shape)]
                sums.broken = sums.broken or not bool(np.isfinite(values).all())
                values = values[np.isfinite(values)]
                fine = self._fine(values)
                sums.fine = fine if sums.fine is None else sums.fine + fine
                wet = values[values > chunk.wet_threshold]
                sums.wet_sum += float(wet.sum(dtype=np.float64))
                sums.wet_count += wet.size
                sums.values += values.size

    def _probabilistic(self, sums: Sums, chunk: EvalInputs, prediction: Prediction, n_valid: int) -> None:
        ensemble = prediction.ensemble
        crps = crps_ensemble_fair(ensemble, chunk.truth, member_axis=1)
        sums.crps += float(np.nansum(crps))
        sums.count += n_valid
        if chunk.per_date:
            for time, value in zip(chunk.times, np.nanmean(crps, axis=(1, 2)), strict=True):
                sums.per_date.append((iso(time), "crps", float(value)))
        for threshold in chunk.thresholds:
            sums.brier[threshold] += float(
                np.nansum(brier_score_fair(ensemble, chunk.truth, member_axis=1, threshold=threshold))
            )
            terms = reliability_terms(ensemble, chunk.truth, threshold)
            previous = sums.reliability.get(threshold)
            sums.reliability[threshold] = (
                list(terms) if previous is None else [a + b for a, b in zip(previous, terms, strict=True)]
            )
        m = ensemble.shape[1]
        if prediction.members is None or m < 2:
            return
        truth = chunk.truth
        valid = ~np.isnan(truth)
        sums.members = m
        sums.variance += float(np.sum(np.where(valid, np.var(ensemble, axis=1, ddof=1), 0.0)))
        sums.squared_mean_error += float(np.sum(np.where(valid, (ensemble.mean(axis=1) - truth) ** 2, 0.0)))
        counts = rank_counts(ensemble, truth, member_axis=1)
        sums.ranks = counts if sums.ranks is None else sums.ranks + counts

    def _deterministic(self, sums: Sums, chunk: EvalInputs, prediction: Prediction) -> None:
        fields = {"mean": prediction.point}
        if prediction.pmm is not None:
            fields["pmm"] = prediction.pmm
        valid = chunk.valid
        for which, values in fields.items():
            error = np.where(valid, values.astype(np.float64) - chunk.truth, 0.0)
            totals = [
                float(error.sum()),
                float(np.abs(error).sum()),
                float((error**2).sum()),
                int(valid.sum()),
            ]
            previous = sums.errors.get(which, [0.0, 0.0, 0.0, 0])
            sums.errors[which] = [a + b for a, b in zip(previous, totals, strict=True)]
            if which == "mean" and chunk.per_date:
                with np.errstate(invalid="ignore", divide="ignore"):
                    per_date = np.sqrt((error**2).sum(axis=(1, 2)) / valid.sum(axis=(1, 2)))
                for time, value in zip(chunk.times, per_date, strict=True):
                    sums.per_date.append((iso(time), "rmse_mean", float(value)))

    def rows(self) -> list[MetricRow]:
        inputs = self.template
        rows: list[MetricRow] = []
        centres = 0.5 * (self.fine_edges[1:] + self.fine_edges[:-1])
        truth_total = self.truth_fine.sum()
        if "distributions" in self.families and truth_total:
            rows += self._truth_distribution_rows(centres)
        for model, sums in self.sums.items():
            if "probabilistic" in self.families and sums.count:
                rows.append(inputs.row(model, "crps", "probabilistic", sums.crps / sums.count))
                for threshold, level in zip(inputs.thresholds, inputs.threshold_quantiles, strict=True):
                    value = sums.brier[threshold] / sums.count
                    rows.append(
                        inputs.row(
                            model,
                            "brier",
                            "probabilistic",
                            value,
                            units="1",
                            threshold=threshold,
                            quantile=level,
                        )
                    )
                    if threshold in sums.reliability:
                        terms = sums.reliability[threshold]
                        rows += reliability_rows(
                            inputs, model, threshold, level, (terms[0], terms[1], terms[2])
                        )
                if sums.members >= 2 and sums.squared_mean_error > 0:
                    m = sums.members
                    ratio = np.sqrt((m + 1) / m * sums.variance / sums.count) / np.sqrt(
                        sums.squared_mean_error / sums.count
                    )
                    rows.append(inputs.row(model, "spread_skill", "probabilistic", float(ratio), units="1"))
                if sums.ranks is not None and sums.ranks.sum() > 0:
                    frequencies = sums.ranks / sums.ranks.sum()
                    rows += [
                        inputs.row(model, "rank_histogram", "probabilistic", f, units="1", bin=float(rank))
                        for rank, f in enumerate(frequencies)
                    ]
                    delta = rank_histogram_flatness(frequencies, sums.count)
                    rows.append(inputs.row(model, "rank_flatness", "probabilistic", delta, units="1"))
            if "deterministic" in self.families:
                for which, (total, absolute, squared, count) in sums.errors.items():
                    if count:
                        rows.append(
                            inputs.row(model, f"rmse_{which}", "deterministic", np.sqrt(squared / count))
                        )
                        rows.append(inputs.row(model, f"mae_{which}", "deterministic", absolute / count))
                        rows.append(inputs.row(model, f"bias_{which}", "deterministic", total / count))
            for date, metric, value in sums.per_date:
                family = "probabilistic" if metric == "crps" else "deterministic"
                if finite(value):
                    rows.append(inputs.row(model, metric, family, value, date=date))  # type: ignore[arg-type]
            if "distributions" in self.families and sums.fine is not None and sums.values and truth_total:
                rows += self._model_distribution_rows(model, sums, centres)
        if "probabilistic" in self.families:
            crps_of = {model: sums.crps / sums.count for model, sums in self.sums.items() if sums.count}
            rows += crpss_rows(inputs, {m: v for m, v in crps_of.items() if finite(v)})
        if "occurrence" in self.families and inputs.positive_definite and truth_total:
            rows += self._occurrence_rows()
        for accumulator in self.accumulators.values():
            rows += accumulator.rows()
        return [r for r in rows if finite(r.value)]

    def figures(self, rows: Sequence[MetricRow]) -> dict[str, Figure]:
        """Each family's figure from the streamed `rows` (of this variable): the families that plot rows
        alone get them with the template, spatial and dates draw from their accumulators (the summed
        score maps, the chosen dates' fields)."""
        figures: dict[str, Figure] = {}
        for name in self.families:
            accumulator = self.accumulators.get(name)
            if isinstance(accumulator, SpatialSums | DatesRows):
                figure = accumulator.figure(rows)
            else:
                figure = REGISTRY[name].plot(rows, self.template)
            if figure is not None:
                figures[name] = figure
        return figures

    def _coarse(self, fine: NDArray[np.float64]) -> NDArray[np.float64]:
        """The fine histogram summed into the template's n_bins bins (shares)."""
        groups = np.array_split(fine, self.template.n_bins)
        return np.array([g.sum() for g in groups]) / fine.sum()

    def _coarse_centres(self, centres: NDArray[np.float64]) -> list[float]:
        return [float(g.mean()) for g in np.array_split(centres, self.template.n_bins)]

    def _truth_distribution_rows(self, centres: NDArray[np.float64]) -> list[MetricRow]:
        inputs = self.template
        rows = [
            inputs.row("truth", "histogram", "distributions", share, units="1", bin=centre)
            for centre, share in zip(
                self._coarse_centres(centres), self._coarse(self.truth_fine), strict=True
            )
        ]
        truth = inputs.truth[np.isfinite(inputs.truth)]
        rows += [
            inputs.row("truth", "qq", "distributions", value, quantile=float(level))
            for level, value in zip(QQ_LEVELS, quantiles(truth, QQ_LEVELS), strict=True)
        ]
        if inputs.positive_definite:
            rows.append(
                inputs.row(
                    "truth",
                    "wet_freq",
                    "distributions",
                    float(np.mean(truth > inputs.wet_threshold)),
                    units="1",
                )
            )
            rows.append(inputs.row("truth", "p99", "distributions", self._quantile(self.truth_fine, 0.99)))
            wet = truth[truth > inputs.wet_threshold]
            if wet.size:
                rows.append(
                    inputs.row(
                        "truth", "wet_mean_intensity", "distributions", float(wet.mean(dtype=np.float64))
                    )
                )
        return rows

    def _model_distribution_rows(
        self, model: str, sums: Sums, centres: NDArray[np.float64]
    ) -> list[MetricRow]:
        inputs = self.template
        assert sums.fine is not None
        rows = [
            inputs.row(model, "histogram", "distributions", share, units="1", bin=centre)
            for centre, share in zip(self._coarse_centres(centres), self._coarse(sums.fine), strict=True)
        ]
        rows += [
            inputs.row(model, "qq", "distributions", self._quantile(sums.fine, level), quantile=float(level))
            for level in QQ_LEVELS
        ]
        cdf_model = np.cumsum(sums.fine) / sums.fine.sum()
        cdf_truth = np.cumsum(self.truth_fine) / self.truth_fine.sum()
        width = float(self.fine_edges[1] - self.fine_edges[0])
        rows.append(
            inputs.row(
                model, "wasserstein", "distributions", float(np.sum(np.abs(cdf_model - cdf_truth)) * width)
            )
        )
        perkins = float(np.sum(np.minimum(self._coarse(sums.fine), self._coarse(self.truth_fine))))
        rows.append(inputs.row(model, "perkins", "distributions", perkins, units="1"))
        if inputs.positive_definite:
            truth = inputs.truth[np.isfinite(inputs.truth)]
            wet_freq = sums.wet_count / sums.values
            truth_wet = float(np.mean(truth > inputs.wet_threshold))
            p99 = self._quantile(sums.fine, 0.99)
            truth_p99 = self._quantile(self.truth_fine, 0.99)
            rows += [
                inputs.row(model, "wet_freq", "distributions", wet_freq, units="1"),
                inputs.row(model, "wet_freq_error", "distributions", abs(wet_freq - truth_wet), units="1"),
                inputs.row(model, "p99", "distributions", p99),
                inputs.row(model, "p99_error", "distributions", abs(p99 - truth_p99)),
            ]
            if sums.wet_count:
                intensity = sums.wet_sum / sums.wet_count
                rows.append(inputs.row(model, "wet_mean_intensity", "distributions", intensity))
                wet_truth = truth[truth > inputs.wet_threshold]
                if wet_truth.size:
                    error = intensity - float(wet_truth.mean(dtype=np.float64))
                    rows.append(inputs.row(model, "wet_mean_intensity_error", "distributions", error))
        return rows

    def _occurrence_rows(self) -> list[MetricRow]:
        """The occurrence family's rows: the truth's exact (held whole), the models' wet_freq exact and p99
        from the fine histogram (within one bin width)."""
        inputs = self.template
        truth = inputs.truth[np.isfinite(inputs.truth)]
        reference = {"wet_freq": wet_frequency(truth, inputs.wet_threshold), "p99": upper_quantile(truth)}
        units = {"wet_freq": "1", "p99": inputs.units}
        rows = [inputs.row("truth", k, "occurrence", v, units=units[k]) for k, v in reference.items()]
        for model, sums in self.sums.items():
            if sums.broken or sums.fine is None or not sums.values:
                continue
            values = {"wet_freq": sums.wet_count / sums.values, "p99": self._quantile(sums.fine, QUANTILE)}
            for metric, value in values.items():
                rows.append(inputs.row(model, metric, "occurrence", value, units=units[metric]))
                error = abs(value - reference[metric])
                rows.append(inputs.row(model, f"{metric}_error", "occurrence", error, units=units[metric]))
        return rows

    def _quantile(self, fine: NDArray[np.float64], level: float) -> float:
        """The level-quantile of a fine histogram, linear within the bin it falls in."""
        return histogram_quantile(fine, self.fine_edges, level)
