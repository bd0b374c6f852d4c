"""Configuration of `stride-train`."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from stride_contracts.checkpoint import FeatureSpec
from stride_core.config import StrictConfig
from stride_core.patches import RainWeighting
from stride_core.variables import TransformKind


class RainGateConfig(StrictConfig):
    """The RainGate head: P(target > threshold) per HR pixel, trained with a BCE term beside the main loss."""

    threshold: float = Field(
        ge=0,
        allow_inf_nan=False,
        description="Wet where the physical target exceeds this, in the target's units (e.g. 0.1 mm h-1).",
    )
    weight: float = Field(
        default=1.0,
        gt=0,
        allow_inf_nan=False,
        description="Weight of the BCE term next to the EDM (or MSE) loss.",
    )


class ModelConfig(StrictConfig):
    """Network size, kind and optional parts; channel counts and shapes come from the data, never from here."""

    kind: Literal["edm", "regression"] = "edm"
    model_channels: int = Field(default=32, ge=4, le=1024)
    channel_mult: tuple[int, ...] = Field(default=(1, 2, 2), min_length=1, max_length=6)
    num_blocks: int = Field(default=1, ge=1, le=8)
    attn_resolutions: tuple[int, ...] = (2,)
    dropout: float = Field(default=0.0, ge=0, lt=1)
    context_encoder: bool = Field(
        default=False,
        description="Encode the LR context region around each sample into a FiLM vector (needs a context margin "
        "in the features).",
    )
    context_channels: int = Field(default=32, ge=4, le=512, description="Width of the context encoder.")
    film_vars: bool = Field(default=False, description="FiLM embedding of the target variables' labels.")
    film_doy: bool = Field(
        default=False,
        description="FiLM embedding of the time features (needs time_features in the features).",
    )
    rain_gate: RainGateConfig | None = Field(
        default=None, description="RainGate head and its BCE term; None leaves it out."
    )

    @model_validator(mode="after")
    def _attention_levels_exist(self) -> ModelConfig:
        levels = len(self.channel_mult)
        bad = [level for level in self.attn_resolutions if not 0 <= level < levels]
        if bad:
            raise ValueError(
                f"attn_resolutions {list(bad)} name levels that do not exist: channel_mult has {levels} levels "
                f"(0..{levels - 1})"
            )
        return self


class EDMConfig(StrictConfig):
    """EDM training noise distribution, ln(sigma) ~ N(P_mean, P_std^2), and sigma_data (Karras et al. 2022)."""

    P_mean: float = -1.2
    P_std: float = Field(default=1.2, gt=0)
    sigma_data: float = Field(default=1.0, gt=0)


class OptimConfig(StrictConfig):
    """AdamW with linear warm-up and gradient-norm clipping."""

    lr: float = Field(default=1e-3, gt=0)
    weight_decay: float = Field(default=0.0, ge=0)
    warmup_steps: int = Field(default=100, ge=0)
    grad_clip: float | None = Field(default=1.0, gt=0)


class LoopConfig(StrictConfig):
    steps: int = Field(default=2000, ge=1)
    batch_size: int = Field(
        default=32,
        ge=1,
        description="Global batch: samples per optimizer step over all processes of a torchrun job "
        "(must divide by their number).",
    )
    seed: int = 0
    ema_halflife_samples: int = Field(default=5000, ge=1, description="EMA half-life in training samples.")
    ema_rampup_ratio: float | None = Field(default=0.05, gt=0)
    log_every: int = Field(default=25, ge=1)
    val_every: int = Field(default=250, ge=1)
    val_samples: int = Field(
        default=64, ge=1, description="Validation samples (fixed, with fixed noise draws)."
    )
    state_every: int = Field(default=200, ge=1, description="Steps between resumable state saves.")
    threads: int | None = Field(
        default=None, ge=1, description="torch CPU threads (default: torch's choice)."
    )
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["fp32", "bf16", "fp16"] = Field(
        default="fp32",
        description="Autocast dtype of the network's forward pass (bf16 also on the CPU; fp16 adds a gradient "
        "scaler); the EDM preconditioning, the loss, validation and the saved weights stay float32. fp32 by "
        "default: on a CPU without avx512_bf16/amx_bf16 (AMD Zen 3) bf16 is ~50x slower "
        "(bench/results/peak.json); bf16 pays off on GPUs and CPUs with bf16 units.",
    )
    channels_last: bool = Field(
        default=False, description="Channels-last memory layout of the network (faster convolutions on CUDA)."
    )
    compile: bool = Field(
        default=False,
        description="torch.compile the network: slower first steps, then faster ones (needs a C++ compiler).",
    )


class PerturbationConfig(StrictConfig):
    """Change LR input `variable` to scale * x + add (physical units) and log the HR response against it."""

    variable: str
    add: float = Field(default=0.0, allow_inf_nan=False, description="E.g. 2.0 for +2 K of temperature.")
    scale: float = Field(
        default=1.0, gt=0, allow_inf_nan=False, description="E.g. 1.2 for +20% precipitation."
    )

    @model_validator(mode="after")
    def _changes_something(self) -> PerturbationConfig:
        if self.add == 0 and self.scale == 1:
            raise ValueError(f"perturbation of '{self.variable}' changes nothing: set add or scale")
        return self


class InlineEvalConfig(StrictConfig):
    """Every `every` steps: `members` members for `dates` evenly spaced validation dates."""

    every: int | None = Field(default=None, ge=1, description="Steps between evaluations; None turns it off.")
    dates: int = Field(default=4, ge=1)
    members: int = Field(default=4, ge=2)
    sampler_steps: int = Field(default=10, ge=2, le=200)
    seed: int = Field(default=1_000_003, ge=0)
    perturbations: list[PerturbationConfig] = Field(
        default_factory=list,
        description="Perturbation-response diagnostics run with each evaluation (same seeds, so noise cancels).",
    )


class DataConfig(StrictConfig):
    """How samples are drawn from the dataset: features, patches, rain weighting and loader workers."""

    features: FeatureSpec = Field(
        default_factory=FeatureSpec,
        description="Temporal stacking, time encodings and context margin; carried in the checkpoint.",
    )
    patch: tuple[int, int] | None = Field(
        default=None,
        description="HR crop [height, width] at a random position per sample (a multiple of the factor); "
        "None trains on the whole domain.",
    )
    rain_weighting: RainWeighting | None = Field(
        default=None, description="Draw patch positions weighted towards wet LR boxes."
    )
    workers: int = Field(
        default=0, ge=0, le=64, description="DataLoader worker processes (0: in the main one)."
    )
    in_memory: bool | None = Field(
        default=None,
        description="Load the splits into memory; None decides by size (up to in_memory_limit_mb).",
    )
    in_memory_limit_mb: float = Field(default=2048, gt=0)


class TrainConfig(StrictConfig):
    """Train an EDM (or regression) downscaling model on a dataset with its offline stats."""

    dataset: Path
    stats: Path
    output: Path = Path("checkpoint")
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    edm: EDMConfig = EDMConfig()
    optim: OptimConfig = OptimConfig()
    training: LoopConfig = LoopConfig()
    inline_eval: InlineEvalConfig = InlineEvalConfig()
    transforms: dict[str, TransformKind] = Field(
        default_factory=dict, description="Per-variable transform overriding the registry's default."
    )
    variables_file: Path | None = None

    @model_validator(mode="after")
    def _warmup_fits(self) -> TrainConfig:
        if self.optim.warmup_steps > self.training.steps:
            raise ValueError(
                f"optim.warmup_steps ({self.optim.warmup_steps}) exceeds training.steps ({self.training.steps})"
            )
        return self
