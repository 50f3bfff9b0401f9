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
import dataclasses
import math
import time
from dataclasses import dataclass
from typing import Callable, Iterable

import torch

from .. import distributed
from ..batching import Batch, collate
from ..config import TrainConfig
from ..device import DeviceError, autocast, peak_flops, peak_memory, pick_device, use_compile
from ..events import Sink, Step
from ..sampler import SampledBatch, SamplerState
from ..sizing import training_flops
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
    steps = Steps(run, out, started)
    reason = "completed"
    while progress.step < cfg.max_iters:
        if steps.stop_requested(should_stop):
            reason = "stopped"
            break
        step(run, steps)
        if steps.failed is not None:
            break
        if progress.step % cfg.eval_interval == 0 or progress.step == cfg.max_iters:
            if evaluate(run, out, progress.step):
                break  # stopped early (saturation, early stopping): finish() saves a final checkpoint
        if progress.step % cfg.save_every == 0 and progress.step != cfg.max_iters:
            steps.feed.rewind()  # the checkpoint records the sampler as of this step
            out.save(progress.step, "periodic", {"loss": steps.loss, **progress.metrics})
    steps.settle()
    if steps.failed is not None:
        at, loss = steps.failed
        progress.step = at
        out.loss_not_finite(loss)
        return run.result("failed", at - 1)
    out.finish(reason, started)
    return run.result(reason, progress.step)


def step(run: Run, steps: "Steps") -> None:
    """One optimizer step over gradient_accumulation_steps micro-batches on every rank. A loss that
    is not finite updates nothing and records nothing (`steps.failed` says where)."""
    cfg, progress = run.cfg, run.progress
    t0 = time.time()
    progress.step += 1
    phase = run.enter_phase(progress.step)  # a curriculum phase begins: its dataset from this step on
    if phase is not None:
        steps.feed.next = None  # a batch drawn ahead came from the phase that ended
        steps.out.phase_started(progress.step - 1, phase)
    lr = lr_at(progress.step, cfg)
    for group in run.optimizer.param_groups:
        group["lr"] = lr
    fed = steps.feed.take()
    if steps.deferred:
        # The step's normaliser (supervised tokens, or their weights), summed over ranks on the device.
        norm = device_sum(run.dist, torch.tensor(normaliser(fed.batches), dtype=torch.float32, device=run.device))
        loss_sum = device_sum(run.dist, forward_backward(run, fed.batches, norm).double())
        grad_norm = update(run, steps.not_finite(loss_sum))
        steps.queue(Pending(progress.step, lr, t0, fed, loss_sum, grad_norm))
        if progress.step < cfg.max_iters:
            steps.feed.prepare_next()  # while this step runs on the device
        if steps.due(progress.step):
            steps.flush()
        return
    norm = distributed.all_sum(run.dist, normaliser(fed.batches), run.device)
    loss = distributed.all_sum(run.dist, forward_backward(run, fed.batches, norm).item(), run.device)
    loss /= max(norm, 1)
    if not math.isfinite(loss):
        run.optimizer.zero_grad(set_to_none=True)
        steps.failed = (progress.step, loss)
        return
    grad_norm = update(run, None)
    steps.queue(Pending(progress.step, lr, t0, fed, loss, grad_norm))
    steps.flush()


def normaliser(batches: list[Batch]) -> float:
    """What this rank adds to the step's denominator: its supervised tokens, or with weighted masks
    their weights (the step's loss is the mean over the weights), known on the host."""
    if batches[0].weight is None:
        return sum(b.supervised for b in batches)
    return sum(b.weight_sum for b in batches)


def forward_backward(run: Run, batches: list[Batch], sup_total: float | torch.Tensor) -> torch.Tensor:
    """Gradients of the step's loss, accumulated over the micro-batches (DDP syncs on the last only);
    returns this rank's sum of token losses, on the device (nothing is read back here)."""
    dist, last = run.dist, len(batches) - 1
    # A count as fp32 (exact below 2**24), as a Python number is taken: the same gradients either way.
    denominator = sup_total.clamp(min=1).float() if isinstance(sup_total, torch.Tensor) else max(sup_total, 1)
    loss_sum = torch.zeros((), device=run.device)
    for k, b in enumerate(batches):
        sync = run.train_model.no_sync() if dist.enabled and k != last else contextlib.nullcontext()
        with sync, autocast(run.device, run.dtype):
            part = run.train_model(b)
        (run.scaler.scale(part * dist.world / denominator)).backward()
        loss_sum += part.detach()
    return loss_sum


