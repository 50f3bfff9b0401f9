"""The trainer: continue a checkpoint (or start fresh) on an episode dataset, assistant-only loss.

Reads top to bottom like nanoGPT's train.py: `run_training` sets the run up (setup.py: data,
model, optimizer), opens its outputs (outputs.py: events, audit, checkpoints; rank 0 writes),
then loops over `step()`. The loop checks `should_stop()` every step, so a stop from the app or
ctrl+c ends with a final checkpoint, never a half-written one.

Loss of one optimizer step = the mean over all supervised tokens of that step, across
micro-batches and ranks: each micro-batch contributes (sum of its token losses) / (supervised
tokens of the whole step), so accumulation 2 x batch 5 equals batch 10.
"""

from __future__ import annotations

import contextlib
import math
import time
from typing import Callable, Iterable

import torch

from .. import distributed
from ..batching import Batch, collate
from ..config import TrainConfig
from ..device import DeviceError, autocast, pick_device
from ..events import Sink, Step
from ..sampler import SampledBatch
from .evalset import metrics_of, overfitting
from .job import TrainError, TrainJob, TrainResult
from .outputs import RunOutputs
from .setup import Run, setup_run


def run_training(job: TrainJob, sinks: Iterable[Sink] = (), should_stop: Callable[[], bool] = lambda: False
                 ) -> TrainResult:
    """Train as the job says; returns how it ended. Raises TrainError for a run that cannot start."""
    try:
        device = pick_device(job.config.device)
    except DeviceError as e:
        raise TrainError(str(e)) from None
    dist = distributed.setup(device.type)
    if dist.enabled and device.type == "cuda":
        device = torch.device("cuda", dist.local_rank)
    try:
        run = setup_run(job, device, dist)
        with RunOutputs(run, list(sinks)) as out:
            return train(run, out, should_stop)
    finally:
        distributed.teardown(dist)


def train(run: Run, out: RunOutputs, should_stop: Callable[[], bool]) -> TrainResult:
    """Evaluate where the run starts, then step until max_iters, a stop, or a loss that is not finite."""
    cfg, progress = run.cfg, run.progress
    started = time.time()
    run.model.train()
    if progress.step == 0:
        evaluate(run, out, 0)
    if run.sampler.state.cursor == 0 and cfg.batch_sampling_mode == "epoch":
        out.epoch_started(progress.step, run.sampler.state.epoch)
    reason = "completed"
    while progress.step < cfg.max_iters:
        if distributed.any_rank(run.dist, should_stop(), run.device):
            reason = "stopped"
            break
        loss = step(run, out, started)
        if not math.isfinite(loss):
            out.loss_not_finite(loss)
            return run.result("failed", progress.step - 1)
        if progress.step % cfg.eval_interval == 0 or progress.step == cfg.max_iters:
            if evaluate(run, out, progress.step):
                break  # stopped early (saturation, early stopping): finish() saves a final checkpoint
        if progress.step % cfg.save_every == 0 and progress.step != cfg.max_iters:
            out.save(progress.step, "periodic", {"loss": loss, **progress.metrics})
    out.finish(reason, started)
    return run.result(reason, progress.step)


