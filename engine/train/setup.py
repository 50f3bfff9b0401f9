"""Setting up a run, before step 0: data, model, optimizer, run folder.

Every check that can refuse a job runs here, before any output is opened: the run folder is
only checked (read-only) until the job is known to start, so a job that cannot start leaves an
old run as it was, even under --overwrite. Under torchrun every rank sets up the same run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .. import distributed
from ..batching import Batch
from ..checkpoint import CheckpointError, check_tokenizer, load_model, load_train_state
from ..config import ConfigError, TrainConfig, adopt_architecture
from ..dataset import DatasetError, EpisodeSplit, open_dataset
from ..device import DeviceError, memory_available, pick_dtype
from ..model import GPT, GPTConfig
from ..sizing import format_bytes, model_report
from ..runs import latest_checkpoint
from ..sampler import Eligibility, EpisodeSampler, SamplerState, eligible_episodes, pack_rows
from ..tokenizer import Tokenizer
from .evalset import EvalSets
from .evalsources import build_eval_sets
from .folder import RunFolder, check_run_dir
from .job import TrainError, TrainJob, TrainResult

# -- data ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Data:
    """The dataset as the run reads it: its tokenizer, its splits, and the id that fills padding."""

    tok: Tokenizer
    train: EpisodeSplit
    val: EpisodeSplit | None
    pad_id: int


def census(split: EpisodeSplit, cfg: TrainConfig) -> Eligibility:
    """Eligibility of a split's episodes under the config's min-tokens and over-long policy."""
    limit = cfg.block_size + 1

    def head_supervised(i: int) -> int:
        _, mask = split.episode(i)
        return int(np.count_nonzero(mask[1:limit]))

    return eligible_episodes(split.lengths, split.supervised if cfg.use_loss_mask else split.lengths - 1,
                             head_supervised, block_size=cfg.block_size, min_tokens=cfg.episode_min_tokens,
                             overlong=cfg.overlong)


def preflight(split: EpisodeSplit, elig: Eligibility, cfg: TrainConfig, world: int) -> dict:
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


def open_data(job: TrainJob) -> Data:
    """Open the job's dataset; refuse one that does not fit the job."""
    try:
        ds = open_dataset(job.dataset)
    except (FileNotFoundError, ValueError) as e:
        raise TrainError(str(e)) from None
    tok = ds.tokenizer()
    if job.tokenization and job.tokenization != tok.kind:
        raise TrainError(f"--tokenization {job.tokenization} but the dataset {job.dataset} was prepared "
                         f"with {tok.kind}; prepare it again or drop the flag")
    train = ds.split("train")
    if train is None:
        raise TrainError(f"{job.dataset} has no training episodes")
    cfg = job.config
    pad_id = cfg.pad_token_id if cfg.pad_token_id is not None else tok.pad_id
    return Data(tok, train, ds.split("val"), pad_id)


def eligible(data: Data, job: TrainJob, cfg: TrainConfig) -> Eligibility:
    """The train episodes under the config the run trains with (its block_size may be the checkpoint's)."""
    elig = census(data.train, cfg)
    if len(elig.eligible) == 0:
        raise TrainError(f"no episode of {job.dataset} has a supervised token to train on "
                         f"({elig.total} episodes: {elig.too_short} shorter than episode_min_tokens, "
                         f"{elig.overlong_dropped} over-long dropped, {elig.no_supervised} with nothing supervised)")
    return elig


# -- model ---------------------------------------------------------------------------------------

class SupervisedLoss(torch.nn.Module):
    """The training forward: sum of token losses at supervised positions (the output layer runs
    only there). A module of its own so that DDP and torch.compile wrap exactly this call."""

    def __init__(self, model: GPT) -> None:
        super().__init__()
        self.model = model

    def forward(self, b: Batch) -> torch.Tensor:
        return self.model.supervised_loss(b.x, b.y, b.mask, segment_ids=b.segment_ids, position_ids=b.position_ids)


@dataclass
class Start:
    """Where training starts: the weights, the config to train them with, where they came from,
    and (on --resume) the saved train state and step."""

    model: GPT
    cfg: TrainConfig
    init: str  # "scratch" or the checkpoint's path
    train_state: dict | None = None
    step: int = 0


def build_model(job: TrainJob, tok: Tokenizer, device: torch.device) -> Start:
    """Resume the run, continue a checkpoint, or start from scratch (once it is known to fit)."""
    try:
        if job.resume:
            return _resume(job, tok)
        if job.init:
            return _continue(job, tok)
    except (CheckpointError, FileNotFoundError) as e:
        raise TrainError(str(e)) from None
    return _scratch(job.config, tok, device)


