"""Inline evaluation: a small ensemble on fixed validation dates, scored in physical units during training.

It only observes. On a validation domain larger than the training patch it samples in tiles of that patch,
blended at every step (stride_model.sampling.auto_tiling, the tiled sampler of stride-generate): a model
trained on 64 x 64 patches is never run in one pass on a 512 x 512 domain. It samples the EMA weights with
its own per-member seeds (no shared generator), and its scores are logged but never used for checkpoint
selection, which stays with the validation loss. Beside the scores it draws a quicklook of the first date and
runs the perturbation-response diagnostic.

For a positive-definite target it also reports the wet frequency of the members and of the truth (share of
valid values above the wet threshold: the RainGate's, else WET_THRESHOLD), and it warns in one line when the
ensemble has no spread or never rains, where a small CRPS and a spread-skill of 0 would otherwise pass for
good scores.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from stride_contracts.checkpoint import ModelSpec
from stride_core.maps import quicklook_figure, save_figure
from stride_core.metrics import crps_ensemble_fair, probability_matched_mean, spread_skill_ratio
from stride_core.progress import get_logger
from stride_core.transforms import VariableTransforms
from stride_core.variables import VariableRegistry
from stride_model import assemble_conditioning
from stride_model.adapter import DownscalingDataset, batch_to, collate_samples
from stride_model.members import physical_members
from stride_model.sampling import auto_tiling
from stride_train.config import InlineEvalConfig
from stride_train.perturbation import perturbation_response

log = get_logger("stride-train")
WET_THRESHOLD = 0.1
"""Wet above this (the variable's units) without a RainGate threshold; stride-eval's default wet_threshold."""


def occurrence_scores(
    name: str, members: NDArray[np.float32], truth: NDArray[np.float32], threshold: float
) -> dict[str, float]:
    """inline.<name>.wet_freq (members) and .wet_freq_truth over the valid cells of [dates, M, H, W] / [dates, H, W]."""
    valid = np.isfinite(truth)
    if not valid.any():
        return {}
    wet_members = members[np.broadcast_to(valid[:, None], members.shape)] > threshold
    return {
        f"inline.{name}.wet_freq": float(wet_members.mean()),
        f"inline.{name}.wet_freq_truth": float((truth[valid] > threshold).mean()),
    }


def degenerate_ensemble(
    name: str, members: NDArray[np.float32], threshold: float | None, step: int | None = None
) -> str | None:
    """A one-line warning when every member is identical everywhere, or (threshold given) never wet."""
    at = "" if step is None else f" at step {step}"
    if threshold is not None and not (members > threshold).any():
        return (
            f"inline evaluation{at}: every {name} member is dry (nothing above {threshold:g}) on every date; "
            "its CRPS and spread-skill say nothing about rain (RainGate rule, training length or transform)"
        )
    if members.shape[1] > 1 and not (np.nanmax(members, axis=1) > np.nanmin(members, axis=1)).any():
        return (
            f"inline evaluation{at}: the {name} ensemble has zero spread (all members equal); spread-skill "
            "is 0 by construction"
        )
    return None


class InlineEvaluator:
    """Fair CRPS and spread-skill of the EMA model's ensemble on fixed whole-domain validation dates."""

    def __init__(
        self,
        data: DownscalingDataset,
        spec: ModelSpec,
        transforms: VariableTransforms,
        config: InlineEvalConfig,
        device: torch.device,
        registry: VariableRegistry | None = None,
    ) -> None:
        self.spec, self.transforms, self.config, self.device = spec, transforms, config, device
        self.registry = registry or VariableRegistry.load()
        index = np.unique(np.linspace(0, len(data) - 1, min(config.dates, len(data))).round().astype(int))
        self.batch = batch_to(collate_samples([data[int(i)] for i in index]), device)
        target = self.batch["target"].cpu().numpy()
        # Physical truth, NaN where the target is missing.
        self.truth = np.where(self.batch["mask"].cpu().numpy(), transforms.inverse_target(target), np.nan)
        self.timestamps: list[str] = self.batch["meta"]["timestamps"]
        self.variables = [entry.variable for entry in transforms.spec.target]
        self.seeds = [
            [config.seed + i * config.members + k for k in range(config.members)] for i in range(len(index))
        ]
        # A model trained on patches never sees the whole validation domain at once: it is sampled in tiles
        # of the training patch blended at every step, as stride-generate does (None: the domain fits).
        domain = tuple(int(n) for n in self.truth.shape[-2:])
        self.tiling = auto_tiling(domain, spec.hr_shape, spec.factor)
        if self.tiling is not None:
            layout = self.tiling.layout(domain)
            log.info(
                "inline evaluation: %dx%d validation domain in %d tiles of the %dx%d training patch (overlap %d)",
                *domain, layout.n_tiles, *self.tiling.tile, self.tiling.overlap,
            )  # fmt: skip

    def due(self, step: int) -> bool:
        return self.config.every is not None and step % self.config.every == 0

    def _members(self, model: torch.nn.Module, batch: dict[str, Any]) -> NDArray[np.float32]:
        cond = assemble_conditioning(batch, self.spec)
        return physical_members(
            model,
            self.spec,
            cond,
            self.seeds,
            self.transforms,
            num_steps=self.config.sampler_steps,
            tiling=self.tiling,
        )

    def _wet_threshold(self, name: str) -> float | None:
        """The wet threshold of a positive-definite target (the RainGate's where there is one), else None."""
        variable = self.registry.get(name)
        if variable is None or not variable.is_positive_definite:
            return None
        if self.spec.use_rain_gate and self.spec.rain_gate_threshold is not None:
            return float(self.spec.rain_gate_threshold)
        return WET_THRESHOLD

    @torch.no_grad()
    def evaluate(
        self, model: torch.nn.Module, figure_folder: Path | None = None, step: int | None = None
    ) -> tuple[dict[str, float], list[Path]]:
        """Scores (inline.<var>.crps, .spread_skill, perturb.<var>.*) and the quicklooks written, if a folder."""
        ensemble = self._members(model, self.batch)
        scores: dict[str, float] = {}
        for channel, name in enumerate(self.variables):
            members, truth = ensemble[:, :, channel], self.truth[:, channel]
            scores[f"inline.{name}.crps"] = float(
                np.nanmean(crps_ensemble_fair(members, truth, member_axis=1))
            )
            if members.shape[1] > 1:
                scores[f"inline.{name}.spread_skill"] = float(
                    spread_skill_ratio(members, truth, member_axis=1)
                )
            threshold = self._wet_threshold(name)
            if threshold is not None:
                scores.update(occurrence_scores(name, members, truth, threshold))
            warning = degenerate_ensemble(name, members, threshold, step)
            if warning is not None:
                log.warning(warning)
        for perturbation in self.config.perturbations:
            result = perturbation_response(
                lambda batch: self._members(model, batch),
                self.batch,
                self.transforms,
                perturbation.variable,
                add=perturbation.add,
                scale=perturbation.scale,
                baseline=ensemble,
            )
            scores.update(result.metrics())
        figures = self._quicklooks(ensemble, figure_folder) if figure_folder is not None else []
        return scores, figures

    def _quicklooks(self, ensemble: NDArray[np.float32], folder: Path) -> list[Path]:
        """One quicklook per target variable of the first date, in grid cells (the adapter's sample)."""
        dynamic = [entry.variable for entry in self.transforms.spec.dynamic]
        lr_model = self.batch["cond_dynamic"][:1].cpu().numpy()  # [1, T, C_dyn, h, w]
        lr_physical = self.transforms.inverse_conditioning(lr_model)[0][0, lr_model.shape[1] // 2]
        height, width = self.truth.shape[-2:]
        extent = (0.0, float(width), 0.0, float(height))
        written = []
        for channel, name in enumerate(self.variables):
            members, truth = ensemble[0, :, channel], self.truth[0, channel]
            variable = self.registry.get(name)
            reference = truth if np.isfinite(truth).any() else members
            vmin, vmax = np.nanpercentile(reference, [1, 99])
            figure = quicklook_figure(
                lr_input=lr_physical[dynamic.index(name) if name in dynamic else 0],
                truth=truth,
                members=members,
                pmm=probability_matched_mean(members, member_axis=0),
                spread=members.std(axis=0, ddof=1) if len(members) > 1 else None,
                lr_extent=extent,
                hr_extent=extent,
                title=f"{name} - {self.timestamps[0]} (inline evaluation)",
                variable_label=name,
                units=variable.units if variable else "",
                cmap=variable.cmap if variable else "viridis",
                vmin=float(vmin),
                vmax=float(vmax),
                geographic=False,
                axis_labels=("x [HR cells]", "y [HR cells]"),
            )
            written.append(save_figure(figure, folder / f"quicklook_{name}.png"))
        return written
