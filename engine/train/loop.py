"""The trainer: continue a checkpoint (or start fresh) on an episode dataset, assistant-only loss.

Reads top to bottom like nanoGPT's train.py: job -> data -> model -> optimizer -> loop. Every
observable thing goes out as an event (engine/events.py) to the sinks; rank 0 also writes the
audit, the events file and the checkpoints. The loop checks `should_stop()` every step, so a
stop from the app or ctrl+c ends with a final checkpoint, never a half-written one.

Loss of one optimizer step = the mean over all supervised tokens of that step, across
micro-batches and ranks: each micro-batch contributes (sum of its token losses) / (supervised
tokens of the whole step), so accumulation 2 x batch 5 equals batch 10.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import shutil
import time
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch

from .. import distributed
from ..audit import AUDIT_FILE, AuditWriter, ids_digest
from ..batching import Batch, collate
from ..checkpoint import CheckpointError, check_tokenizer, load_model, load_train_state, save_checkpoint
from ..config import TrainConfig, architecture_conflicts, to_toml
from ..dataset import open_dataset
from ..events import (EVENTS_FILE, CheckpointSaved, Done, EpochEnd, EpochStart, Eval, Event, JsonlSink,
                     RunError, RunStart, RunWarning, Sink, Step)
from ..device import DeviceError, autocast, pick_device, pick_dtype
from ..model import GPT, GPTConfig
from ..runs import BEST_DIR, CONFIG_FILE, RUN_FILE, latest_checkpoint, step_dir
from ..sampler import EpisodeSampler, Eligibility, SamplerState, eligible_episodes, pack_rows
from ..sizing import model_report
from .job import TrainError, TrainJob, TrainResult

ARCH_FROM_CONFIG = ("n_layer", "n_head", "n_embd", "block_size", "bias", "pos_encoding", "mlp_type",
                    "norm_type", "tie_weights", "rope_theta", "rope_scale")
OVERFIT_GAP = 1.0  # the guide: val loss above train loss by more than 1.0 means overfitting





# -- pieces the loop uses ------------------------------------------------------------------------

def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warmup over warmup_iters, then cosine down to min_lr at max_iters (step is 1-based)."""
    warmup = cfg.warmup_iters
    if warmup and step <= warmup:
        return cfg.learning_rate * step / warmup
    span = max(cfg.max_iters - warmup, 1)
    progress = min(max(step - warmup, 0) / span, 1.0)
    floor = cfg.lr_floor
    return floor + 0.5 * (1.0 + math.cos(math.pi * progress)) * (cfg.learning_rate - floor)




class EvalSet:
    """A fixed set of batches (the first `eval_iters` batches of a split in file order)."""

    def __init__(self, split, elig: Eligibility, cfg: TrainConfig, pad_id: int) -> None:
        self.split, self.cfg, self.pad_id = split, cfg, pad_id
        self.rows: list[list[list[int]]] = []
        pos = 0
        for _ in range(cfg.eval_iters):
            if pos >= len(elig.eligible):
                break
            if cfg.batching == "pad":
                rows = [[int(i)] for i in elig.eligible[pos:pos + cfg.batch_size]]
                pos += len(rows)
            else:
                rows, pos = pack_rows(elig.eligible, pos, split.lengths, cfg.block_size, cfg.batch_size)
            self.rows.append(rows)

    @torch.no_grad()
    def evaluate(self, model: GPT, device: torch.device, dtype: torch.dtype | None) -> tuple[float, float, int]:
        """(mean loss over supervised tokens, masked next-token accuracy, supervised tokens)."""
        loss_sum, correct, n = 0.0, 0, 0
        for rows in self.rows:
            b = collate(rows, self.split, block_size=self.cfg.block_size, batching=self.cfg.batching,
                        pad_id=self.pad_id, use_loss_mask=self.cfg.use_loss_mask).to(device)
            with autocast(device, dtype):
                h = model.hidden(b.x, segment_ids=b.segment_ids, position_ids=b.position_ids)
                logits = model.head(h[b.mask]).float()
            targets = b.y[b.mask]
            loss_sum += torch.nn.functional.cross_entropy(logits, targets, reduction="sum").item()
            correct += int((logits.argmax(-1) == targets).sum())
            n += int(targets.numel())
        return (loss_sum / n if n else float("nan")), (correct / n if n else 0.0), n