def _resume(job: TrainJob, tok: Tokenizer) -> Start:
    ckpt_path = latest_checkpoint(job.output, resumable=True)
    model, ckpt = load_model(ckpt_path)
    check_tokenizer(ckpt, tok.state())
    return Start(model, job.config, str(ckpt_path), load_train_state(ckpt_path), int(ckpt.meta["step"]))


def _continue(job: TrainJob, tok: Tokenizer) -> Start:
    """A checkpoint's weights with its architecture (a shorter context is allowed: the OOM advice)."""
    model, ckpt = load_model(job.init, root=job.checkpoints_root)
    try:
        cfg = adopt_architecture(job.config, ckpt.config.to_dict(), where=str(ckpt.path))
    except ConfigError as e:
        raise TrainError(str(e)) from None
    check_tokenizer(ckpt, tok.state())
    model.set_dropout(cfg.dropout)  # dropout is a training choice (the guide raises it for SFT)
    return Start(model, cfg, str(ckpt.path))


def _scratch(cfg: TrainConfig, tok: Tokenizer, device: torch.device) -> Start:
    vocab = tok.model_vocab_size
    if cfg.vocab_size is not None and cfg.vocab_size < vocab:
        raise TrainError(f"vocab_size {cfg.vocab_size} is smaller than the tokenizer's {vocab} rows")
    arch = GPTConfig(**{**cfg.architecture(), "vocab_size": cfg.vocab_size or vocab}, dropout=cfg.dropout)
    check_memory(arch, cfg, device, weights_loaded=False)
    torch.manual_seed(cfg.seed)
    return Start(GPT(arch), cfg, "scratch")


def check_memory(arch: GPTConfig, cfg: TrainConfig, device: torch.device, weights_loaded: bool) -> None:
    """Refuse a run that cannot fit before anything is allocated or written: the estimate of
    weights, gradients, AdamW state, activations and logits against what the device has free."""
    free = memory_available(device)
    report = model_report(arch, cfg.batch_size)
    need = report["total_bytes"] - (report["weights_bytes"] if weights_loaded and device.type == "cpu" else 0)
    if free is not None and need > free:
        raise TrainError(
            f"the run needs about {format_bytes(need)} on {device.type} (a {report['params'] / 1e6:,.1f}M-parameter "
            f"model: n_layer {arch.n_layer}, n_embd {arch.n_embd}, vocab_size {arch.vocab_size}; batch_size "
            f"{cfg.batch_size} x block_size {arch.block_size}), but {format_bytes(free)} is free: lower batch_size "
            "or block_size, or choose a smaller model")


# -- ranks ---------------------------------------------------------------------------------------

def on_all_ranks(dist: distributed.Dist, device: torch.device, fn: Callable[[], None], main_only: bool) -> None:
    """Run a setup step (on rank 0 only, or on every rank) and fail together if any rank failed."""
    error = None
    if dist.main or not main_only:
        try:
            fn()
        except TrainError as e:
            error = e
    if distributed.any_rank(dist, error is not None, device):
        raise error or TrainError("another rank could not set up the run (see its message)")


# -- the run, set up -----------------------------------------------------------------------------

@dataclass
class Progress:
    """What changes as the run goes: the loop advances it, the outputs record it, checkpoints keep it."""

    step: int
    best_val: float | None = None
    last_checkpoint: Path | None = None  # the newest step checkpoint (the one a failure points to)
    metrics: dict = field(default_factory=dict)  # the latest eval's numbers
    step_time: float | None = None  # smoothed seconds per step (the ETA)


@dataclass
class Run:
    """Everything a run trains with, set up; only `progress` changes once training starts."""

    job: TrainJob
    cfg: TrainConfig
    dist: distributed.Dist
    device: torch.device
    dtype: torch.dtype | None
    data: Data
    elig: Eligibility  # the train episodes the sampler draws from
    report: dict  # the pre-flight report (RunStart.preflight)
    model: GPT
    train_model: torch.nn.Module  # the forward the loop calls: SupervisedLoss, compiled and/or in DDP
    init: str
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    sampler: EpisodeSampler
    evals: EvalSets
    progress: Progress
    folder: RunFolder  # the run folder: committed once the run starts, taken back if it cannot

    @property
    def out(self) -> Path:
        return Path(self.job.output)

    @property
    def main(self) -> bool:
        return self.dist.main

    def result(self, reason: str, step: int) -> TrainResult:
        return TrainResult(reason, step, self.out, self.progress.last_checkpoint, self.progress.best_val)


