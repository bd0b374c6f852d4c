"""Contract for `checkpoint/`: ModelSpec, transform metadata and the resolved training config."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from stride_contracts.base import ArtifactHeader, StrictModel
from stride_contracts.dataset import VariableRef
from stride_contracts.stats import StatsRow


class ModelSpec(StrictModel):
    """Everything the network needs to be built; computed outside the model (contract C)."""

    kind: Literal["edm", "regression"] = "edm"
    in_dynamic_channels: int = Field(ge=1, description="LR dynamic channels per time step.")
    in_static_channels: int = Field(ge=0)
    out_channels: int = Field(ge=1)
    temporal_steps: int = Field(default=1, ge=1)
    lr_shape: tuple[int, int]
    hr_shape: tuple[int, int]
    use_context_encoder: bool = Field(
        default=False,
        description="Encode the LR context region (cond_context) into a vector that modulates every residual "
        "block through FiLM; needs context_shape.",
    )
    use_rain_gate: bool = Field(
        default=False,
        description="Add the RainGate head (P(target > rain_gate_threshold) per HR pixel); needs "
        "rain_gate_threshold.",
    )
    use_film_vars: bool = Field(
        default=False, description="FiLM embedding of the target variables' labels; needs num_var_labels."
    )
    use_film_doy: bool = Field(
        default=False,
        description="FiLM embedding of the time features (day of year, hour); needs n_time_features.",
    )
    n_time_features: int = Field(
        default=0,
        ge=0,
        description="Time features per sample (FeatureSpec.n_time_features) read by the day-of-year FiLM; > 0 "
        "exactly when use_film_doy.",
    )
    context_shape: tuple[int, int] | None = Field(
        default=None,
        description="LR context region (rows, cols) for a sample of lr_shape: lr_shape + 2 * margin on each "
        "axis; set exactly when use_context_encoder.",
    )
    context_channels: int = Field(
        default=32, ge=4, description="Width of the context encoder's convolutions."
    )
    num_var_labels: int | None = Field(
        default=None,
        ge=1,
        description="Size of the variable-label vocabulary (labels 0..num_var_labels-1); set exactly when "
        "use_film_vars.",
    )
    rain_gate_threshold: float | None = Field(
        default=None,
        allow_inf_nan=False,
        description="A target pixel is wet where its physical value exceeds this (target units, e.g. mm h-1); "
        "set exactly when use_rain_gate.",
    )
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

    @model_validator(mode="after")
    def _integer_factor(self) -> ModelSpec:
        # The conditioning is upsampled by this factor from whatever LR size a batch has (patches in
        # training, the full domain in generation), so it must be one integer shared by both axes.
        lr_h, lr_w = self.lr_shape
        factor = self.hr_shape[0] // lr_h if lr_h > 0 else 0
        if factor < 1 or (lr_h * factor, lr_w * factor) != tuple(self.hr_shape):
            raise ValueError(
                f"hr_shape {self.hr_shape} is not an integer factor times lr_shape {self.lr_shape} on both axes"
            )
        return self

    @model_validator(mode="after")
    def _feature_inputs(self) -> ModelSpec:
        # Each optional feature names the input size it needs; an input size without its feature would be
        # silently ignored, so both directions are errors.
        if self.use_film_doy != (self.n_time_features > 0):
            raise ValueError(
                f"use_film_doy={self.use_film_doy} needs n_time_features > 0 exactly when it is on, got "
                f"{self.n_time_features}; set n_time_features to FeatureSpec.n_time_features (time_features "
                f"doy/hour) or turn use_film_doy off"
            )
        if self.use_film_vars != (self.num_var_labels is not None):
            raise ValueError(
                f"use_film_vars={self.use_film_vars} needs num_var_labels set exactly when it is on, got "
                f"{self.num_var_labels}"
            )
        if self.use_rain_gate != (self.rain_gate_threshold is not None):
            raise ValueError(
                f"use_rain_gate={self.use_rain_gate} needs rain_gate_threshold set exactly when it is on, got "
                f"{self.rain_gate_threshold}"
            )
        if self.use_context_encoder != (self.context_shape is not None):
            raise ValueError(
                f"use_context_encoder={self.use_context_encoder} needs context_shape set exactly when it is "
                f"on, got {self.context_shape}"
            )
        if self.context_shape is not None:
            margins = [(c - lr) / 2 for c, lr in zip(self.context_shape, self.lr_shape, strict=True)]
            if margins[0] != margins[1] or margins[0] < 1 or not margins[0].is_integer():
                raise ValueError(
                    f"context_shape {self.context_shape} must be lr_shape {self.lr_shape} + 2 * margin on "
                    f"both axes with one integer margin >= 1 (FeatureSpec.context_margin)"
                )
        return self

    @property
    def in_channels(self) -> int:
        """Channels fed to the UNet besides the noisy target."""
        return self.in_dynamic_channels * self.temporal_steps + self.in_static_channels

    @property
    def factor(self) -> int:
        """HR cells per LR cell along each axis."""
        return self.hr_shape[0] // self.lr_shape[0]

    @property
    def context_margin(self) -> int:
        """LR cells the context region adds on each side of the sample's LR box (0 without a context)."""
        if self.context_shape is None:
            return 0
        return (self.context_shape[0] - self.lr_shape[0]) // 2

    @property
    def uses_film(self) -> bool:
        """Whether any per-sample embedding (context, variable labels, time) modulates the network."""
        return self.use_context_encoder or self.use_film_vars or self.use_film_doy


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
    training_stats: list[StatsRow] = Field(
        default_factory=list,
        description="The train split's statistics of every variable the model was trained on (the rows of "
        "stats.parquet): generation compares its inputs with them (domain shift) and bounds its outputs by them.",
    )
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
