"""The training loop: global batches shared over ranks, AdamW with warm-up, EMA, best/last, exact resume."""

from __future__ import annotations

import itertools
import math
import resource
import signal
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import Any

import numpy as np
import torch

from stride_contracts.checkpoint import ModelSpec
from stride_core.errors import Preempted, StrideError
from stride_core.progress import get_logger, progress
from stride_core.resume import open_work_folder, work_folder
from stride_core.tracking import RunContext
from stride_model import EMA, EDMLoss, build_model
from stride_model.adapter import StepBatchSampler, batch_to, make_loader
from stride_train.config import TrainConfig
from stride_train.data import TrainingData
from stride_train.distributed import World
from stride_train.inline_eval import InlineEvaluator
from stride_train.objective import draw_edm
from stride_train.precision import native_bf16
from stride_train.state import load_state, save_state, training_fingerprint
from stride_train.step import TrainStep
from stride_train.validation import BestWeights, Validator

log = get_logger("stride-train")
SIGMA_BINS = (0.1, 0.5, 2.0)
"""Edges of the noise-level bins for logging the loss per sigma range."""


@dataclass
class TrainResult:
    model: torch.nn.Module
    ema: EMA[Any]
    step: int
    metrics: dict[str, float]
    best: BestWeights


class EvaluationInterrupted(Exception):
    """A stop signal came during an inline evaluation, which was abandoned (it only logs)."""


class StopRequested:
    """Set by SIGTERM/SIGUSR1 (SLURM pre-emption) so the loop saves its state and exits cleanly."""

    SIGNALS = (signal.SIGTERM, signal.SIGUSR1)

    def __init__(self) -> None:
        self.signum = 0
        self._previous: dict[int, Any] = {}
        self._interrupting = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.signum = signum
        if self._interrupting:
            self._interrupting = False
            raise EvaluationInterrupted(signal.Signals(signum).name)

    @contextmanager
    def interrupting(self) -> Iterator[None]:
        """Inside, a stop signal also raises EvaluationInterrupted at once.

        An inline evaluation samples a whole ensemble and can run for minutes on a CPU. Only checking the
        flag at the next step made a pre-empted job hold on for all of that, past SLURM's grace period.
        """
        if self.signum:
            raise EvaluationInterrupted(signal.Signals(self.signum).name)
        self._interrupting = True
        try:
            yield
        finally:
            self._interrupting = False

    def install(self) -> None:
        self._previous = {signum: signal.signal(signum, self) for signum in self.SIGNALS}

    def uninstall(self) -> None:
        """Give the signals back to the handlers they had before install()."""
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}


def step_seed(seed: int, step: int, rank: int) -> int:
    """A 64-bit seed for the global RNG at one step of one rank, well mixed (numpy's SeedSequence)."""
    return int(np.random.SeedSequence([seed, step, rank]).generate_state(1, dtype=np.uint64)[0])


def learning_rate(step: int, config: TrainConfig) -> float:
    warmup = config.optim.warmup_steps
    return config.optim.lr * min(1.0, (step + 1) / warmup) if warmup else config.optim.lr


