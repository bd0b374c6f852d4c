"""Contract for `checkpoint/`: ModelSpec, transform metadata and the resolved training config."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from stride_contracts.base import ArtifactHeader, StrictModel
from stride_contracts.dataset import VariableRef


class ModelSpec(StrictModel):
    """Everything the network needs to be built; computed outside the model (contract C)."""

    kind: Literal["edm", "regression"] = "edm"
    in_dynamic_channels: int = Field(ge=1, description="LR dynamic channels per time step.")
    in_static_channels: int = Field(ge=0)
    out_channels: int = Field(ge=1)
    temporal_steps: int = Field(default=1, ge=1)
    lr_shape: tuple[int, int]
    hr_shape: tuple[int, int]
    use_context_encoder: bool = False
    use_rain_gate: bool = False
    use_film_vars: bool = False
    use_film_doy: bool = False
    model_channels: int = Field(default=32, ge=4)
    channel_mult: tuple[int, ...] = Field(default=(1, 2, 2), min_length=1)
    num_blocks: int = Field(default=1, ge=1, description="Residual blocks per resolution level.")
    attn_resolutions: tuple[int, ...] = Field(
        default=(), description="Levels (0 = full resolution) that get self-attention."
    )
    dropout: float = Field(default=0.0, ge=0, lt=1)
    sigma_data: float = Field(default=1.0, gt=0)

    @model_validator(mode="after")
    def _divisible(self) -> ModelSpec:
        down = 2 ** (len(self.channel_mult) - 1)
        for axis, size in zip(("height", "width"), self.hr_shape, strict=True):
            if size % down:
                raise ValueError(
                    f"hr_shape {axis} {size} is not divisible by {down} "
                    f"(2^(len(channel_mult)-1)); use fewer levels or a different crop"
                )
        for level in self.attn_resolutions:
            if not 0 <= level < len(self.channel_mult):
                raise ValueError(f"attn_resolutions level {level} outside 0..{len(self.channel_mult) - 1}")
        return self

    @property
    def in_channels(self) -> int:
        """Channels fed to the UNet besides the noisy target."""
        return self.in_dynamic_channels * self.temporal_steps + self.in_static_channels


class FeatureSpec(StrictModel):
    """How the adapter turns dataset time steps into model inputs; the checkpoint carries it so that
    generation builds exactly the inputs the model was trained on."""

    temporal_steps: int = Field(default=1, ge=1, description="LR time steps stacked per sample (T).")
    temporal_mode: Literal["centred", "past"] = Field(
        default="centred",
        description="centred: steps t-(T-1)//2 .. t+T//2; past: steps t-T+1 .. t.",
    )
    temporal_edge: Literal["drop", "clamp"] = Field(
        default="clamp",
        description="At split and data edges (and gaps in time): drop samples whose window does not fit, or "
        "clamp the window to the nearest step of the same split.",
    )
    time_features: tuple[Literal["doy", "hour"], ...] = Field(
        default=(), description="Cyclic encodings, each as a (sin, cos) pair, in this order."
    )
    context_margin: int = Field(
        default=0,
        ge=0,
        description="LR cells added on each side of the sample's LR box for the context region.",
    )

    @property
    def n_time_features(self) -> int:
        return 2 * len(self.time_features)


class ZScoreSpec(StrictModel):
    """x' = (x - mean) / std."""

    kind: Literal["zscore"] = "zscore"
    mean: float
    std: float = Field(gt=0)


class LogZScoreSpec(StrictModel):
    """x' = (log(x + eps) - mean) / std, for positive-definite variables."""

    kind: Literal["log_zscore"] = "log_zscore"
    eps: float = Field(gt=0)
    mean: float
    std: float = Field(gt=0)


class MinMaxSpec(StrictModel):
    """x' = (x - min) / (max - min), mapping [min, max] onto [0, 1]."""

    kind: Literal["minmax"] = "minmax"
    min: float
    max: float

    @model_validator(mode="after")
    def _range(self) -> MinMaxSpec:
        if not self.max > self.min:
            raise ValueError(f"minmax needs max > min, got min={self.min} max={self.max}")
        return self


class BoxCoxSpec(StrictModel):
    """x' = (b(x + shift) - mean) / std with b(u) = (u^lmbda - 1) / lmbda, or log(u) when lmbda = 0.

    Box & Cox (1964) for non-negative variables; shift > 0 keeps exact zeros (dry cells) in the domain,
    and mean/std are those of b(x + shift) over the train split, so the output is z-scored. lmbda >= 0:
    for lmbda < 0 the image of b is bounded above by -1/lmbda, and model outputs beyond it would have no
    finite amount to map back to.
    """

    kind: Literal["boxcox"] = "boxcox"
    lmbda: float = Field(ge=0, allow_inf_nan=False, description="Box-Cox exponent, fitted offline.")
    shift: float = Field(gt=0, allow_inf_nan=False, description="Added to x before the power.")
    mean: float = Field(allow_inf_nan=False)
    std: float = Field(gt=0, allow_inf_nan=False)


class SqrtSpec(StrictModel):
    """x' = (sqrt(x) - mean) / std, for non-negative variables."""

    kind: Literal["sqrt"] = "sqrt"
    mean: float = Field(allow_inf_nan=False, description="Mean of sqrt(x) over the train split.")
    std: float = Field(gt=0, allow_inf_nan=False)


TransformSpec = Annotated[
    ZScoreSpec | LogZScoreSpec | BoxCoxSpec | SqrtSpec | MinMaxSpec, Field(discriminator="kind")
]


class VariableTransform(StrictModel):
    """The transform applied to one variable, with every parameter spelled out (contract B)."""

    variable: str
    transform: TransformSpec


class TransformSet(StrictModel):
    """Transforms for each role, in channel order."""

    target: list[VariableTransform]
    dynamic: list[VariableTransform]
    static: list[VariableTransform]


class CheckpointManifest(ArtifactHeader):
    """`checkpoint/manifest.json`."""

    contract: Literal["stride.checkpoint"] = "stride.checkpoint"
    version: Literal[1] = 1
    model_spec: ModelSpec
    transforms: TransformSet
    target: list[VariableRef]
    dynamic: list[VariableRef]
    static: list[VariableRef]
    features: FeatureSpec = FeatureSpec()
    step: int = Field(ge=0, description="Optimizer steps behind the last weights.")
    weights_file: str = Field(default="weights.pt", description="Trained weights at the last step.")
    ema_weights_file: str = Field(default="ema_weights.pt", description="EMA weights at the last step.")
    best_ema_weights_file: str | None = Field(
        default=None,
        description="EMA weights at the lowest EMA validation loss; None when trained without a val split.",
    )
    best_step: int | None = Field(default=None, ge=0, description="Step of the best EMA weights.")
    best_val_loss: float | None = Field(default=None, description="EMA validation loss of the best weights.")
    training_config: dict[str, Any] = Field(description="The resolved training config.")
    final_metrics: dict[str, float] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _best_all_or_none(self) -> CheckpointManifest:
        best = {
            "best_ema_weights_file": self.best_ema_weights_file,
            "best_step": self.best_step,
            "best_val_loss": self.best_val_loss,
        }
        given = sorted(name for name, value in best.items() if value is not None)
        if given and len(given) != len(best):
            raise ValueError(
                f"either none or all of best_ema_weights_file, best_step and best_val_loss must be set; got only "
                f"{', '.join(given)}"
            )
        if self.best_step is not None and self.best_step > self.step:
            raise ValueError(f"best_step {self.best_step} is after the last step {self.step}")
        return self
