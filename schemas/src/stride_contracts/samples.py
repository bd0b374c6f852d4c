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


class SamplerSettings(StrictModel):
    """EDM Heun sampler parameters (Karras et al. 2022, Algorithm 2)."""

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
    sampler: SamplerSettings
    use_ema: bool
    model_kind: Literal["edm", "regression"]
    checkpoint_step: int
    transforms: TransformSet = Field(description="Scaling state used (already inverted in the arrays).")
    has_target: bool
