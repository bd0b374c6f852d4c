"""One optimizer step on this process's share of a global batch: forward, loss, backward, clip, AdamW, EMA."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from stride_contracts.checkpoint import ModelSpec
from stride_model import EMA, EDMLoss
from stride_train.distributed import World
from stride_train.objective import EDMDraws, global_mean_term, model_loss

Precision = Literal["fp32", "bf16", "fp16"]
AUTOCAST_DTYPES: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class StepResult:
    """Detached outputs of a step: this rank's loss term, its per-sample losses and noise levels, grad norm,
    and the RainGate's BCE on this rank's share (None without a gate)."""

    loss_term: Tensor
    per_sample: Tensor
    sigma: Tensor
    grad_norm: Tensor
    gate_loss: Tensor | None = None


class TrainStep:
    """Runs steps of `model` (the bare network, whose state dict is saved) through its DDP/compiled wrapper.

    Autocast covers the forward pass only; stride_model's EDM preconditioning and the loss stay float32.
    fp16 scales the loss with a GradScaler (its skipped steps still update the EMA, as the weights stand).
    With spec.use_rain_gate the loss adds rain_gate_weight x the gate's BCE (batches must carry 'wet').
    """

    def __init__(
        self,
        model: nn.Module,
        spec: ModelSpec,
        loss_fn: EDMLoss,
        optimizer: torch.optim.Optimizer,
        ema: EMA[Any] | None,
        *,
        precision: Precision = "fp32",
        channels_last: bool = False,
        compile: bool = False,
        grad_clip: float | None = None,
        world: World | None = None,
        rain_gate_weight: float = 1.0,
    ) -> None:
        self.world = world or World()
        self.device = next(model.parameters()).device
        self.model, self.spec, self.loss_fn, self.optimizer, self.ema = model, spec, loss_fn, optimizer, ema
        self.grad_clip = grad_clip or math.inf
        self.rain_gate_weight = rain_gate_weight
        self.autocast_dtype = AUTOCAST_DTYPES[precision]
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        if channels_last:
            # Module.to accepts memory_format (documented) though torch's type stubs omit it.
            model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        network: Any = model
        if self.world.is_distributed:
            ids = [self.device.index] if self.device.type == "cuda" else None
            network = DistributedDataParallel(model, device_ids=ids)
        if compile:
            # Static shapes: a new patch or batch size recompiles for that size instead of tracing a
            # size-generic graph, which Inductor (torch 2.13, CPU) failed to lower for this UNet
            # ("cannot determine truth value of Relational") on the second size it saw.
            network = torch.compile(network, dynamic=False)
        self.network = network
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=precision == "fp16")

    def __call__(
        self,
        batch: dict[str, Any],
        draws: EDMDraws | None,
        *,
        lr: float,
        global_valid: int,
        global_batch: int,
        samples_seen: int,
    ) -> StepResult:
        """One step; global_valid counts the valid target pixels of the whole global batch."""
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        with torch.autocast(
            self.device.type,
            dtype=self.autocast_dtype or torch.float32,
            enabled=self.autocast_dtype is not None,
        ):
            out = model_loss(
                self.network,
                self.spec,
                self.loss_fn,
                batch,
                draws,
                self.memory_format,
                rain_gate_weight=self.rain_gate_weight,
            )
            loss = global_mean_term(out, batch["mask"], global_valid, self.world.world_size)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.ema is not None:
            self.ema.update(self.model, global_batch, samples_seen)
        gate_loss = None if out.gate_loss is None else out.gate_loss.detach()
        return StepResult(
            loss.detach(), out.per_sample.detach(), out.sigma.detach(), grad_norm.detach(), gate_loss
        )
