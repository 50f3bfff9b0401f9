"""The headless renderer of the event stream: a progress bar and report lines on stderr."""

from __future__ import annotations

import sys
from typing import TextIO

from engine.events import CheckpointSaved, Done, EpochEnd, EpochStart, Eval, Event, RunError, RunStart, RunWarning, Step
from engine.runs import RunStatus
from mypt_tui.present.numbers import fmt_duration, loss


def progress_line(ev: Step, max_iters: int, val_loss: float | None, width: int = 20) -> str:
    done = ev.step / max_iters if max_iters else 1.0
    filled = int(done * width)
    val = f" | val {loss(val_loss)}" if val_loss is not None else ""
    return (f"[{'#' * filled}{'-' * (width - filled)}] {done:4.0%} step {ev.step}/{max_iters}"
            f" | epoch {ev.epoch} ({ev.epoch_progress:.0%}) | loss {ev.loss:.4f}{val}"
            f" | {ev.tokens_per_s:,.0f} tok/s | ETA {fmt_duration(ev.eta_s)}")


def preflight_lines(ev: RunStart) -> list[str]:
    from engine.model import format_report  # torch: only once a run starts

    p = ev.preflight
    lines = [
        f"{'Resuming' if ev.resumed else 'Starting'} run {ev.run_dir} at step {ev.step} (weights: {ev.init})",
        f"  {ev.model.get('n_layer')} layers, {ev.model.get('n_embd')} wide, {ev.model.get('n_head')} heads, "
        f"context {ev.model.get('block_size')}",
        *("  " + line for line in format_report(ev.model["memory"]).splitlines()),
        f"  episodes: {p['eligible']:,} eligible of {p['episodes']:,} "
        f"({p['skipped_short']:,} shorter than episode_min_tokens, {p['overlong']:,} over-long: "
        f"{p['overlong_dropped']:,} dropped, {p['overlong_truncated']:,} truncated; "
        f"{p['no_supervised']:,} with nothing supervised)",
        f"  tokens: {p['tokens']:,}, supervised: {p['supervised_tokens']:,}",
        f"  {p['episodes_per_step']:g} episodes a step, {p['steps_per_epoch']:g} steps an epoch: "
        f"max_iters {ev.max_iters:,} is about {p['epochs']:g} epochs",
    ]
    return lines + [f"  {n}" for n in ev.notes]


class ConsoleSink:
    """Renders events on a stream: a live bar on a terminal, a line every `log_interval` steps otherwise."""

    def __init__(self, stream: TextIO = sys.stderr, log_interval: int = 10) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.log_interval = max(log_interval, 1)
        self.status = RunStatus()
        self._bar = False

    def _line(self, text: str) -> None:
        if self._bar:
            self.stream.write("\r\x1b[2K")
            self._bar = False
        self.stream.write(text + "\n")
        self.stream.flush()

    def __call__(self, ev: Event) -> None:
        self.status.apply(ev)
        if isinstance(ev, RunStart):
            for line in preflight_lines(ev):
                self._line(line)
        elif isinstance(ev, Step):
            line = progress_line(ev, self.status.max_iters, self.status.val_loss)
            if self.tty:
                self.stream.write("\r\x1b[2K" + line)
                self.stream.flush()
                self._bar = True
            elif ev.step % self.log_interval == 0 or ev.step == self.status.max_iters:
                self._line(line)
        elif isinstance(ev, Eval):
            val = f"val {loss(ev.val_loss)}" if ev.val_loss is not None else "no val split"
            acc = f" | val token accuracy {ev.val_accuracy:.1%}" if ev.val_accuracy is not None else ""
            self._line(f"step {ev.step}: train {loss(ev.train_loss)} | {val}{acc}")
        elif isinstance(ev, EpochStart):
            if ev.step > 0:
                self._line(f"epoch {ev.epoch} begins ({ev.episodes:,} episodes)")
        elif isinstance(ev, EpochEnd):
            dropped = f", {ev.dropped} dropped as an incomplete last batch" if ev.dropped else ""
            self._line(f"epoch {ev.epoch} done at step {ev.step}: {ev.trained:,} episodes trained{dropped}")
        elif isinstance(ev, CheckpointSaved):
            self._line(f"saved {ev.kind} checkpoint {ev.path}")
        elif isinstance(ev, RunWarning):
            self._line(f"warning: {ev.message}")
        elif isinstance(ev, RunError):
            self._line(f"error: {ev.message}")
        elif isinstance(ev, Done):
            self._line(done_line(ev))


def done_line(ev: Done) -> str:
    """How a run ended, as the console and the app's monitor both say it."""
    best = f", best val loss {loss(ev.best_val_loss)}" if ev.best_val_loss is not None else ""
    word = "Training complete" if ev.reason == "completed" else "Training stopped"
    return f"{word} at step {ev.step} in {fmt_duration(ev.elapsed)}{best}; checkpoint: {ev.final_checkpoint}"