def update(run: Run, found_inf: torch.Tensor | None) -> torch.Tensor:
    """Clip, step the optimizer, clear the gradients; returns the gradient norm (on the device).
    `found_inf` (a device flag, 1.0 or 0.0): the fused AdamW skips its update where it is 1."""
    cfg = run.cfg
    run.scaler.unscale_(run.optimizer)
    grad_norm = torch.nn.utils.clip_grad_norm_(run.model.parameters(),
                                               cfg.grad_clip if cfg.grad_clip > 0 else float("inf"))
    if found_inf is not None:
        run.optimizer.found_inf = found_inf  # read by the fused kernel (what GradScaler passes it)
    try:
        run.scaler.step(run.optimizer)
    finally:
        if found_inf is not None:
            del run.optimizer.found_inf
    run.scaler.update()
    run.optimizer.zero_grad(set_to_none=True)
    return grad_norm


def device_sum(dist: distributed.Dist, t: torch.Tensor) -> torch.Tensor:
    """A device tensor summed over ranks, on the device (no read-back; the identity on one rank)."""
    if dist.enabled:
        torch.distributed.all_reduce(t)
    return t


def defers_readback(run: Run) -> bool:
    """Whether steps stay on the device until a read-back: where the optimizer can skip a step on the
    device (fused AdamW, which a GPU run gets) and no fp16 loss scaler decides about steps itself."""
    return bool(run.optimizer.defaults.get("fused")) and not run.scaler.is_enabled()


# -- batches, ahead --------------------------------------------------------------------------------

@dataclass
class Fed:
    """One step's micro-batches: as drawn, and collated (on the device)."""

    drawn: list[SampledBatch]
    batches: list[Batch]
    epoch_progress: float  # of the sampler right after drawing them
    before: SamplerState  # the sampler before drawing them (to un-draw a batch drawn ahead)


class Feed:
    """Draws and collates each step's micro-batches; on a GPU copies them through page-locked memory,
    and (when the loop defers read-backs) one step ahead, while the current step runs."""

    def __init__(self, run: Run, ahead: bool) -> None:
        self.run, self.ahead = run, ahead
        cfg = run.cfg
        # Compiled code sees one shape: a short last batch is padded with empty rows.
        self.min_rows = cfg.batch_size if use_compile(cfg.compile, run.device) else 1
        self.next: Fed | None = None

    def _make(self) -> Fed:
        run, cfg = self.run, self.run.cfg
        before = dataclasses.replace(run.sampler.state)
        drawn = [run.sampler.next_batch() for _ in range(cfg.gradient_accumulation_steps)]
        progress = run.sampler.epoch_progress()
        batches = [collate(d.rows, run.data.train, block_size=cfg.block_size, batching=cfg.batching,
                           pad_id=run.data.pad_id, use_loss_mask=cfg.use_loss_mask, min_rows=self.min_rows,
                           reset_positions=cfg.segment_position_reset)
                   for d in drawn]
        if run.device.type == "cuda":
            batches = [b.pin().to(run.device) for b in batches]
        return Fed(drawn, batches, progress, before)

    def take(self) -> Fed:
        fed, self.next = self.next, None
        return fed if fed is not None else self._make()

    def prepare_next(self) -> None:
        if self.ahead:
            self.next = self._make()

    def rewind(self) -> None:
        """Un-draw the batches drawn ahead: the sampler is back where the last trained step left it."""
        if self.next is not None:
            self.run.sampler.state = self.next.before
            self.next = None


# -- steps, read back and recorded -----------------------------------------------------------------

@dataclass
class Pending:
    """A trained step not yet recorded. loss: the mean (a float) where the step was read at once;
    the ranks' loss sum on the device where read-back is deferred."""

    step: int
    lr: float
    t0: float
    fed: Fed
    loss: float | torch.Tensor
    grad_norm: torch.Tensor