def step(run: Run, out: RunOutputs, started: float) -> float:
    """One optimizer step over gradient_accumulation_steps micro-batches on every rank; returns
    its loss. A loss that is not finite updates nothing and records nothing."""
    cfg, progress = run.cfg, run.progress
    t0 = time.time()
    progress.step += 1
    lr = lr_at(progress.step, cfg)
    for group in run.optimizer.param_groups:
        group["lr"] = lr
    drawn = [run.sampler.next_batch() for _ in range(cfg.gradient_accumulation_steps)]
    batches = [collate(d.rows, run.data.train, block_size=cfg.block_size, batching=cfg.batching,
                       pad_id=run.data.pad_id, use_loss_mask=cfg.use_loss_mask) for d in drawn]
    sup_total = distributed.all_sum(run.dist, sum(b.supervised for b in batches), run.device)
    loss = forward_backward(run, batches, sup_total)
    if not math.isfinite(loss):
        run.optimizer.zero_grad(set_to_none=True)
        return loss
    run.scaler.unscale_(run.optimizer)
    grad_norm = torch.nn.utils.clip_grad_norm_(run.model.parameters(),
                                               cfg.grad_clip if cfg.grad_clip > 0 else float("inf"))
    run.scaler.step(run.optimizer)
    run.scaler.update()
    run.optimizer.zero_grad(set_to_none=True)

    tokens = distributed.all_sum(run.dist, sum(b.tokens for b in batches), run.device)
    per_rank = distributed.gather(run.dist, audit_records(run, drawn, batches))
    out.audit_step(progress.step, per_rank)
    dt = time.time() - t0
    progress.step_time = dt if progress.step_time is None else 0.9 * progress.step_time + 0.1 * dt
    out.emit(Step(step=progress.step, loss=loss, lr=lr, grad_norm=float(grad_norm), tokens=int(tokens),
                  supervised=int(sup_total), tokens_per_s=tokens / dt, supervised_per_s=sup_total / dt,
                  epoch=drawn[-1].epoch, epoch_progress=run.sampler.epoch_progress(),
                  elapsed=time.time() - started, eta_s=progress.step_time * (cfg.max_iters - progress.step),
                  episodes=[e for mbs in per_rank for m in mbs for e in m["episodes"]]))
    if cfg.batch_sampling_mode == "epoch":
        for d in drawn:
            if d.closes_epoch:
                out.epoch_closed(progress.step, d)
    return loss


def forward_backward(run: Run, batches: list[Batch], sup_total: float) -> float:
    """Gradients of the step's loss, accumulated over the micro-batches (DDP syncs on the last only)."""
    dist, last = run.dist, len(batches) - 1
    loss_sum = torch.zeros((), device=run.device)
    for k, b in enumerate(batches):
        b = b.to(run.device)
        sync = run.train_model.no_sync() if dist.enabled and k != last else contextlib.nullcontext()
        with sync, autocast(run.device, run.dtype):
            part = run.train_model(b)
        (run.scaler.scale(part * dist.world / max(sup_total, 1))).backward()
        loss_sum += part.detach()
    return distributed.all_sum(dist, loss_sum.item(), run.device) / max(sup_total, 1)


def audit_records(run: Run, drawn: list[SampledBatch], batches: list[Batch]) -> list[dict]:
    """This rank's micro-batches as the audit records them: where in the epoch, which episodes."""
    ids, hashes = run.data.train.ids, run.data.train.hashes
    return [{"epoch": d.epoch, "position": d.position, "episodes": [ids[i] for i in d.episodes],
             "hashes": [hashes[i] for i in d.episodes], "tokens": b.tokens, "supervised": b.supervised}
            for d, b in zip(drawn, batches)]


def evaluate(run: Run, out: RunOutputs, at: int) -> bool:
    """Every eval set's loss and accuracy on its fixed sample, greedy probe replies when due (rank
    0), then the checkpoint choice (best/), the saturation detector and early stopping. True when
    the run should stop here (every rank is told)."""
    ev = run.evals.evaluate(run.model, run.device, run.dtype, at)
    out.emit(ev)
    warning = overfitting(ev)
    if warning is not None:
        out.emit(warning)
    run.progress.metrics = metrics_of(ev)
    final = at >= run.cfg.max_iters
    if run.main and run.evals.probes is not None:
        step_time = run.progress.step_time
        eta = None if step_time is None else step_time * (run.cfg.max_iters - at)
        probe = run.evals.probes.round(run.model, at, final, eta, untrained=at == 0 and run.init == "scratch")
        if probe is not None:
            out.emit(probe)
    return distributed.any_rank(run.dist, bool(out.choose_best(at, final)), run.device)


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warmup over warmup_iters, then cosine down to min_lr at max_iters (step is 1-based)."""
    warmup = cfg.warmup_iters
    if warmup and step <= warmup:
        return cfg.learning_rate * step / warmup
    span = max(cfg.max_iters - warmup, 1)
    progress = min(max(step - warmup, 0) / span, 1.0)
    floor = cfg.lr_floor
    return floor + 0.5 * (1.0 + math.cos(math.pi * progress)) * (cfg.learning_rate - floor)
