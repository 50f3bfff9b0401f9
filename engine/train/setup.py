"""Setting up a run, before step 0: data, model, optimizer, run folder.

Every check that can refuse a job runs here, before any output is opened: the run folder is
only checked (read-only) until the job is known to start, so a job that cannot start leaves an
old run as it was, even under --overwrite. Under torchrun every rank sets up the same run.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from .. import distributed
from ..batching import Batch
from ..checkpoint import CheckpointError, carry_optimizer, check_tokenizer, load_model, load_train_state
from ..config import ConfigError, TrainConfig, adopt_architecture
from ..dataset import DatasetError
from ..device import DeviceError, fast_math, memory_available, pick_dtype, use_compile
from ..model import GPT, GPTConfig
from ..runs import latest_checkpoint
from ..sampler import Eligibility, EpisodeSampler, SamplerState
from ..sizing import format_bytes, model_report
from ..tokenizer import Tokenizer
from .curriculum import Phase, open_phases, phase_of_step, unreached
from .data import Data, census, eligible, open_data, preflight
from .evalset import EvalSets
from .evalsources import build_eval_sets
from .folder import RunFolder, check_run_dir
from .job import TrainError, TrainJob, TrainResult
from .logs import check_log_files
from .tuning import tune_model

__all__ = ["Data", "Run", "Start", "SupervisedLoss", "census", "setup_run"]


def batching_for(cfg: TrainConfig, data: Data) -> tuple[TrainConfig, list[str]]:
    """A packed dataset (MyPT's packed rows, or prepare --enable_packing) trains packed unless the
    config chooses `batching` itself."""
    notes = []
    if data.packs and "batching" not in cfg.explicit and cfg.batching != "pack":
        cfg = dataclasses.replace(cfg, batching="pack", _origins={**cfg.origins, "batching": str(data.path)})
        notes.append(f'batching = "pack": {data.path} is a packed dataset (set batching to choose otherwise)')
    if data.pack_block_size and cfg.batching == "pack" and data.pack_block_size != cfg.block_size:
        notes.append(f"{data.path} was prepared for packed rows of {data.pack_block_size} tokens; this run packs "
                     f"rows of block_size {cfg.block_size}")
    return cfg, notes


# -- model ---------------------------------------------------------------------------------------

class SupervisedLoss(torch.nn.Module):
    """The training forward: sum of token losses at supervised positions (the output layer runs
    only there). A module of its own so that DDP wraps exactly this call.

    `compiled`: torch.compile by region, as torchtitan does: every transformer block (one graph,
    shared by all layers: they differ only in their weights, which are the graph's inputs) and
    the output layer's loss, whose number of supervised positions changes every batch and is
    marked dynamic (one graph for all counts). Compile time does not grow with depth, the model
    itself stays uncompiled (evaluation and generation run it as it is), and the state dict
    keeps its names. `full_output`: the output layer at every position (the benchmark's baseline).
    """

    def __init__(self, model: GPT, *, compiled: bool = False, full_output: bool = False) -> None:
        super().__init__()
        self.model = model
        self.full_output = full_output
        self.compiled = compiled
        # Plain attributes, not submodules: the parameters (and DDP's view of them) stay the model's.
        # torch.compile is lazy: a region is compiled at its first call.
        self._blocks = [torch.compile(b) for b in model.transformer.h] if compiled else None
        self._loss = torch.compile(model.gathered_loss) if compiled else model.gathered_loss
        self._full = torch.compile(model.full_output_loss) if compiled else model.full_output_loss

    def forward(self, b: Batch) -> torch.Tensor:
        m = self.model
        if b.sup_index is None and not self.full_output:  # a batch made by hand: the reference path
            return m.supervised_loss(b.x, b.y, b.mask, segment_ids=b.segment_ids, position_ids=b.position_ids,
                                     weight=b.weight)
        h = m.hidden(b.x, segment_ids=b.segment_ids, position_ids=b.position_ids, blocks=self._blocks)
        if self.full_output:
            return self._full(h, b.y, b.mask, b.weight)
        if self.compiled:  # one graph for every count of supervised positions
            torch._dynamo.maybe_mark_dynamic(b.sup_index, 0)
            torch._dynamo.maybe_mark_dynamic(b.sup_targets, 0)
        return self._loss(h, b.sup_index, b.sup_targets, b.weight)


@dataclass
class Start:
    """Where training starts: the weights, the config to train them with, where they came from,
    and (on --resume) the saved train state and step."""

    model: GPT
    cfg: TrainConfig
    init: str  # "scratch" or the checkpoint's path
    train_state: dict | None = None
    step: int = 0
    meta: dict = field(default_factory=dict)  # the checkpoint's metadata (a MyPT one: its optimizer)


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
    return Start(model, cfg, str(ckpt.path), meta=ckpt.meta)


def _scratch(cfg: TrainConfig, tok: Tokenizer, device: torch.device) -> Start:
    vocab = tok.model_vocab_size
    if cfg.vocab_size is not None and cfg.vocab_size < vocab:
        where = cfg.origins.get("vocab_size")
        raise TrainError(f"vocab_size = {cfg.vocab_size}" + (f" ({where})" if where else "")
                         + f" is smaller than the tokenizer's {vocab} rows ({tok.kind}): leave it unset or raise it")
    arch = GPTConfig(**{**cfg.architecture(), "vocab_size": cfg.vocab_size or vocab}, dropout=cfg.dropout)
    check_memory(arch, cfg, device, weights_loaded=False)
    torch.manual_seed(cfg.seed)
    return Start(GPT(arch), cfg, "scratch")


def check_memory(arch: GPTConfig, cfg: TrainConfig, device: torch.device, weights_loaded: bool) -> None:
    """Refuse a run that cannot fit before anything is allocated or written: the estimate of
    weights, gradients, AdamW state, activations and logits against what the device has free."""
    free = memory_available(device)
    report = model_report(arch, cfg.batch_size, checkpointing=cfg.use_checkpoint)
    need = report["total_bytes"] - (report["weights_bytes"] if weights_loaded and device.type == "cpu" else 0)
    if free is not None and need > free:
        raise TrainError(
            f"the run needs about {format_bytes(need)} on {device.type} (a {report['params'] / 1e6:,.1f}M-parameter "
            f"model: n_layer {arch.n_layer}, n_embd {arch.n_embd}, vocab_size {arch.vocab_size}; batch_size "
            f"{cfg.batch_size} x block_size {arch.block_size}), but only {format_bytes(free)} is free on "
            f"{device.type}: lower batch_size"
            " or block_size, or choose a smaller model")


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
    """Everything a run trains with, set up. `progress` changes as it trains; a curriculum switch
    (`enter_phase`) changes the data, the sampler and the evaluation sets."""

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
    phases: list[Phase] = field(default_factory=list)  # the curriculum, [] without one
    phase: int = 0  # the phase that trains now
    notes: list[str] = field(default_factory=list)  # what setup chose, for the pre-flight report
    warnings: list[str] = field(default_factory=list)

    @property
    def out(self) -> Path:
        return Path(self.job.output)

    @property
    def main(self) -> bool:
        return self.dist.main

    def result(self, reason: str, step: int) -> TrainResult:
        return TrainResult(reason, step, self.out, self.progress.last_checkpoint, self.progress.best_val)

    def enter_phase(self, step: int) -> Phase | None:
        """Before optimizer step `step`: at a curriculum switch, take on the new phase's data, a
        sampler at its epoch 0 and its evaluation sets, and return the phase; else None."""
        if not self.phases or phase_of_step(self.phases, step) == self.phase:
            return None
        ph = self.phases[phase_of_step(self.phases, step)]
        self.phase, self.data, self.elig = ph.index, ph.data, ph.elig
        self.sampler = _sampler(ph.data, ph.elig, self.cfg, self.dist, SamplerState())
        self.evals = _eval_sets(ph.data, ph.elig, self.cfg)
        return ph


def setup_run(job: TrainJob, device: torch.device, dist: distributed.Dist) -> Run:
    """Data, model, optimizer and restored state. The run folder is made (an old run moved aside)
    only once the job passed every check that does not need it; if anything after that fails,
    the folder is taken back (RunOutputs commits it once the run has started)."""
    data = open_data(job.dataset, job.config, job.tokenization)
    on_all_ranks(dist, device, lambda: check_run_dir(job), main_only=False)
    start = build_model(job, data.tok, device)
    model = start.model
    cfg, notes = batching_for(start.cfg, data)
    data = data.windowed(cfg.block_size)  # a token stream, at the block_size the run trains with
    if start.init != "scratch":
        check_memory(model.config, cfg, device, weights_loaded=True)
    phases = open_phases(cfg, data, eligible(data, cfg)) if cfg.curriculum else []
    phase = int((start.train_state or {}).get("phase", 0))
    data, elig = (phases[phase].data, phases[phase].elig) if phases else (data, eligible(data, cfg))
    report = {**preflight(data.train, elig, cfg, dist.world), "kind": data.kind}
    if phases:
        report.update(phase=phase + 1, curriculum=[p.summary() for p in phases])
    if cfg.block_size > model.config.block_size:
        raise TrainError(f"block_size {cfg.block_size} exceeds the model's context {model.config.block_size}")
    try:
        dtype = pick_dtype(cfg.precision, device)
    except DeviceError as e:
        raise TrainError(str(e)) from None
    for d in [p.data for p in phases] or [data]:
        check_vocabulary(d, model)
    tuned, warnings = tune_model(model, cfg)
    warnings += [f"curriculum phase {p.index + 1} ({p.name!r}) begins after step {p.start}, but max_iters is "
                 f"{cfg.max_iters}: it will not train" for p in unreached(phases, cfg.max_iters)]
    if dist.main:
        check_log_files(cfg)
    folder = RunFolder(job)
    on_all_ranks(dist, device, folder.make, main_only=True)
    try:
        run = _assemble(job, cfg, dist, device, dtype, data, elig, report, start, folder)
    except BaseException:
        folder.undo()
        raise
    run.phases, run.phase, run.notes, run.warnings = phases, phase, notes + tuned + run.notes, warnings
    return run


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
    notes = []
    if start.train_state is not None:
        sampler_state = _restore(start.train_state, elig, optimizer, scaler, progress, device)
    elif start.meta and job.weights_only:
        notes.append("optimizer: fresh AdamW (--init_from_model takes the weights only)")
    elif start.meta:
        carried = carry_optimizer(start.meta, model, optimizer)
        notes += [carried] if carried else []
    run = Run(job, cfg, dist, device, dtype, data, elig, report, model, _wrap(model, cfg, dist, device),
              start.init, optimizer, scaler, _sampler(data, elig, cfg, dist, sampler_state),
              _eval_sets(data, elig, cfg), progress, folder)
    run.notes = notes
    return run


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
    try:
        optimizer.load_state_dict(state["optimizer"])
    except ValueError as e:
        raise TrainError(f"--resume: the saved optimizer state does not fit the trainable parameters ({e}); "
                         "freeze_layers and freeze_embeddings must stay as the run started") from None
    if state.get("scaler"):
        scaler.load_state_dict(state["scaler"])
    progress.best_val = state.get("best_val_loss")
    torch.set_rng_state(state["rng"]["torch"])
    if device.type == "cuda" and state["rng"].get("cuda") is not None:
        torch.cuda.set_rng_state(state["rng"]["cuda"], device)
    return SamplerState(**state["sampler"])


def _wrap(model: GPT, cfg: TrainConfig, dist: distributed.Dist, device: torch.device) -> torch.nn.Module:
    """The training forward: compiled by region when `compile` says so (auto: on a CUDA GPU), in DDP
    under torchrun (NCCL on GPUs; the loop skips the gradient sync of all but the last micro-batch)."""
    fast_math(device, cfg.precision)
    train_model: torch.nn.Module = SupervisedLoss(model, compiled=use_compile(cfg.compile, device))
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
