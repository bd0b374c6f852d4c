"""Statistical baselines drawn from the training split: a climatological ensemble and quantile mapping.

`baseline_predictions` is what the evaluation runner calls, once per target variable; it returns one
`Prediction` per baseline label, which every family then scores beside the models (the interpolation
baselines, bicubic and bilinear, stay in the runner: they need no training data).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from stride_contracts import SamplesManifest
from stride_core.calendars import TimeIndex
from stride_core.progress import get_logger
from stride_eval.baselines.climatology import climatological_ensemble
from stride_eval.baselines.quantile_mapping import quantile_mapped
from stride_eval.baselines.settings import BaselineSettings
from stride_eval.baselines.training import lineage_dataset, open_training_split
from stride_eval.inputs import Prediction

log = get_logger("stride-eval")
TRAINED_BASELINES = ("climatology", "qdm")
"""Baselines that need the training split (the others are interpolations of the conditioning)."""

__all__ = ["TRAINED_BASELINES", "BaselineSettings", "baseline_predictions"]


def baseline_predictions(
    names: Sequence[str],
    manifest: SamplesManifest,
    variable: str,
    times: TimeIndex,
    lr: NDArray[np.float32] | None,
    settings: BaselineSettings,
    *,
    dataset_path: Path | None = None,
) -> dict[str, Prediction]:
    """The trained baselines among `names` for target `variable` on the evaluated `times`.

    `lr` is the samples' LR conditioning of `variable` [time, h, w] (None where it is not an LR input: qdm is
    skipped then, with a warning). `climatology` gives members (its point is their mean), `qdm` a point.
    The training split is read from `dataset_path`, else `settings.dataset`, else the samples' lineage.
    """
    wanted = [name for name in names if name in TRAINED_BASELINES]
    if not wanted:
        return {}
    path = lineage_dataset(manifest, dataset_path or settings.dataset)
    if path is None:
        log.warning(
            "the samples name no input dataset: baselines %s skipped (set baseline.dataset=PATH/dataset.zarr)",
            wanted,
        )
        return {}
    split = open_training_split(path)
    predictions: dict[str, Prediction] = {}
    if "climatology" in wanted:
        members = climatological_ensemble(split, variable, times, settings)
        predictions["climatology"] = Prediction(point=members.mean(axis=1), members=members)
    if "qdm" in wanted:
        lr_train = split.lr(variable)
        if lr is None or lr_train is None:
            log.warning("no LR '%s' among the conditioning: qdm baseline skipped", variable)
        else:
            truth_train = split.target(variable)
            point = quantile_mapped(
                truth_train,
                lr_train,
                split.times,
                lr,
                times,
                manifest.grid.factor,
                settings,
                # A variable the training truth never has below zero (precipitation) is clipped at zero.
                positive_definite=bool(np.nanmin(truth_train) >= 0),
            )
            predictions["qdm"] = Prediction(point=point)
    return predictions