def setup_run(job: TrainJob, device: torch.device, dist: distributed.Dist) -> Run:
    """Data, model, optimizer and restored state. The run folder is made (an old run moved aside)
    only once the job passed every check that does not need it; if anything after that fails,
    the folder is taken back (RunOutputs commits it once the run has started)."""
    data = open_data(job)
    on_all_ranks(dist, device, lambda: check_run_dir(job), main_only=False)
    start = build_model(job, data.tok, device)
    cfg, model = start.cfg, start.model
    if start.init != "scratch":
        check_memory(model.config, cfg, device, weights_loaded=True)
    elig = eligible(data, job, cfg)
    report = preflight(data.train, elig, cfg, dist.world)
    if cfg.block_size > model.config.block_size:
        raise TrainError(f"block_size {cfg.block_size} exceeds the model's context {model.config.block_size}")
    try:
        dtype = pick_dtype(cfg.precision, device)
    except DeviceError as e:
        raise TrainError(str(e)) from None
    check_vocabulary(data, model)
    folder = RunFolder(job)
    on_all_ranks(dist, device, folder.make, main_only=True)
    try:
        return _assemble(job, cfg, dist, device, dtype, data, elig, report, start, folder)
    except BaseException:
        folder.undo()
        raise


def _assemble(job: TrainJob, cfg: TrainConfig, dist: distributed.Dist, device: torch.device,
              dtype: torch.dtype | None, data: Data, elig: Eligibility, report: dict, start: Start,
              folder: RunFolder) -> Run:
    model = start.model
    model.to(device)
    optimizer = torch.optim.AdamW(model.param_groups(cfg.weight_decay), lr=cfg.learning_rate,
                                  betas=(cfg.beta1, cfg.beta2), **({"fused": True} if device.type == "cuda" else {}))
    scaler = torch.amp.GradScaler(device.type, enabled=(dtype == torch.float16))
    progress = Progress(start.step, last_checkpoint=latest_checkpoint(job.output) if job.resume else None)
    sampler_state = SamplerState()
    if start.train_state is not None:
        sampler_state = _restore(start.train_state, elig, optimizer, scaler, progress, device)
    return Run(job, cfg, dist, device, dtype, data, elig, report, model, _wrap(model, cfg, dist, device),
               start.init, optimizer, scaler, _sampler(data, elig, cfg, dist, sampler_state),
               _eval_sets(data, elig, cfg), progress, folder)


def check_vocabulary(data: Data, model: GPT) -> None:
    """Every id the run will feed the model has a row in its embedding: the padding id and every
    token of the dataset (a damaged tokens.bin, or a pad_token_id past the vocabulary, would crash
    the first step or index the wrong row)."""
    vocab = model.config.vocab_size
    if not 0 <= data.pad_id < vocab:
        raise TrainError(f"pad_token_id {data.pad_id} is outside the model's vocabulary of {vocab} ids "
                         f"(0 to {vocab - 1}); leave it unset to pad with the tokenizer's <myPT_eot>")
    try:
        for split in (data.train, data.val):
            if split is not None:
                split.check_token_range(vocab)
    except DatasetError as e:
        raise TrainError(str(e)) from None


def _restore(state: dict, elig: Eligibility, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
             progress: Progress, device: torch.device) -> SamplerState:
    """Put back what --resume continues from, so that the resumed steps equal the uninterrupted ones."""
    if state.get("eligible") != elig.fingerprint():
        raise TrainError("--resume: the dataset or the episode policy changed since this run started "
                         "(the eligible episodes differ); resume with the same dataset and config")
    optimizer.load_state_dict(state["optimizer"])
    if state.get("scaler"):
        scaler.load_state_dict(state["scaler"])
    progress.best_val = state.get("best_val_loss")
    torch.set_rng_state(state["rng"]["torch"])
    if device.type == "cuda" and state["rng"].get("cuda") is not None:
        torch.cuda.set_rng_state(state["rng"]["cuda"], device)
    return SamplerState(**state["sampler"])


def _wrap(model: GPT, cfg: TrainConfig, dist: distributed.Dist, device: torch.device) -> torch.nn.Module:
    train_model: torch.nn.Module = SupervisedLoss(model)
    if cfg.compile:
        train_model = torch.compile(train_model)
    if dist.enabled:
        train_model = torch.nn.parallel.DistributedDataParallel(
            train_model, device_ids=[device.index] if device.type == "cuda" else None)
    return train_model


def _sampler(data: Data, elig: Eligibility, cfg: TrainConfig, dist: distributed.Dist,
             state: SamplerState) -> EpisodeSampler:
    return EpisodeSampler(elig.eligible, data.train.lengths, batch_size=cfg.batch_size,
                          block_size=cfg.block_size, batching=cfg.batching, mode=cfg.batch_sampling_mode,
                          seed=cfg.epoch_seed, shuffle=cfg.epoch_shuffle, drop_last=cfg.epoch_drop_last,
                          world=dist.world, rank=dist.rank, state=state)


def _eval_sets(data: Data, elig: Eligibility, cfg: TrainConfig) -> EvalSets:
    return build_eval_sets(data.tok, data.train, data.val, elig, cfg, data.pad_id, census)