class Steps:
    """The steps between read-backs: queues them, reads their values back in one go, and records
    each (audit, Step event, epoch ends) in order; knows when a read-back is due."""

    def __init__(self, run: Run, out: RunOutputs, started: float) -> None:
        self.run, self.out, self.started = run, out, started
        self.deferred = defers_readback(run)
        self.feed = Feed(run, ahead=self.deferred)
        self.pending: list[Pending] = []
        self.failed: tuple[int, float] | None = None  # (step, loss) of a loss that is not finite
        self.loss: float | None = None  # the loss of the last recorded step
        self.peak = peak_flops(run.device, run.cfg.peak_tflops)
        self._bad = torch.zeros((), device=run.device) if self.deferred else None

    def not_finite(self, loss_sum: torch.Tensor) -> torch.Tensor:
        """The sticky device flag: 1.0 from the first step whose loss is not finite on, else 0.0."""
        self._bad = torch.maximum(self._bad, (~torch.isfinite(loss_sum)).float())
        return self._bad

    def queue(self, p: Pending) -> None:
        self.pending.append(p)

    def due(self, step: int) -> bool:
        cfg = self.run.cfg
        return (step % cfg.log_interval == 0 or step % cfg.eval_interval == 0 or step % cfg.save_every == 0
                or step == cfg.max_iters)

    def stop_requested(self, should_stop: Callable[[], bool]) -> bool:
        """A stop, agreed by every rank; under DDP with deferred read-backs the ranks agree at
        read-backs only (asking them costs a sync)."""
        if self.deferred and self.run.dist.enabled and self.pending:
            return False
        return distributed.any_rank(self.run.dist, should_stop(), self.run.device)

    def settle(self) -> None:
        """Before the run ends: every trained step recorded, nothing drawn ahead."""
        if self.failed is None:
            self.flush()
        self.pending = []
        self.feed.rewind()

    def flush(self) -> None:
        """Read the pending steps back (one sync) and record them in order; stop at a loss that is not finite."""
        pending, self.pending = self.pending, []
        if not pending:
            return
        run = self.run
        if self.deferred:
            values = torch.stack([torch.stack((p.loss, p.grad_norm.double())) for p in pending]).tolist()
        else:
            values = [(p.loss, float(p.grad_norm)) for p in pending]
        now = time.time()
        window = (now - pending[0].t0) / len(pending)
        local = [(audit_records(run, p.fed.drawn, p.fed.batches), self._flops(p.fed.batches)) for p in pending]
        per_step = distributed.gather(run.dist, local)  # [rank][step] -> (records, flops)
        memory = peak_memory(run.device)
        for i, (p, (value, grad_norm)) in enumerate(zip(pending, values)):
            per_rank = [rank[i][0] for rank in per_step]
            tokens = sum(m["tokens"] for mbs in per_rank for m in mbs)
            sup_total = sum(m["supervised"] for mbs in per_rank for m in mbs)
            norm = sum(m.get("weighted", m["supervised"]) for mbs in per_rank for m in mbs)
            loss = value / max(norm, 1) if self.deferred else value
            if not math.isfinite(loss):
                self.failed = (p.step, loss)
                return
            dt = window if self.deferred else now - p.t0
            flops = sum(rank[i][1] for rank in per_step)
            self._record(p, per_rank, loss, grad_norm, tokens, sup_total, dt, flops, memory,
                         now - (len(pending) - 1 - i) * window if self.deferred else now)

    def _flops(self, batches: list[Batch]) -> float:
        cfg = self.run.model.config
        return sum(training_flops(cfg, positions=b.positions, outputs=b.supervised, attention_pairs=b.attention_pairs)
                   for b in batches)

    def _record(self, p: Pending, per_rank: list[list[dict]], loss: float, grad_norm: float, tokens: int,
                sup_total: int, dt: float, flops: float, memory: int | None, at: float) -> None:
        run, out, cfg, progress = self.run, self.out, self.run.cfg, self.run.progress
        out.audit_step(p.step, per_rank)
        progress.step_time = dt if progress.step_time is None else 0.9 * progress.step_time + 0.1 * dt
        mfu = flops / (dt * self.peak * run.dist.world) if self.peak and dt > 0 else None
        out.emit(Step(step=p.step, loss=loss, lr=p.lr, grad_norm=grad_norm, tokens=int(tokens),
                      supervised=int(sup_total), tokens_per_s=tokens / dt, supervised_per_s=sup_total / dt,
                      epoch=p.fed.drawn[-1].epoch, epoch_progress=p.fed.epoch_progress,
                      elapsed=at - self.started, eta_s=progress.step_time * (cfg.max_iters - p.step),
                      episodes=[e for mbs in per_rank for m in mbs for e in m["episodes"]],
                      mfu=mfu, peak_memory_bytes=memory))
        self.loss = loss
        if cfg.batch_sampling_mode == "epoch":
            for d in p.fed.drawn:
                if d.closes_epoch:
                    out.epoch_closed(p.step, d)


def audit_records(run: Run, drawn: list[SampledBatch], batches: list[Batch]) -> list[dict]:
    """This rank's micro-batches as the audit records them: where in the epoch, which episodes."""
    ids, hashes = run.data.train.ids, run.data.train.hashes
    return [{"epoch": d.epoch, "position": d.position, "episodes": [ids[i] for i in d.episodes],
             "hashes": [hashes[i] for i in d.episodes], "tokens": b.tokens, "supervised": b.supervised,
             **({"weighted": round(b.weight_sum, 4)} if b.weight is not None else {})}
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
