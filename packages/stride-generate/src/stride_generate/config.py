"""Configuration of `stride-generate`."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from stride_contracts import SamplerSettings
from stride_core.config import StrictConfig
from stride_core.regions import RegionConfig
from stride_generate.bounds import IntensityBoundConfig
from stride_generate.domain_shift import DomainShiftConfig
from stride_model.rain_gate import RainGateSettings


class TilingConfig(StrictConfig):
    """Where the domain exceeds the training patch: overlapping tiles of that patch, blended at every step.

    A domain that fits in the patch is sampled in one pass whatever this says.
    """

    tile: tuple[int, int] | None = Field(
        default=None,
        description="HR tile (height, width); must be the checkpoint's training patch (None: that patch).",
    )
    overlap: int | None = Field(
        default=None,
        ge=0,
        description="HR pixels shared by neighbouring tiles: a multiple of the factor, < the tile (None: a "
        "quarter of the tile, stride_model.sampling.default_overlap).",
    )
    tile_batch: int = Field(default=16, ge=1, description="Tiles per network call (bounds the memory).")
    border: int | None = Field(
        default=None,
        ge=0,
        description="HR pixels the tiled domain is grown by on every side (conditioning mirrored) and cropped "
        "off after sampling, so the domain's outermost pixels are not predicted from a tile's edge: a "
        "multiple of the factor (None: the overlap; 0: no margin; stride_model.sampling.border).",
    )


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
        default=0,
        ge=0,
        description="Base seed; member k of date t uses a seed hashed from (seed, t's timestamp, k), so a "
        "member is the same whichever dates the run covers (stride_generate.seeds.SEED_RULE).",
    )
    date_stride: int = Field(default=1, ge=1, description="Use every n-th date of the split.")
    max_dates: int | None = Field(default=None, ge=1, description="At most this many dates.")
    dates: list[str] | None = Field(
        default=None,
        min_length=1,
        description="Only these dates of the split, as ISO timestamps (e.g. 2020-01-02T05:00:00 or "
        "2020-01-02T05); before date_stride and max_dates. Regenerates exactly those dates' members.",
    )
    region: RegionConfig | None = Field(
        default=None,
        description="Generate only this part of the dataset's grid (a named region, center + size, or an HR "
        "index box, as stride-data's region), without rebuilding the dataset; None: the whole grid.",
    )
    sampler: SamplerSettings = SamplerSettings()
    # precip helper (issue 9 section 7): the per-member RainGate draw and the intensity bound.
    rain_gate: RainGateSettings = Field(
        default_factory=RainGateSettings,
        description="How a RainGate model's P(wet) becomes each member's dry pixels (rule: hurdle, the default | sample | threshold | none; stride_model.rain_gate).",
    )
    intensity_bound: IntensityBoundConfig = Field(
        default_factory=IntensityBoundConfig,
        description="Clip members to a multiple of the training range per target (stride_generate.bounds).",
    )
    tiling: TilingConfig | None = Field(
        default_factory=TilingConfig,
        description="Tiled (blended) sampling where the domain exceeds the training patch; null: always one "
        "pass over the whole domain (the network then sees a field larger than it was trained on).",
    )
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

    @field_validator("dates", mode="before")
    @classmethod
    def _dates_as_text(cls, value: Any) -> Any:
        # YAML (and --set) read 2020-01-02 as a date; the selection compares ISO text.
        if isinstance(value, list):
            return [item.isoformat() if isinstance(item, date) else item for item in value]
        return value

    @model_validator(mode="after")
    def _raw_weights_are_last(self) -> GenerateConfig:
        if not self.use_ema and self.weights == "best":
            raise ValueError(
                "use_ema=false selects the raw trained weights, which the checkpoint holds for the last step "
                "only; also set weights=last"
            )
        return self
