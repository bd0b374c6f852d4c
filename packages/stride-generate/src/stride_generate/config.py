"""Configuration of `stride-generate`."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from stride_contracts import SamplerSettings
from stride_core.config import StrictConfig
from stride_generate.domain_shift import DomainShiftConfig


class GenerateConfig(StrictConfig):
    """Sample an ensemble per date of one dataset split from a checkpoint."""

    checkpoint: Path
    dataset: Path
    output: Path = Path("samples.zarr")
    split: Literal["train", "val", "test"] = "test"
    members: int = Field(
        default=8, ge=1, le=1024, description="Ensemble members per date (1 for regression)."
    )
    seed: int = Field(
        default=0, ge=0, description="Base seed; member k of date i uses seed + i * members + k."
    )
    date_stride: int = Field(default=1, ge=1, description="Use every n-th date of the split.")
    max_dates: int | None = Field(default=None, ge=1)
    sampler: SamplerSettings = SamplerSettings()
    batch_size: int = Field(default=64, ge=1, description="Members sampled per network call.")
    dates_per_chunk: int = Field(default=8, ge=1, description="Dates finished before progress is saved.")
    use_ema: bool = True
    weights: Literal["best", "last"] = Field(
        default="best",
        description="EMA weights at the lowest validation loss (best; the last ones when the checkpoint has "
        "none) or at the last step (last).",
    )
    threads: int | None = Field(default=None, ge=1)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    domain_shift: DomainShiftConfig = Field(
        default_factory=DomainShiftConfig,
        description="Limits past which generation warns that its LR inputs are unlike the training inputs.",
    )

    @model_validator(mode="after")
    def _raw_weights_are_last(self) -> GenerateConfig:
        if not self.use_ema and self.weights == "best":
            raise ValueError(
                "use_ema=false selects the raw trained weights, which the checkpoint holds for the last step "
                "only; also set weights=last"
            )
        return self
