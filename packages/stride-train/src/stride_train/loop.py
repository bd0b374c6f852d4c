"""The training loop: EDM (or regression) loss, AdamW with warm-up and clipping, EMA, validation, resume."""

from __future__ import annotations

import itertools
import math
import signal
import time
from dataclasses import dataclass
from types import FrameType
from typing import Any

import numpy as np
import torch

from stride_contracts.checkpoint import ModelSpec
from stride_core.errors import StrideError
from stride_core.progress import get_logger, progress
from stride_core.resume import open_work_folder
from stride_core.tracking import RunContext
from stride_model import EMA, EDMLoss, LossOutput, assemble_condition, build_model, regression_loss
from stride_train.config import TrainConfig
from stride_train.data import ModelSpaceSplit
from stride_train.state import load_state, save_state, training_fingerprint

log = get_logger("stride-train")
SIGMA_BINS = (0.1, 0.5, 2.0)
"""Edges of the noise-level bins for logging the loss per sigma range."""


@dataclass
class TrainResult:
    model: torch.nn.Module
    ema: EMA
    step: int
    metrics: dict[str, float]


class StopRequested:
    """Set by SIGTERM/SIGUSR1 (SLURM pre-emption) so the loop saves its state and exits cleanly."""

    def __init__(self) -> None:
        self.signal_name: str | None = None

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.signal_name = signal.Signals(signum).name

    def install(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGUSR1):
            signal.signal(signum, self)


def choose_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise StrideError("training.device is 'cuda' but no CUDA device is visible; use 'auto' or 'cpu'")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def compute_loss(
    model: torch.nn.Module,
    spec: ModelSpec,
    loss_fn: EDMLoss,
    batch: dict[str, Any],
    generator: torch.Generator,
) -> LossOutput:
    condition = assemble_condition(batch["cond_dynamic"], batch["cond_static"], spec)
    if spec.kind == "regression":
        return regression_loss(model, batch["target"], condition, batch["mask"])
    return loss_fn(model, batch["target"], condition, batch["mask"], generator=generator)


def validation_loss(
    model: torch.nn.Module, spec: ModelSpec, loss_fn: EDMLoss, val: ModelSpaceSplit, config: TrainConfig
) -> float:
    """Loss of the given (EMA) weights on fixed validation samples with fixed noise, so values compare."""
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(config.training.seed + 1)
    index = np.linspace(0, len(val) - 1, min(config.training.val_samples, len(val))).round().astype(int)
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(index), config.training.batch_size):
            chunk = index[start : start + config.training.batch_size]
            out = compute_loss(model, spec, loss_fn, val.batch(chunk, device), generator)
            total += float(out.per_sample.sum())
            count += len(chunk)
    return total / count


def learning_rate(step: int, config: TrainConfig) -> float:
    warmup = config.optim.warmup_steps
    return config.optim.lr * min(1.0, (step + 1) / warmup) if warmup else config.optim.lr