def census(split, cfg: TrainConfig) -> Eligibility:
    """Eligibility of a split's episodes under the config's min-tokens and over-long policy."""
    limit = cfg.block_size + 1

    def head_supervised(i: int) -> int:
        _, mask = split.episode(i)
        return int(np.count_nonzero(mask[1:limit]))

    return eligible_episodes(split.lengths, split.supervised if cfg.use_loss_mask else split.lengths - 1,
                             head_supervised, block_size=cfg.block_size, min_tokens=cfg.episode_min_tokens,
                             overlong=cfg.overlong)


def preflight(split, elig: Eligibility, cfg: TrainConfig, world: int) -> dict:
    """What the run will do, before step 0: counts, supervised tokens, and epochs of max_iters."""
    idx = elig.eligible
    sup = int(split.supervised[idx].sum()) if cfg.use_loss_mask else int((split.lengths[idx] - 1).sum())
    tokens = int(split.lengths[idx].sum())
    if len(idx) and cfg.batching == "pack":
        rows, _ = pack_rows(idx, 0, split.lengths, cfg.block_size, len(idx))
        per_row = len(idx) / len(rows)
    else:
        per_row = 1.0
    per_step = per_row * cfg.batch_size * cfg.gradient_accumulation_steps * world
    steps_per_epoch = len(idx) / per_step if per_step else float("inf")
    return {
        "episodes": elig.total, "eligible": len(idx), "skipped_short": elig.too_short,
        "overlong": elig.overlong, "overlong_dropped": elig.overlong_dropped,
        "overlong_truncated": elig.overlong_truncated, "no_supervised": elig.no_supervised,
        "tokens": tokens, "supervised_tokens": sup, "episodes_per_step": round(per_step, 2),
        "steps_per_epoch": round(steps_per_epoch, 2),
        "epochs": round(cfg.max_iters / steps_per_epoch, 2) if steps_per_epoch else 0.0,
    }


# -- setting up a run ----------------------------------------------------------------------------

def _check_run_dir(job: TrainJob) -> None:
    """Refuse a run folder that does not fit the job (read-only: nothing is touched yet)."""
    out = Path(job.output)
    if job.resume:
        if not out.is_dir():
            raise TrainError(f"--resume: {out} does not exist; start the run without --resume")
        if latest_checkpoint(out, resumable=True) is None:
            raise TrainError(f"--resume: {out} has no checkpoint with training state to resume from")
    elif out.exists() and any(out.iterdir()) and not job.overwrite:
        raise TrainError(f"{out} already holds a run: continue it with --resume, "
                         "start over with --overwrite, or choose another --output")


def _make_run_dir(job: TrainJob) -> None:
    """Create the run folder; with --overwrite the old run goes only now, once the job is known to start."""
    out = Path(job.output)
    if not job.resume and job.overwrite and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def _on_all_ranks(dinfo: distributed.Dist, device: torch.device, fn: Callable[[], None], main_only: bool) -> None:
    """Run a setup step (on rank 0 only, or on every rank) and fail together if any rank failed."""
    error = None
    if dinfo.main or not main_only:
        try:
            fn()
        except TrainError as e:
            error = e
    if distributed.any_rank(dinfo, error is not None, device):
        raise error or TrainError("another rank could not set up the run (see its message)")


def _build_model(job: TrainJob, cfg: TrainConfig, tok_state: dict, vocab: int) -> tuple[GPT, str, dict | None, int]:
    """(model, where its weights came from, train state to restore or None, start step)."""
    try:
        return _load_or_create(job, cfg, tok_state, vocab)
    except (CheckpointError, FileNotFoundError) as e:
        raise TrainError(str(e)) from None


