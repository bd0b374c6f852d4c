"""Inline evaluation: a small ensemble on fixed validation dates, scored in physical units during training.

It only observes. It samples the EMA weights with its own per-member seeds (no shared generator), and its
scores are logged but never used for checkpoint selection, which stays with the validation loss. Beside the
scores it draws a quicklook of the first date and runs the perturbation-response diagnostic.
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
from stride_core.transforms import VariableTransforms
from stride_core.variables import VariableRegistry
from stride_model import assemble_conditioning
from stride_model.adapter import DownscalingDataset, batch_to, collate_samples
from stride_model.members import physical_members
from stride_train.config import InlineEvalConfig
from stride_train.perturbation import perturbation_response


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

    def due(self, step: int) -> bool:
        return self.config.every is not None and step % self.config.every == 0

    def _members(self, model: torch.nn.Module, batch: dict[str, Any]) -> NDArray[np.float32]:
        cond = assemble_conditioning(batch, self.spec)
        return physical_members(
            model, self.spec, cond, self.seeds, self.transforms, num_steps=self.config.sampler_steps
        )

    @torch.no_grad()
    def evaluate(
        self, model: torch.nn.Module, figure_folder: Path | None = None
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