def train(
    spec: ModelSpec,
    train_data: ModelSpaceSplit,
    val_data: ModelSpaceSplit | None,
    config: TrainConfig,
    run: RunContext,
) -> TrainResult:
    loop = config.training
    device = choose_device(loop.device)
    if loop.threads:
        torch.set_num_threads(loop.threads)
    torch.manual_seed(loop.seed)
    model = build_model(spec).to(device)
    ema = EMA(model, halflife_samples=loop.ema_halflife_samples, rampup_ratio=loop.ema_rampup_ratio)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.optim.lr, weight_decay=config.optim.weight_decay
    )
    loss_fn = EDMLoss(config.edm.P_mean, config.edm.P_std, config.edm.sigma_data)
    generator = torch.Generator(device=device).manual_seed(loop.seed)
    index_generator = torch.Generator().manual_seed(loop.seed)

    folder = open_work_folder(config.output, training_fingerprint(config.model_dump(mode="json")))
    start_step, best_val = 0, math.inf
    state = load_state(folder)
    if state is not None:
        model.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        optimizer.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"])
        index_generator.set_state(state["index_generator"])
        start_step, best_val = int(state["step"]), float(state["best_val"])
        log.info("resuming from step %d (state in %s)", start_step, folder)

    def checkpoint_state(step: int) -> None:
        save_state(
            folder,
            {
                "step": step,
                "best_val": best_val,
                "model": model.state_dict(),
                "ema": ema.state_dict(),
                "optimizer": optimizer.state_dict(),
                "generator": generator.get_state(),
                "index_generator": index_generator.get_state(),
            },
        )

    stop = StopRequested()
    stop.install()
    n_params = sum(p.numel() for p in model.parameters())
    run.log_metrics({"model_parameters": float(n_params)})
    log.info(
        "training %s model (%.2fM parameters) on %s for %d steps",
        spec.kind,
        n_params / 1e6,
        device,
        loop.steps,
    )

    window_loss, window_sigma, window_start, metrics = [], [], time.perf_counter(), {}
    model.train()
    for step in progress(range(start_step, loop.steps), total=loop.steps - start_step, desc="training steps"):
        index = torch.randint(len(train_data), (loop.batch_size,), generator=index_generator).numpy()
        lr = learning_rate(step, config)
        for group in optimizer.param_groups:
            group["lr"] = lr
        out = compute_loss(model, spec, loss_fn, train_data.batch(index, device), generator)
        if not torch.isfinite(out.loss):
            raise StrideError(
                f"training diverged at step {step} (loss {float(out.loss)}); lower optim.lr or check the stats"
            )
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.optim.grad_clip or math.inf)
        optimizer.step()
        ema.update(model, loop.batch_size, (step + 1) * loop.batch_size)
        window_loss.append(out.per_sample.detach().cpu())
        window_sigma.append(out.sigma.detach().cpu())

        done = step + 1
        if done % loop.log_every == 0 or done == loop.steps:
            elapsed = time.perf_counter() - window_start
            losses, sigmas = torch.cat(window_loss), torch.cat(window_sigma)
            metrics = {
                "loss": float(losses.mean()),
                "lr": lr,
                "grad_norm": float(grad_norm),
                "samples_per_s": len(losses) / max(elapsed, 1e-9),
            }
            if spec.kind == "edm":
                metrics.update(_loss_per_sigma(losses, sigmas))
            run.log_metrics(metrics, step=done)
            window_loss, window_sigma, window_start = [], [], time.perf_counter()
        if val_data is not None and (done % loop.val_every == 0 or done == loop.steps):
            val_loss = validation_loss(ema.model, spec, loss_fn, val_data, config)
            best_val = min(best_val, val_loss)
            metrics["val_loss_ema"] = val_loss
            run.log_metrics({"val_loss_ema": val_loss}, step=done)
            log.info(
                "step %d: train loss %.4f, EMA validation loss %.4f",
                done,
                metrics.get("loss", math.nan),
                val_loss,
            )
        if done % loop.state_every == 0 and done < loop.steps:
            checkpoint_state(done)
        if stop.signal_name:
            checkpoint_state(done)
            raise StrideError(
                f"stopped by {stop.signal_name} at step {done}; state saved in {folder}; "
                f"run the same command again to resume"
            )
    final_step = max(loop.steps, start_step)
    if val_data is not None and "val_loss_ema" not in metrics:
        metrics["val_loss_ema"] = validation_loss(ema.model, spec, loss_fn, val_data, config)
    metrics["best_val_loss_ema"] = min(best_val, metrics.get("val_loss_ema", math.inf))
    return TrainResult(
        model=model, ema=ema, step=final_step, metrics={k: v for k, v in metrics.items() if math.isfinite(v)}
    )


def _loss_per_sigma(losses: torch.Tensor, sigmas: torch.Tensor) -> dict[str, float]:
    edges = (0.0, *SIGMA_BINS, math.inf)
    result = {}
    for low, high in itertools.pairwise(edges):
        inside = (sigmas >= low) & (sigmas < high)
        if inside.any():
            result[f"loss_sigma_{low:g}_{high:g}"] = float(losses[inside].mean())
    return result