def peak_memory_mb(device: torch.device) -> dict[str, float]:
    """Peak resident memory of this process and, on CUDA, the peak memory torch allocated on the GPU."""
    # ru_maxrss is in KiB on Linux and in bytes on macOS.
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (2**20 if sys.platform == "darwin" else 2**10)
    memory = {"peak_rss_mb": float(rss)}
    if device.type == "cuda":  # GPU-only branch
        memory["peak_cuda_allocated_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    return memory


def train(
    spec: ModelSpec,
    data: TrainingData,
    config: TrainConfig,
    run: RunContext,
    world: World | None = None,
    stop: StopRequested | None = None,
    inline: InlineEvaluator | None = None,
) -> TrainResult:
    """Train for training.steps global batches; every rank of a DDP job runs this with the same arguments.

    `stop` is the caller's installed SIGTERM/SIGUSR1 handler (None: signals are not watched); a signal
    that came before the first step stops the run after it. `inline` (rank 0 only) scores a small ensemble
    of the EMA weights now and then; it only logs.
    """
    world = world or World()
    stop = stop or StopRequested()
    loop, device = config.training, world.device
    if loop.threads:
        torch.set_num_threads(loop.threads)
    torch.manual_seed(loop.seed)
    model = build_model(spec).to(device)
    ema = EMA(model, halflife_samples=loop.ema_halflife_samples, rampup_ratio=loop.ema_rampup_ratio)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.optim.lr, weight_decay=config.optim.weight_decay
    )
    loss_fn = EDMLoss(config.edm.P_mean, config.edm.P_std, config.edm.sigma_data)
    # Every rank draws the whole global batch's noise from this, in lockstep, and keeps its share; the
    # samples of step s come from StepBatchSampler, a function of (seed, s) alone.
    generator = torch.Generator(device=device).manual_seed(loop.seed)
    best = BestWeights(keep_weights=world.is_main)

    fingerprint = training_fingerprint(config.model_dump(mode="json"))
    world.on_main(lambda: open_work_folder(config.output, fingerprint))
    folder = work_folder(config.output)
    start_step = 0
    state = load_state(folder)
    if state is not None:
        model.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        optimizer.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"])
        best.load_state_dict(state["best"])
        start_step = int(state["step"])
        log.info("resuming from step %d (state in %s)", start_step, folder)
    step_fn = TrainStep(
        model,
        spec,
        loss_fn,
        optimizer,
        ema,
        precision=loop.precision,
        channels_last=loop.channels_last,
        compile=loop.compile,
        grad_clip=config.optim.grad_clip,
        world=world,
        rain_gate_weight=config.model.rain_gate.weight if config.model.rain_gate else 1.0,
    )
    if state is not None and state.get("scaler"):
        step_fn.scaler.load_state_dict(state["scaler"])
    validator = (
        Validator(
            data.val,
            spec,
            loss_fn,
            samples=loop.val_samples,
            batch_size=loop.batch_size,
            seed=loop.seed,
            world=world,
        )
        if data.val is not None
        else None
    )

    def checkpoint_state(step: int) -> None:
        if world.is_main:
            save_state(
                folder,
                {
                    "step": step,
                    "model": model.state_dict(),
                    "ema": ema.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scaler": step_fn.scaler.state_dict(),
                    "generator": generator.get_state(),
                    "best": best.state_dict(),
                },
            )

    def validate(step: int) -> float:
        assert validator is not None
        val_loss = validator.loss(ema.model)
        if best.offer(step, val_loss, ema.model):
            run.log_metrics({"best_val_loss_ema": val_loss}, step=step)
        run.log_metrics({"val_loss_ema": val_loss}, step=step)
        return val_loss

    n_params = sum(p.numel() for p in model.parameters())
    run.log_metrics({"model_parameters": float(n_params), "world_size": float(world.world_size)})
    log.info(
        "training %s model (%.2fM parameters) on %s%s for %d steps of %d samples (%s)",
        spec.kind,
        n_params / 1e6,
        device,
        f" x {world.world_size} processes" if world.is_distributed else "",
        loop.steps,
        loop.batch_size,
        loop.precision,
    )

    if loop.precision == "bf16" and not native_bf16(device):
        log.warning(
            "training.precision=bf16 on %s, which has no bf16 arithmetic: expect steps many times slower than "
            "fp32 (about 45x for matmuls and convolutions on AMD Zen 3, bench/results/peak.json)",
            device,
        )

    mine = world.share(loop.batch_size)
    sample_shape = (spec.out_channels, *data.counts.hr_shape)
    sampler = StepBatchSampler(
        len(data.train),
        loop.batch_size,
        loop.steps,
        seed=loop.seed,
        start_step=start_step,
        rank=world.rank,
        world_size=world.world_size,
    )
    batches = iter(make_loader(data.train, sampler, config.data.workers, pin_memory=device.type == "cuda"))
    window_loss, window_sigma, window_gate, window_start, metrics = [], [], [], time.perf_counter(), {}
    steps: Iterable[int] = range(start_step, loop.steps)
    if world.is_main:
        steps = progress(steps, total=loop.steps - start_step, desc="training steps")
    model.train()
    for step in steps:
        batch = batch_to(next(batches), device)
        draws = draw_edm(generator, loop.batch_size, sample_shape) if spec.kind == "edm" else None
        # Dropout draws from the global RNG: seeded from (seed, step, rank), a resumed run draws the masks the
        # uninterrupted run drew.
        torch.manual_seed(step_seed(loop.seed, step, world.rank))
        lr = learning_rate(step, config)
        result = step_fn(
            batch,
            None if draws is None else draws[mine],
            lr=lr,
            global_valid=int(world.sum(batch["mask"].sum())),
            global_batch=loop.batch_size,
            samples_seen=(step + 1) * loop.batch_size,
        )
        # One collective per step: the global loss, and whether any rank was told to stop.
        flag = torch.tensor(float(stop.signum > 0), device=result.loss_term.device)
        reduced = world.sum(torch.stack([result.loss_term.float(), flag]))
        loss, stopping = float(reduced[0]) / world.world_size, bool(reduced[1] > 0)
        if not math.isfinite(loss):
            raise StrideError(
                f"training diverged at step {step} (loss {loss}); lower optim.lr or check the stats"
            )
        window_loss.append(result.per_sample.float())
        window_sigma.append(result.sigma.float())
        if result.gate_loss is not None:
            window_gate.append(result.gate_loss.float().reshape(1))

        done = step + 1
        window_closed = done % loop.log_every == 0 or done == loop.steps
        if window_closed:
            losses, sigmas = (
                world.gather(torch.cat(window_loss)).cpu(),
                world.gather(torch.cat(window_sigma)).cpu(),
            )
            elapsed = time.perf_counter() - window_start
            metrics = {
                "loss": float(losses.mean()),
                "lr": lr,
                "grad_norm": float(result.grad_norm),
                "samples_per_s": len(losses) / max(elapsed, 1e-9),
                **peak_memory_mb(device),
            }
            if spec.kind == "edm":
                metrics.update(_loss_per_sigma(losses, sigmas))
            if window_gate:
                metrics["rain_gate_bce"] = float(world.gather(torch.cat(window_gate)).mean())
            run.log_metrics(metrics, step=done)
            window_loss, window_sigma, window_gate, window_start = [], [], [], time.perf_counter()
        if validator is not None and (done % loop.val_every == 0 or done == loop.steps):
            metrics["val_loss_ema"] = validate(done)
            log.info(
                "step %d: train loss %.4f, EMA validation loss %.4f (best %.4f at step %s)",
                done,
                # The window's mean when one closed at this step, else this step's own loss (a validation
                # before the first log window closes used to print "nan").
                metrics["loss"] if window_closed else loss,
                metrics["val_loss_ema"],
                best.val_loss,
                best.step,
            )
        if inline is not None and inline.due(done):
            figures_folder = folder / "inline" / f"step_{done:07d}"
            try:
                with stop.interrupting():
                    scores, figures = inline.evaluate(ema.model, figures_folder, step=done)
            except EvaluationInterrupted as interrupted:
                log.warning("step %d: inline evaluation abandoned on %s", done, interrupted)
            else:
                run.log_metrics(scores, step=done)
                for figure in figures:
                    run.log_artifact(figure, f"inline/step_{done:07d}")
                log.info(
                    "step %d: inline evaluation %s",
                    done,
                    ", ".join(f"{k} {v:.4f}" for k, v in scores.items()),
                )
        # A signal during this step's validation or inline evaluation: alone, stop now. Under DDP the other
        # ranks are already in the next step's collectives, so every rank stops together after that step.
        stopping = stopping or (world.world_size == 1 and stop.signum > 0)
        if done % loop.state_every == 0 and done < loop.steps:
            checkpoint_state(done)
        if stopping:
            signum = int(world.max(torch.tensor(stop.signum, device=device)))
            checkpoint_state(done)
            world.barrier()  # no rank leaves (and gets the job torn down) before the state is written
            raise Preempted(
                f"stopped by {signal.Signals(signum).name} at step {done}; state saved in {folder}; "
                f"run the same command again to resume"
            )
    final_step = max(loop.steps, start_step)
    if validator is not None and "val_loss_ema" not in metrics:
        metrics["val_loss_ema"] = validate(final_step)
    if best.found:
        metrics["best_val_loss_ema"] = best.val_loss
    return TrainResult(
        model=model,
        ema=ema,
        step=final_step,
        metrics={k: v for k, v in metrics.items() if math.isfinite(v)},
        best=best,
    )


def _loss_per_sigma(losses: torch.Tensor, sigmas: torch.Tensor) -> dict[str, float]:
    edges = (0.0, *SIGMA_BINS, math.inf)
    result = {}
    for low, high in itertools.pairwise(edges):
        inside = (sigmas >= low) & (sigmas < high)
        if inside.any():
            result[f"loss_sigma_{low:g}_{high:g}"] = float(losses[inside].mean())
    return result
