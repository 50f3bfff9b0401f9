"""The headless renderer of the event stream: a progress bar and report lines on stderr."""

from __future__ import annotations

import sys
from typing import TextIO

from engine.events import (
    CheckpointSaved,
    Done,
    EpochEnd,
    EpochStart,
    Event,
    Gate,
    PhaseStart,
    RunError,
    RunStart,
    RunWarning,
    Step,
)
from engine.report import ReportCard
from engine.runs import RunStatus
from mypt_tui.present.eval_rows import table_lines
from mypt_tui.present.numbers import fmt_duration, loss


def progress_line(ev: Step, max_iters: int, val_loss: float | None, width: int = 20) -> str:
    done = ev.step / max_iters if max_iters else 1.0
    filled = int(done * width)
    val = f" | val {loss(val_loss)}" if val_loss is not None else ""
    return (f"[{'#' * filled}{'-' * (width - filled)}] {done:4.0%} step {ev.step}/{max_iters}"
            f" | epoch {ev.epoch} ({ev.epoch_progress:.0%}) | loss {ev.loss:.4f}{val}"
            f" | {ev.tokens_per_s:,.0f} tok/s{device_use(ev)} | ETA {fmt_duration(ev.eta_s)}")


def device_use(ev: Step, sep: str = " | ") -> str:
    """The step's MFU and the GPU memory the run peaked at, each where the run reports it ("" on a CPU
    without peak_tflops), each after `sep`."""
    parts = []
    if ev.mfu is not None:
        parts.append(f"MFU {ev.mfu:.0%}")
    if ev.peak_memory_bytes is not None:
        parts.append(f"peak mem {ev.peak_memory_bytes / 2**30:.1f} GiB")
    return "".join(sep + p for p in parts)


def preflight_lines(ev: RunStart) -> list[str]:
    from engine.sizing import format_report  # torch: only once a run starts

    p = ev.preflight
    lines = [
        f"{'Resuming' if ev.resumed else 'Starting'} run {ev.run_dir} at step {ev.step} (weights: {ev.init})",
        *([f"  config: {ev.name}"] if ev.name else []),
        *([f"  {ev.description}"] if ev.description else []),
        f"  {ev.model.get('n_layer')} layers, {ev.model.get('n_embd')} wide, {ev.model.get('n_head')} heads, "
        f"context {ev.model.get('block_size')}",
        *("  " + line for line in format_report(ev.model["memory"]).splitlines()),
        _units_line(p),
        f"  tokens: {p['tokens']:,}, supervised: {p['supervised_tokens']:,}"
        + (f" (weighted: {p['weighted_supervised']:,})" if "weighted_supervised" in p else ""),
        f"  {p['episodes_per_step']:g} {_unit(p)}s a step, {p['steps_per_epoch']:g} steps an epoch: "
        f"max_iters {ev.max_iters:,} is about {p['epochs']:g} epochs",
    ]
    for ph in p.get("curriculum", []):
        end = f"to step {ph['until']:,}" if ph["until"] is not None else "to the end"
        now = " (now)" if ph["phase"] == p.get("phase") else ""
        lines.append(f"  curriculum phase {ph['phase']} {ph['name']!r}{now}: after step {ph['start']:,} {end}, "
                     f"{ph['dataset']} ({ph['eligible']:,} eligible episodes)")
    return lines + [f"  {n}" for n in ev.notes]


def _unit(p: dict) -> str:
    return "window" if p.get("kind") == "pretrain" else "episode"


def _units_line(p: dict) -> str:
    """What the sampler draws from: episodes (and why some are not eligible), or a stream's windows."""
    if p.get("kind") == "pretrain":
        return f"  pretraining: {p['eligible']:,} windows of the token stream, every position trained"
    return (f"  episodes: {p['eligible']:,} eligible of {p['episodes']:,} "
            f"({p['skipped_short']:,} shorter than episode_min_tokens, {p['overlong']:,} over-long: "
            f"{p['overlong_dropped']:,} dropped, {p['overlong_truncated']:,} truncated; "
            f"{p['no_supervised']:,} with nothing supervised)")


class ConsoleSink:
    """Renders events on a stream: a live bar on a terminal, a line every `log_interval` steps otherwise."""

    def __init__(self, stream: TextIO = sys.stderr, log_interval: int = 10) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.log_interval = max(log_interval, 1)
        self.status = RunStatus()
        self.started = False  # a run started: from then on its failure is shown here, as its RunError
        self.unit = "episodes"  # what an epoch holds: episodes, or windows of a token stream (pretraining)
        self.card = ReportCard()  # the evals so far: the table printed after each one
        self._bar = False

    def _line(self, text: str) -> None:
        if self._bar:
            self.stream.write("\r\x1b[2K")
            self._bar = False
        self.stream.write(text + "\n")
        self.stream.flush()

    def __call__(self, ev: Event) -> None:
        self.status.apply(ev)
        self.card.apply(ev)
        if isinstance(ev, RunStart):
            self.started = True
            self.unit = "windows" if ev.preflight.get("kind") == "pretrain" else "episodes"
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
        elif isinstance(ev, Gate):  # the last event of an eval: its table, with the probes and the choice
            for line in table_lines(self.card):
                self._line(line)
        elif isinstance(ev, PhaseStart):
            self._line(f"curriculum phase {ev.phase} {ev.name!r} begins after step {ev.step}: {ev.dataset} "
                       f"({ev.eligible:,} eligible episodes)")
        elif isinstance(ev, EpochStart):
            if ev.step > 0:
                self._line(f"epoch {ev.epoch} begins ({ev.episodes:,} {self.unit})")
        elif isinstance(ev, EpochEnd):
            dropped = f", {ev.dropped} dropped as an incomplete last batch" if ev.dropped else ""
            self._line(f"epoch {ev.epoch} done at step {ev.step}: {ev.trained:,} {self.unit} trained{dropped}")
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
    if ev.early_stop:
        word = f"Training stopped early ({ev.early_stop})"
    return f"{word} at step {ev.step} in {fmt_duration(ev.elapsed)}{best}; checkpoint: {ev.final_checkpoint}"


class ConsoleLogFile(ConsoleSink):
    """The console's lines written to a file as well (the config's terminal_log_file), appended; a
    line every `log_interval` steps, as on a stream that is not a terminal. Opened at the first event."""

    def __init__(self, path: str, log_interval: int = 10) -> None:
        self.path = path
        self._fh: TextIO | None = None
        super().__init__(_Lazy(self), log_interval)

    def stream_file(self) -> TextIO:
        if self._fh is None:
            self._fh = open(self.path, "a", encoding="utf-8")
        return self._fh

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()


class _Lazy:
    """A text stream that opens its file on the first write (so that ranks other than 0, which
    are sent no events, never open it)."""

    def __init__(self, owner: ConsoleLogFile) -> None:
        self.owner = owner

    def isatty(self) -> bool:
        return False

    def write(self, text: str) -> int:
        return self.owner.stream_file().write(text)

    def flush(self) -> None:
        if self.owner._fh is not None:
            self.owner._fh.flush()


def console_log_sinks(config) -> list:  # noqa: ANN001 - engine.config.TrainConfig (torch-free import kept out)
    """The sinks a config's terminal_log_file asks for (none when it is unset)."""
    path = getattr(config, "terminal_log_file", None)
    return [ConsoleLogFile(path, config.log_interval)] if path else []
