"""Everything a run writes, opened and closed in one place.

`with RunOutputs(run, sinks) as out:` opens the events file, the audit and the run files,
announces the run, and on leaving closes them all however the run ended; an unexpected failure
(out of memory, disk full...) is first recorded as a RunError event, then raised. Rank 0 writes;
on other ranks the methods write nothing, so that the loop calls them alike on every rank.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from types import TracebackType

import torch

from ..audit import AuditWriter, ids_digest
from ..checkpoint import save_checkpoint
from ..config import to_toml
from ..config.evaluation import gold_selection_of
from ..errors import user_message
from ..events import (
    CheckpointSaved,
    Done,
    EpochEnd,
    EpochStart,
    Event,
    Gate,
    JsonlSink,
    PhaseStart,
    RunError,
    RunStart,
    RunWarning,
    Sink,
)
from ..layout import AUDIT_FILE, BEST_DIR, CONFIG_FILE, EVENTS_FILE, RUN_FILE
from ..report import ReportCard, ReportWriter
from ..runs import step_dir
from ..sampler import SampledBatch
from ..sizing import model_report
from . import external_gate
from .curriculum import Phase
from .gates import decide
from .logs import MyptLogSink
from .setup import Run

GATE_DIR = "gate"  # <run>/gate/: the external gate's verdicts, and the weights it is rating


class RunOutputs:
    """The events (events.jsonl and the caller's sinks), the audit, run.json/config.toml and the checkpoints."""

    def __init__(self, run: Run, sinks: list[Sink]) -> None:
        self.run = run
        self.main = run.main
        self.dir = run.out
        self.sinks = list(sinks)
        self.audit: AuditWriter | None = None
        self.report: ReportWriter | None = None  # rank 0: the report card, rewritten after each eval
        self.early_stop = ""  # why the run stopped before max_iters, once it did

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
        card = ReportCard.of_run(self.dir) if job.resume else ReportCard()  # gates decide on the whole history
        self.report = ReportWriter(self.dir, card)
        self.sinks = [JsonlSink(self.dir / EVENTS_FILE), self.report, *self.sinks]
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
        pretrain = run.data.kind == "pretrain"
        if pretrain:
            note = "Pretraining: every position of the token stream trains (there is no loss mask to apply)"
        elif cfg.use_loss_mask:
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
        if not cfg.use_loss_mask and not pretrain:
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
                               "kind": run.data.kind, "init": run.init, "epoch": run.sampler.state.epoch,
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

    def choose_best(self, step: int, final: bool) -> str:
        """After an eval (its Eval and Probe events already folded into the report card): run the
        external gate when due, decide (guards, strategy, saturation, early stopping), save best/
        when chosen, and emit the Gate event. Returns why the run should stop here ("" to go on).
        Rank 0 decides; the others return "" (the loop tells every rank)."""
        if self.report is None or not self.report.card.records:
            return ""
        card, cfg = self.report.card, self.run.cfg
        history, current = card.records[:-1], card.records[-1]
        gs = gold_selection_of(cfg.gold_selection)
        gate = None
        if step > 0 and external_gate.due(gs["external_gate"], len(card.records), final):
            gate = self._run_gate(step, gs["external_gate"])
        d = decide(cfg, history, current, gate)
        previous = card.best
        if d.chosen:
            self.run.progress.best_val = current["val_loss"]
            self.save(step, "best", {**self.run.progress.metrics,
                                     "selection": {"strategy": gs["strategy"], "reason": d.reason}})
        self.emit(Gate(step=step, strategy=gs["strategy"], chosen=d.chosen, reason=d.reason,
                       val_loss=current["val_loss"], best_step=step if d.chosen else previous and previous["step"],
                       blocked=d.blocked, guards=d.guards, regressed=d.regressed, gate=gate,
                       saturation=d.saturation, early_stop=d.early_stop))
        if d.saturation and d.saturation["detected"] and d.saturation["first_step"] == step:
            self.emit(RunWarning(step=step, code="saturation",
                                 message=f"token accuracy saturation: {d.saturation['reason']}"))
        if d.early_stop:
            self.early_stop = d.early_stop
            self.emit(RunWarning(step=step, code="early_stop", message=f"stopping early: {d.early_stop}"))
        return d.early_stop

    def _run_gate(self, step: int, gate: dict) -> dict:
        """The external gate on this eval's weights, saved to <run>/gate/candidate for it to load."""
        folder = self.dir / GATE_DIR
        candidate = folder / "candidate"
        run = self.run
        save_checkpoint(candidate, run.model, tokenizer_state=run.data.tok.state(), step=step,
                        metrics=dict(run.progress.metrics), extra={"run": self.dir.name, "config": run.cfg.to_dict()})
        try:
            return external_gate.run_gate(gate, candidate, folder / f"step_{step:06d}.json", step)
        finally:
            shutil.rmtree(candidate, ignore_errors=True)

    # -- the end -----------------------------------------------------------------------------------

    def finish(self, reason: str, started: float) -> None:
        """A final checkpoint (unless this step's is saved already), then Done."""
        p = self.run.progress
        if self.main and p.last_checkpoint != step_dir(self.dir, p.step):
            self.save(p.step, "final", {"loss": p.metrics.get("train_loss"), **p.metrics})
        anchor = self.audit.anchor() if self.audit is not None else None
        self.emit(Done(step=p.step, reason=reason, elapsed=time.time() - started,
                       final_checkpoint=_text(p.last_checkpoint), best_val_loss=p.best_val,
                       audit_records=anchor.records if anchor else None, audit_hash=anchor.hash if anchor else None,
                       early_stop=self.early_stop))

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