def _load_or_create(job: TrainJob, cfg: TrainConfig, tok_state: dict, vocab: int) -> tuple[GPT, str, dict | None, int]:
    if job.resume:
        ckpt_path = latest_checkpoint(job.output, resumable=True)
        model, ckpt = load_model(ckpt_path)
        check_tokenizer(ckpt, tok_state)
        return model, str(ckpt_path), load_train_state(ckpt_path), int(ckpt.meta["step"])
    if job.init:
        model, ckpt = load_model(job.init, root=job.checkpoints_root)
        # A shorter context than the checkpoint's is fine (the guide's OOM advice): not a conflict.
        shorter = dataclasses.replace(cfg, block_size=ckpt.config.block_size) \
            if cfg.block_size <= ckpt.config.block_size else cfg
        conflicts = architecture_conflicts(shorter, ckpt.config.to_dict())
        if conflicts:
            raise TrainError("the config contradicts the checkpoint's architecture "
                             f"({ckpt.path}):\n  " + "\n  ".join(conflicts)
                             + "\nThe architecture comes from the checkpoint: remove these keys or match them.")
        check_tokenizer(ckpt, tok_state)
        if ckpt.config.block_size < cfg.block_size:
            raise TrainError(f"block_size {cfg.block_size} is larger than the checkpoint's "
                             f"{ckpt.config.block_size}")
        model.set_dropout(cfg.dropout)  # dropout is a training choice (the guide raises it for SFT)
        return model, str(ckpt.path), None, 0
    arch = {k: getattr(cfg, k) for k in ARCH_FROM_CONFIG}
    if cfg.vocab_size is not None and cfg.vocab_size < vocab:
        raise TrainError(f"vocab_size {cfg.vocab_size} is smaller than the tokenizer's {vocab} rows")
    torch.manual_seed(cfg.seed)
    model = GPT(GPTConfig(**arch, vocab_size=cfg.vocab_size or vocab, dropout=cfg.dropout))
    return model, "scratch", None, 0


# -- the run -------------------------------------------------------------------------------------

def run_training(job: TrainJob, sinks: Iterable[Sink] = (), should_stop: Callable[[], bool] = lambda: False
                 ) -> TrainResult:
    """Train as the job says; returns how it ended. Raises TrainError for a run that cannot start."""
    cfg = job.config
    try:
        device = pick_device(cfg.device)
    except DeviceError as e:
        raise TrainError(str(e)) from None
    dinfo = distributed.setup(device.type)
    if dinfo.enabled and device.type == "cuda":
        device = torch.device("cuda", dinfo.local_rank)
    try:
        return _run(job, cfg, device, dinfo, list(sinks), should_stop)
    finally:
        distributed.teardown(dinfo)


