"""Everything a run writes, opened and closed in one place.

`with RunOutputs(run, sinks) as out:` opens the events file, the audit and the run files,
announces the run, and on leaving closes them all however the run ended; an unexpected failure
(out of memory, disk full...) is first recorded as a RunError event, then raised. Rank 0 writes;
on other ranks the methods write nothing, so that the loop calls them alike on every rank.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import TracebackType

import torch

from ..audit import AuditWriter, ids_digest
from ..checkpoint import save_checkpoint
from ..config import to_toml
from ..errors import user_message
from ..events import (
    CheckpointSaved,
    Done,
    EpochEnd,
    EpochStart,
    Event,
    JsonlSink,
    PhaseStart,
    RunError,
    RunStart,
    RunWarning,
    Sink,
)
from ..layout import AUDIT_FILE, BEST_DIR, CONFIG_FILE, EVENTS_FILE, RUN_FILE
from ..runs import step_dir
from ..sampler import SampledBatch
from ..sizing import model_report
from .curriculum import Phase
from .logs import MyptLogSink
from .setup import Run


class RunOutputs:
    """The events (events.jsonl and the caller's sinks), the audit, run.json/config.toml and the checkpoints."""

    def __init__(self, run: Run, sinks: list[Sink]) -> None:
        self.run = run
        self.main = run.main
        self.dir = run.out
        self.sinks = list(sinks)
        self.audit: AuditWriter | None = None

    def __enter__(self) -> RunOutputs:
        try:
            if self.main:
                self._open()
            self._announce()
        except BaseException:
            self._close()
            self.run.folder.undo()  # the run never started: its folder goes, a replaced run comes back
            raise
        self.run.folder.started()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            if isinstance(exc, Exception):
                self.emit(RunError(step=self.run.progress.step,
                                   message=user_message(exc) or f"{type(exc).__name__}: {exc}",
                                   last_checkpoint=_text(self.run.progress.last_checkpoint)))
        except OSError:
            pass  # the disk that failed the run may refuse this record too: the run's own error goes on
        finally:
            self._close()

    def _open(self) -> None:
        """Rank 0's files: a fresh run records its config, origin and eligible set; a resumed one says so."""
        run, job, step = self.run, self.run.job, self.run.progress.step
        self.sinks = [JsonlSink(self.dir / EVENTS_FILE), *self.sinks]
        if run.cfg.log_file:  # MyPT's JSONL training log, beside our events
            self.sinks.append(MyptLogSink(run.cfg.log_file, run.cfg))
        self.audit = AuditWriter(self.dir / AUDIT_FILE, resume_step=step if job.resume else None)
        if job.resume:
            self.audit.write("resume", step)
            return
        cfg, ids = run.cfg, run.data.train.ids
        (self.dir / CONFIG_FILE).write_text(to_toml(cfg))
        (self.dir / RUN_FILE).write_text(json.dumps({
            "dataset": str(job.dataset), "kind": run.data.kind, "init": run.init, "tokenization": run.data.tok.kind,
            "command": job.command, "created": time.time(), "world": run.dist.world}, indent=2))
        self.audit.write("start", 0, eligible=len(run.elig.eligible),
                         eligible_sha256=ids_digest(ids[i] for i in run.elig.eligible),
                         epoch_seed=cfg.epoch_seed, shuffle=cfg.epoch_shuffle, drop_last=cfg.epoch_drop_last,
                         mode=cfg.batch_sampling_mode, batching=cfg.batching, world=run.dist.world)

    def _announce(self) -> None:
        run, cfg, step = self.run, self.run.cfg, self.run.progress.step
        if cfg.use_loss_mask:
            share = run.report["supervised_tokens"] / max(run.report["tokens"] - run.report["eligible"], 1)
            note = f"Using loss masking (assistant-only training): {share:.1%} of target tokens are trained"
        else:
            note = "Loss masking is off: training on every token, prompts included"
        model = run.model
        memory = model_report(model.config, cfg.batch_size, run.dtype or torch.float32,
                              checkpointing=cfg.use_checkpoint)
        self.emit(RunStart(step=step, run_dir=str(self.dir), max_iters=cfg.max_iters, config=cfg.to_dict(),
                           model={**model.config.to_dict(), "params": model.num_params(), "memory": memory},
                           preflight=run.report, notes=[note, *run.notes], resumed=run.job.resume, init=run.init,
                           name=cfg.name, description=cfg.description))
        if not cfg.use_loss_mask:
            self.emit(RunWarning(step=step, message=note, code="no_loss_mask"))
        for message in run.warnings:
            self.emit(RunWarning(step=step, message=message, code="config"))

    def _close(self) -> None:
        if self.audit is not None:
            self.audit.close()
        for s in self.sinks:
            close = getattr(s, "close", None)
            if close is not None:
                close()

    # -- while the run goes ------------------------------------------------------------------------

    def emit(self, ev: Event) -> None:
        if self.main:
            for s in self.sinks:
                s(ev)

    def audit_step(self, step: int, per_rank: list[list[dict]]) -> None:
        """One chained audit record per rank: what each rank trained in this step."""
        if self.audit is None:
            return
        for rank, mbs in enumerate(per_rank):
            self.audit.write("step", step, rank=rank, epoch=mbs[0]["epoch"], micro_batches=mbs,
                             tokens=sum(m["tokens"] for m in mbs), supervised=sum(m["supervised"] for m in mbs))

    def epoch_started(self, step: int, epoch: int) -> None:
        cfg = self.run.cfg
        self.emit(EpochStart(step=step, epoch=epoch, episodes=len(self.run.elig.eligible),
                             seed=cfg.epoch_seed if cfg.epoch_shuffle else None))

    def phase_started(self, step: int, phase: Phase) -> None:
        """A curriculum phase takes over after `step`: audit its eligible set, announce it, start its epoch 0."""
        cfg, ids = self.run.cfg, phase.data.train.ids
        if self.audit is not None:
            self.audit.write("phase", step + 1, phase=phase.index + 1, name=phase.name, dataset=str(phase.data.path),
                             eligible=len(phase.elig.eligible),
                             eligible_sha256=ids_digest(ids[i] for i in phase.elig.eligible),
                             epoch_seed=cfg.epoch_seed, shuffle=cfg.epoch_shuffle, drop_last=cfg.epoch_drop_last)
        self.emit(PhaseStart(step=step, phase=phase.index + 1, name=phase.name, dataset=str(phase.data.path),
                             eligible=len(phase.elig.eligible), until=phase.until, description=phase.description))
        if cfg.batch_sampling_mode == "epoch":
            self.epoch_started(step, 0)

    def epoch_closed(self, step: int, d: SampledBatch) -> None:
        """An epoch ended with this micro-batch: audit what it dropped, and start the next epoch if any."""
        if self.audit is not None:
            ids = self.run.data.train.ids
            self.audit.write("epoch_end", step, epoch=d.epoch, dropped=[ids[i] for i in d.dropped])
        self.emit(EpochEnd(step=step, epoch=d.epoch, trained=len(self.run.elig.eligible) - len(d.dropped),
                           dropped=len(d.dropped)))
        if step < self.run.cfg.max_iters:
            self.epoch_started(step, d.epoch + 1)

    # -- checkpoints -------------------------------------------------------------------------------

    def save(self, step: int, kind: str, metrics: dict) -> None:
        """Rank 0 saves a checkpoint: `best` holds weights only; the others also what --resume needs."""
        if not self.main:
            return
        run, progress = self.run, self.run.progress
        path = self.dir / BEST_DIR if kind == "best" else step_dir(self.dir, step)
        anchor = self.audit.anchor() if self.audit is not None else None
        save_checkpoint(path, run.model, tokenizer_state=run.data.tok.state(), step=step, metrics=metrics,
                        extra={"run": self.dir.name, "config": run.cfg.to_dict(), "dataset": str(run.job.dataset),
                               "init": run.init, "epoch": run.sampler.state.epoch,
                               "audit": anchor.to_dict() if anchor else None,
                               **({"phase": run.phase + 1} if run.phases else {})},
                        train_state=None if kind == "best" else self._train_state(),
                        dtype=None if run.cfg.save_dtype == "fp32" else run.cfg.save_dtype)
        self.emit(CheckpointSaved(step=step, path=str(path), kind=kind, val_loss=metrics.get("val_loss"),
                                  audit_records=anchor.records if anchor else None,
                                  audit_hash=anchor.hash if anchor else None))
        if kind != "best":
            progress.last_checkpoint = path

    def _train_state(self) -> dict:
        run, device = self.run, self.run.device
        return {
            "optimizer": run.optimizer.state_dict(), "sampler": run.sampler.state.to_dict(),
            "scaler": run.scaler.state_dict() if run.scaler.is_enabled() else None,
            "best_val_loss": run.progress.best_val, "eligible": run.elig.fingerprint(), "phase": run.phase,
            "rng": {"torch": torch.get_rng_state(),
                    "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None}}

    def keep_if_best(self, step: int, metrics: dict) -> None:
        """Rank 0 keeps the weights of the lowest val loss so far (step 0's is where it started)."""
        val, best = metrics["val_loss"], self.run.progress.best_val
        if self.main and step > 0 and val is not None and (best is None or val < best):
            self.run.progress.best_val = val
            self.save(step, "best", metrics)

    # -- the end -----------------------------------------------------------------------------------

    def finish(self, reason: str, started: float) -> None:
        """A final checkpoint (unless this step's is saved already), then Done."""
        p = self.run.progress
        if self.main and p.last_checkpoint != step_dir(self.dir, p.step):
            self.save(p.step, "final", {"loss": p.metrics.get("train_loss"), **p.metrics})
        anchor = self.audit.anchor() if self.audit is not None else None
        self.emit(Done(step=p.step, reason=reason, elapsed=time.time() - started,
                       final_checkpoint=_text(p.last_checkpoint), best_val_loss=p.best_val,
                       audit_records=anchor.records if anchor else None, audit_hash=anchor.hash if anchor else None))

    def loss_not_finite(self, loss: float) -> None:
        """The RunError of a diverged run, naming the checkpoint to go back to."""
        p = self.run.progress
        last = p.last_checkpoint
        self.emit(RunError(step=p.step, last_checkpoint=_text(last), message=(
            f"loss became {loss} at step {p.step}: stopping. The last good checkpoint is "
            f"{last or 'none (nothing was saved yet)'}. Try a lower learning_rate, precision = "
            "\"fp32\", or check the data with `mypt inspect`.")))


def _text(path: Path | None) -> str | None:
    return str(path) if path else None
