"""Contract for `samples.zarr` (contract D): members, PMM, conditioning, target and metadata."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from stride_contracts.base import ArtifactHeader, StrictModel
from stride_contracts.checkpoint import TransformSet
from stride_contracts.dataset import GridInfo, VariableRef

SAMPLES_ARRAYS = ("members", "pmm", "target", "cond_dynamic", "cond_static", "seeds")
"""Arrays a samples store holds (dims: members [time, member, var, y, x], pmm [time, var, y, x],
target [time, var, y, x], cond_dynamic [time, dynamic_var, y_lr, x_lr], cond_static [static_var, y, x],
seeds [time, member]); all in physical units."""

SAMPLES_ENSEMBLE_ARRAYS = ("mean", "std")
"""Per-variable ensemble mean and standard deviation over members (ddof 1) [time, var, y, x], written by
stride-generate since streaming output; optional for readers, since older stores lack them. Every per-date
array of a samples store is chunked one date per Zarr chunk, so readers can stream by date."""


SolverName = Literal["heun", "euler", "dpm2", "dpmpp_2m"]
"""Solvers of stride_model.sampling.solvers (the registry there lists the same names)."""
ScheduleName = Literal["karras", "loglinear", "vp"]
"""Noise-level schedules of stride_model.sampling.schedules."""
PrecisionName = Literal["fp32", "bf16", "fp16"]
"""Autocast dtype of the network call at sampling (the solver's loop stays float64)."""


class SamplerSettings(StrictModel):
    """Sampler parameters: a solver, a noise-level schedule and EDM's churn (Karras et al. 2022, Alg. 2).

    The defaults (Heun, Karras rho-schedule, fp32) are the EDM sampler.
    """

    solver: SolverName = Field(
        default="heun",
        description="ODE/SDE solver: 'heun' (EDM Alg. 2, 2 NFE per step but the last), 'euler' (1 NFE per "
        "step), 'dpm2' (DPM-Solver-2 midpoint, 2 NFE per step but the last), 'dpmpp_2m' (DPM-Solver++(2M) "
        "multistep, 1 NFE per step; deterministic, needs S_churn = 0).",
    )
    schedule: ScheduleName = Field(
        default="karras",
        description="Noise levels from sigma_max to sigma_min, then 0: 'karras' (EDM eq. 5 with rho), "
        "'loglinear' (geometric), 'vp' (EDM's VP-SDE time schedule rescaled to sigma_min..sigma_max).",
    )
    precision: PrecisionName = Field(
        default="fp32",
        description="Autocast dtype of the network call: fp32, bf16 (CPU and GPU) or fp16 (GPU).",
    )
    steps: int = Field(default=18, ge=1, le=1000, description="Number of noise levels N.")
    sigma_min: float = Field(default=0.002, gt=0)
    sigma_max: float = Field(default=80.0, gt=0)
    rho: float = Field(default=7.0, gt=0)
    S_churn: float = Field(default=0.0, ge=0)
    S_min: float = Field(default=0.0, ge=0)
    S_max: float = Field(default=float("inf"), ge=0)
    S_noise: float = Field(default=1.0, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> SamplerSettings:
        if self.sigma_max <= self.sigma_min:
            raise ValueError(f"sigma_max ({self.sigma_max}) must exceed sigma_min ({self.sigma_min})")
        return self


class SamplesManifest(ArtifactHeader):
    """Root attribute `stride` of `samples.zarr`."""

    contract: Literal["stride.samples"] = "stride.samples"
    version: Literal[1] = 1
    target: list[VariableRef]
    dynamic: list[VariableRef]
    static: list[VariableRef]
    grid: GridInfo
    split: Literal["train", "val", "test"]
    n_members: int = Field(ge=1)
    base_seed: int
    seed_rule: str | None = Field(
        default=None,
        description="How the seed of member k of a date derives from (base_seed, the date's timestamp, k): "
        "the array `seeds` holds the values. None: an older store, whose seeds depend on the date's "
        "position in the run.",
    )
    sampler: SamplerSettings
    use_ema: bool
    model_kind: Literal["edm", "regression"]
    checkpoint_step: int
    transforms: TransformSet = Field(description="Scaling state used (already inverted in the arrays).")
    has_target: bool