def _run(job: TrainJob, cfg: TrainConfig, device: torch.device, dinfo: distributed.Dist, sinks: list[Sink],
         should_stop: Callable[[], bool]) -> TrainResult:
    main = dinfo.main
    out = Path(job.output)

    # data
    try:
        ds = open_dataset(job.dataset)
    except (FileNotFoundError, ValueError) as e:
        raise TrainError(str(e)) from None
    tok = ds.tokenizer()
    if job.tokenization and job.tokenization != tok.kind:
        raise TrainError(f"--tokenization {job.tokenization} but the dataset {job.dataset} was prepared "
                         f"with {tok.kind}; prepare it again or drop the flag")
    train_split, val_split = ds.split("train"), ds.split("val")
    if train_split is None:
        raise TrainError(f"{job.dataset} has no training episodes")
    pad_id = cfg.pad_token_id if cfg.pad_token_id is not None else tok.pad_id
    elig = census(train_split, cfg)
    report = preflight(train_split, elig, cfg, dinfo.world)
    if len(elig.eligible) == 0:
        raise TrainError(f"no episode of {job.dataset} has a supervised token to train on "
                         f"({elig.total} episodes: {elig.too_short} shorter than episode_min_tokens, "
                         f"{elig.overlong_dropped} over-long dropped, {elig.no_supervised} with nothing supervised)")

    # run folder, model, optimizer
    _on_all_ranks(dinfo, device, lambda: _check_run_dir(job), main_only=False)
    model, init_desc, train_state, start_step = _build_model(job, cfg, tok.state(), tok.model_vocab_size)
    if cfg.block_size > model.config.block_size:
        raise TrainError(f"block_size {cfg.block_size} exceeds the model's context {model.config.block_size}")
    _on_all_ranks(dinfo, device, lambda: _make_run_dir(job), main_only=True)
    model.to(device)
    try:
        dtype = pick_dtype(cfg.precision, device)
    except DeviceError as e:
        raise TrainError(str(e)) from None
    optimizer = torch.optim.AdamW(model.param_groups(cfg.weight_decay), lr=cfg.learning_rate,
                                  betas=(cfg.beta1, cfg.beta2), **({"fused": True} if device.type == "cuda" else {}))
    scaler = torch.amp.GradScaler(device.type, enabled=(dtype == torch.float16))
    sampler_state = SamplerState()
    best_val = None
    if train_state is not None:
        if train_state.get("eligible") != elig.fingerprint():
            raise TrainError("--resume: the dataset or the episode policy changed since this run started "
                             "(the eligible episodes differ); resume with the same dataset and config")
        optimizer.load_state_dict(train_state["optimizer"])
        scaler.load_state_dict(train_state["scaler"]) if train_state.get("scaler") else None
        sampler_state = SamplerState(**train_state["sampler"])
        best_val = train_state.get("best_val_loss")
        torch.set_rng_state(train_state["rng"]["torch"])
        if device.type == "cuda" and train_state["rng"].get("cuda") is not None:
            torch.cuda.set_rng_state(train_state["rng"]["cuda"], device)
    train_model: torch.nn.Module = SupervisedLoss(model)
    if cfg.compile:
        train_model = torch.compile(train_model)
    if dinfo.enabled:
        train_model = torch.nn.parallel.DistributedDataParallel(
            train_model, device_ids=[device.index] if device.type == "cuda" else None)

    sampler = EpisodeSampler(elig.eligible, train_split.lengths, batch_size=cfg.batch_size,
                             block_size=cfg.block_size, batching=cfg.batching, mode=cfg.batch_sampling_mode,
                             seed=cfg.epoch_seed, shuffle=cfg.epoch_shuffle, drop_last=cfg.epoch_drop_last,
                             world=dinfo.world, rank=dinfo.rank, state=sampler_state)
    val_elig = census(val_split, cfg) if val_split is not None else None
    val_set = EvalSet(val_split, val_elig, cfg, pad_id) if val_elig is not None and len(val_elig.eligible) else None
    train_eval = EvalSet(train_split, elig, cfg, pad_id)
    ids, hashes = train_split.ids, train_split.hashes

    # outputs: events, audit, run files (rank 0)
    audit = None
    if main:
        sinks = [JsonlSink(out / EVENTS_FILE), *sinks]
        audit = AuditWriter(out / AUDIT_FILE, resume_step=start_step if job.resume else None)
        if not job.resume:
            (out / CONFIG_FILE).write_text(to_toml(cfg))
            (out / RUN_FILE).write_text(json.dumps({
                "dataset": str(job.dataset), "init": init_desc, "tokenization": tok.kind,
                "command": job.command, "created": time.time(), "world": dinfo.world}, indent=2))
            audit.write("start", 0, eligible=len(elig.eligible),
                        eligible_sha256=ids_digest(ids[i] for i in elig.eligible),
                        epoch_seed=cfg.epoch_seed, shuffle=cfg.epoch_shuffle, drop_last=cfg.epoch_drop_last,
                        mode=cfg.batch_sampling_mode, batching=cfg.batching, world=dinfo.world)
        else:
            audit.write("resume", start_step)

    def emit(ev: Event) -> None:
        if main:
            for s in sinks:
                s(ev)

    notes = []
    if cfg.use_loss_mask:
        share = report["supervised_tokens"] / max(report["tokens"] - report["eligible"], 1)
        notes.append(f"Using loss masking (assistant-only training): {share:.1%} of target tokens are trained")
    else:
        notes.append("Loss masking is off: training on every token, prompts included")
    emit(RunStart(step=start_step, run_dir=str(out), max_iters=cfg.max_iters, config=cfg.to_dict(),
                  model={**model.config.to_dict(), "params": model.num_params(),
                         "memory": model_report(model.config, cfg.batch_size, dtype or torch.float32)},
                  preflight=report, notes=notes, resumed=job.resume, init=init_desc))
    if not cfg.use_loss_mask:
        emit(RunWarning(step=start_step, message=notes[0], code="no_loss_mask"))

    def save(step: int, kind: str, metrics: dict) -> Path:
        path = out / BEST_DIR if kind == "best" else step_dir(out, step)
        state = None if kind == "best" else {
            "optimizer": optimizer.state_dict(), "sampler": sampler.state.to_dict(),
            "scaler": scaler.state_dict() if scaler.is_enabled() else None, "best_val_loss": best_val,
            "eligible": elig.fingerprint(),
            "rng": {"torch": torch.get_rng_state(),
                    "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None}}
        save_checkpoint(path, model, tokenizer_state=tok.state(), step=step, metrics=metrics,
                        extra={"run": out.name, "config": cfg.to_dict(), "dataset": str(job.dataset),
                               "init": init_desc, "epoch": sampler.state.epoch}, train_state=state)
        emit(CheckpointSaved(step=step, path=str(path), kind=kind, val_loss=metrics.get("val_loss")))
        return path

    def evaluate(step: int) -> dict:
        nonlocal best_val
        model.eval()
        train_loss, _, _ = train_eval.evaluate(model, device, dtype)
        val_loss = val_acc = None
        n_val = 0
        if val_set is not None:
            val_loss, val_acc, n_val = val_set.evaluate(model, device, dtype)
        model.train()
        emit(Eval(step=step, val_loss=val_loss, train_loss=train_loss, val_accuracy=val_acc, val_tokens=n_val))
        if val_loss is not None and val_loss - train_loss > OVERFIT_GAP:
            emit(RunWarning(step=step, code="overfitting", message=(
                f"val loss {val_loss:.3f} exceeds train loss {train_loss:.3f} by more than {OVERFIT_GAP}: "
                "overfitting; stop early, raise dropout or weight_decay, or add data")))
        metrics = {"train_loss": train_loss, "val_loss": val_loss, "val_accuracy": val_acc}
        if main and step > 0 and val_loss is not None and (best_val is None or val_loss < best_val):
            best_val = val_loss
            save(step, "best", metrics)
        return metrics

    # the loop
    accum = cfg.gradient_accumulation_steps
    t_start = time.time()
    step = start_step
    last_ckpt = latest_checkpoint(out) if job.resume else None
    try:
        metrics: dict = {}
        step_time = None
        model.train()
        if start_step == 0 and cfg.eval_interval:
            metrics = evaluate(0)
        if sampler.state.cursor == 0 and cfg.batch_sampling_mode == "epoch":
            emit(EpochStart(step=step, epoch=sampler.state.epoch, episodes=len(elig.eligible),
                            seed=cfg.epoch_seed if cfg.epoch_shuffle else None))
        reason = "completed"
        while step < cfg.max_iters:
            if distributed.any_rank(dinfo, should_stop(), device):
                reason = "stopped"
                break
            t0 = time.time()
            step += 1
            lr = lr_at(step, cfg)
            for group in optimizer.param_groups:
                group["lr"] = lr
            drawn = [sampler.next_batch() for _ in range(accum)]
            batches = [collate(d.rows, train_split, block_size=cfg.block_size, batching=cfg.batching, pad_id=pad_id,
                               use_loss_mask=cfg.use_loss_mask) for d in drawn]
            sup_total = distributed.all_sum(dinfo, sum(b.supervised for b in batches), device)
            loss_sum = torch.zeros((), device=device)
            for k, b in enumerate(batches):
                b = b.to(device)
                sync = contextlib.nullcontext() if not dinfo.enabled or k == accum - 1 else train_model.no_sync()
                with sync, autocast(device, dtype):
                    part = train_model(b)
                (scaler.scale(part * dinfo.world / max(sup_total, 1))).backward()
                loss_sum += part.detach()
            loss = distributed.all_sum(dinfo, loss_sum.item(), device) / max(sup_total, 1)
            if not math.isfinite(loss):
                optimizer.zero_grad(set_to_none=True)
                msg = (f"loss became {loss} at step {step}: stopping. The last good checkpoint is "
                       f"{last_ckpt or 'none (nothing was saved yet)'}. Try a lower learning_rate, precision = "
                       "\"fp32\", or check the data with `mypt inspect`.")
                emit(RunError(step=step, message=msg, last_checkpoint=str(last_ckpt) if last_ckpt else None))
                _close(audit, sinks)
                return TrainResult("failed", step - 1, out, last_ckpt, best_val)
            scaler.unscale_(optimizer)
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip if cfg.grad_clip > 0 else float("inf"))
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)

            # bookkeeping: audit, events, epoch boundaries
            tokens = distributed.all_sum(dinfo, sum(b.tokens for b in batches), device)
            mine = [{"epoch": d.epoch, "position": d.position, "episodes": [ids[i] for i in d.episodes],
                     "hashes": [hashes[i] for i in d.episodes], "tokens": b.tokens, "supervised": b.supervised}
                    for d, b in zip(drawn, batches)]
            per_rank = distributed.gather(dinfo, mine)
            if main:
                for rank, mbs in enumerate(per_rank):
                    audit.write("step", step, rank=rank, epoch=mbs[0]["epoch"], micro_batches=mbs,
                                tokens=sum(m["tokens"] for m in mbs), supervised=sum(m["supervised"] for m in mbs))
            dt = time.time() - t0
            step_time = dt if step_time is None else 0.9 * step_time + 0.1 * dt
            emit(Step(step=step, loss=loss, lr=lr, grad_norm=float(grad_norm), tokens=int(tokens),
                      supervised=int(sup_total), tokens_per_s=tokens / dt, supervised_per_s=sup_total / dt,
                      epoch=drawn[-1].epoch, epoch_progress=sampler.epoch_progress(), elapsed=time.time() - t_start,
                      eta_s=step_time * (cfg.max_iters - step),
                      episodes=[e for mbs in per_rank for m in mbs for e in m["episodes"]]))
            for d in drawn:
                if d.closes_epoch and cfg.batch_sampling_mode == "epoch":
                    if main:
                        audit.write("epoch_end", step, epoch=d.epoch, dropped=[ids[i] for i in d.dropped])
                    emit(EpochEnd(step=step, epoch=d.epoch, trained=len(elig.eligible) - len(d.dropped),
                                  dropped=len(d.dropped)))
                    if step < cfg.max_iters:
                        emit(EpochStart(step=step, epoch=d.epoch + 1, episodes=len(elig.eligible),
                                        seed=cfg.epoch_seed if cfg.epoch_shuffle else None))

            if cfg.eval_interval and (step % cfg.eval_interval == 0 or step == cfg.max_iters):
                metrics = evaluate(step)
            if main and cfg.save_every and step % cfg.save_every == 0 and step != cfg.max_iters:
                last_ckpt = save(step, "periodic", {"loss": loss, **metrics})

        if main and (last_ckpt is None or last_ckpt != step_dir(out, step)):
            last_ckpt = save(step, "final", {"loss": metrics.get("train_loss"), **metrics})
        emit(Done(step=step, reason=reason, elapsed=time.time() - t_start,
                  final_checkpoint=str(last_ckpt) if last_ckpt else None, best_val_loss=best_val))
        _close(audit, sinks)
        return TrainResult(reason, step, out, last_ckpt, best_val)

    except Exception as e:  # an unexpected failure (out of memory, disk full...) is recorded, then raised
        emit(RunError(step=step, message=f"{type(e).__name__}: {e}",
                      last_checkpoint=str(last_ckpt) if last_ckpt else None))
        _close(audit, sinks)
        raise

class SupervisedLoss(torch.nn.Module):
    """The training forward: sum of token losses at supervised positions (the output layer runs
    only there). A module of its own so that DDP and torch.compile wrap exactly this call."""

    def __init__(self, model: GPT) -> None:
        super().__init__()
        self.model = model

    def forward(self, b: Batch) -> torch.Tensor:
        return self.model.supervised_loss(b.x, b.y, b.mask, segment_ids=b.segment_ids, position_ids=b.position_ids)


def _close(audit: AuditWriter | None, sinks: list[Sink]) -> None:
    if audit is not None:
        audit.close()
    for s in sinks:
        close = getattr(s, "close", None)
        if close is not None:
            close()
