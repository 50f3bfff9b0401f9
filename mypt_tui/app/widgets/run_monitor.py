"""One run on screen: progress with epoch/step/ETA, loss/LR/tokens-per-second, warnings, the loss
plot and the episode-audit log, or (button "Evals") the eval panel. Fed batches of engine events
(live, followed or replayed); it renders each batch once, so a burst of steps costs one repaint.
Before any run is shown, a hint takes the panes' place (what to do first)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, ContentSwitcher, ProgressBar, Static

from engine.events import CheckpointSaved, Done, EpochEnd, Eval, Event, RunError, RunStart, RunWarning, Step
from engine.runs import RunStatus
from mypt_tui.app.widgets.audit_log import AuditLog
from mypt_tui.app.widgets.eval_panel import EvalPanel
from mypt_tui.app.widgets.loss_plot import LossPlot
from mypt_tui.app.widgets.step_record import StepRecord
from mypt_tui.present.audit_lines import AuditEntry, epoch_note, unit_of
from mypt_tui.present.console import device_use, done_line
from mypt_tui.present.numbers import fmt_duration, loss

# The run panes' keys (shown in their titles), for a screen that shows a RunMonitor as `self.monitor`.
MONITOR_BINDINGS = [
    Binding("ctrl+y", "plot_scale", "Log/linear y", show=False),
    Binding("ctrl+l", "plot_zoom", "Zoom to the last steps", show=False),
    Binding("ctrl+b", "step_record", "A step's audit record", show=False),
]


class MonitorKeys:
    """The actions of MONITOR_BINDINGS, mixed into the screens that show a run."""

    monitor: RunMonitor

    def action_plot_scale(self) -> None:
        self.monitor.toggle_scale()

    def action_plot_zoom(self) -> None:
        self.monitor.cycle_zoom()

    def action_step_record(self) -> None:
        self.monitor.open_record()

@dataclass
class Fed:
    """What a batch of events brought that the screen may want to announce."""

    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    done: Done | None = None
    started: RunStart | None = None


class RunMonitor(Vertical):
    DEFAULT_CSS = """
    RunMonitor { height: 1fr; }
    RunMonitor #mon-progress-row { height: 1; }
    RunMonitor #mon-bar { width: auto; margin-right: 1; }
    RunMonitor #mon-bar Bar { width: 20; }
    RunMonitor #mon-progress { width: 1fr; }
    RunMonitor #mon-metrics { height: 1; }
    RunMonitor #mon-status { height: auto; max-height: 3; color: $text-muted; }
    RunMonitor #mon-warning { height: auto; max-height: 2; color: $warning; display: none; }
    RunMonitor #mon-warning.-shown { display: block; }
    RunMonitor #mon-warning.-error { color: $error; }
    RunMonitor #mon-body { height: 1fr; }
    RunMonitor #mon-views { height: 1; }
    RunMonitor #mon-views Button { margin-right: 1; min-width: 8; width: auto; }
    RunMonitor #mon-switch { height: 1fr; }
    RunMonitor.-hint LossPlot, RunMonitor.-hint AuditLog, RunMonitor.-hint #mon-views { display: none; }
    RunMonitor #mon-hint { display: none; width: 1fr; height: 1fr; padding: 0 1; border-top: solid $primary; }
    RunMonitor.-hint #mon-hint { display: block; }
    RunMonitor LossPlot { width: 1fr; border-top: solid $primary; }
    RunMonitor AuditLog { width: 1fr; border-top: solid $primary; margin-left: 1; }
    RunMonitor LossPlot, RunMonitor AuditLog, RunMonitor #mon-hint { border-title-color: $text; }
    """

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id)
        self.run = RunStatus()  # the shown run's state, folded from its events
        self.run_dir: Path | None = None  # the shown run's folder (its audit.jsonl has the full records)
        self.last_audit_step = -1
        self.status = ""
        self.hint = ""

    def compose(self) -> ComposeResult:
        yield Static("", id="mon-status")
        with Horizontal(id="mon-progress-row"):
            yield ProgressBar(total=1, show_eta=False, id="mon-bar")
            yield Static("", id="mon-progress")
        yield Static("", id="mon-metrics")
        yield Static("", id="mon-warning")
        with Horizontal(id="mon-views"):
            yield Button("Loss & audit", id="mon-show-loss", compact=True, variant="primary")
            yield Button("Evals", id="mon-show-evals", compact=True)
        with ContentSwitcher(id="mon-switch", initial="mon-body"):
            with Horizontal(id="mon-body"):
                yield Static("", id="mon-hint")
                yield LossPlot(id="mon-plot")
                yield AuditLog(id="mon-audit")
            yield EvalPanel(id="mon-evals")

    def on_mount(self) -> None:
        self.query_one("#mon-hint", Static).border_title = "Getting started"
        self.audit.border_title = "Audit · click a step, or ^b"
        self._render_titles()

    def _render_titles(self) -> None:
        self.plot.border_title = f"Loss ({self.plot.view}) ^y scale ^l zoom"

    def set_hint(self, text: str) -> None:
        """What to do first, shown in the panes' place until a run is shown."""
        self.hint = text
        self.query_one("#mon-hint", Static).update(text)
        self.set_class(bool(text) and self.run_dir is None, "-hint")

    def toggle_scale(self) -> None:
        self.plot.toggle_scale()
        self._render_titles()

    def cycle_zoom(self) -> None:
        self.plot.cycle_zoom()
        self._render_titles()

    def open_record(self, step: int | None = None) -> None:
        """The full audit record of a step (the newest shown when none is given)."""
        step = step if step is not None else self.audit.last_step
        if self.run_dir is None or step is None:
            self.notify("no step trained yet: the audit records each step as it trains", severity="warning")
            return
        self.app.push_screen(StepRecord(self.run_dir, step))

    def on_audit_log_step_picked(self, message: AuditLog.StepPicked) -> None:
        self.open_record(message.step)

    @property
    def step(self) -> Step | None:
        return self.run.step

    @property
    def max_iters(self) -> int:
        return self.run.max_iters

    @property
    def plot(self) -> LossPlot:
        return self.query_one(LossPlot)

    @property
    def audit(self) -> AuditLog:
        return self.query_one(AuditLog)

    @property
    def evals(self) -> EvalPanel:
        return self.query_one(EvalPanel)

    def show_view(self, view: str) -> None:
        """"mon-body" (the loss plot and the audit) or "mon-evals" (the eval panel)."""
        self.query_one("#mon-switch", ContentSwitcher).current = view
        self.query_one("#mon-show-loss", Button).variant = "primary" if view == "mon-body" else "default"
        self.query_one("#mon-show-evals", Button).variant = "primary" if view == "mon-evals" else "default"

    @on(Button.Pressed, "#mon-show-loss, #mon-show-evals")
    def view_pressed(self, event: Button.Pressed) -> None:
        self.show_view("mon-evals" if event.button.id == "mon-show-evals" else "mon-body")

    def reset(self, status: str = "", run_dir: Path | None = None) -> None:
        """Forget the shown run (a new run, or another run opened: `run_dir`)."""
        self.run, self.last_audit_step, self.run_dir = RunStatus(), -1, run_dir
        self.set_class(bool(self.hint) and run_dir is None, "-hint")
        self.plot.clear_points()
        self.plot.redraw()
        self.audit.clear_entries()
        self.evals.reset()
        warning = self.query_one("#mon-warning", Static)
        warning.update("")
        warning.remove_class("-shown", "-error")
        self.set_status(status)
        self._render_numbers()

    def set_status(self, text: str) -> None:
        self.status = text
        self.query_one("#mon-status", Static).update(text)

    def show_warning(self, text: str, error: bool = False) -> None:
        w = self.query_one("#mon-warning", Static)
        w.update(("error: " if error else "warning: ") + text)
        w.add_class("-shown")
        w.set_class(error, "-error")

    def load_audit(self, entries: list[AuditEntry], last_step: int) -> None:
        """Show a replayed audit.jsonl (the authority on what trained: a resume cut the redone steps).

        Call it before `feed(events, replay=True)`: steps the audit already shows are not repeated.
        """
        self.audit.clear_entries()
        self.audit.add(entries)
        self.last_audit_step = last_step

    def feed(self, events: list[Event], replay: bool = False) -> Fed:
        """Apply a batch of events, then render once. `replay`: a run's history read back after
        `load_audit`, whose run starts must not clear the audit log."""
        fed = Fed()
        if not events:
            self.plot.redraw_if_due()  # the last batch's points, once their second is up
            return fed
        lines: list[AuditEntry] = []
        plot = self.plot
        for ev in events:
            self.run.apply(ev)
            if isinstance(ev, Step):
                plot.add_train(ev.step, ev.loss)
                if ev.step > self.last_audit_step:
                    lines.append(AuditEntry(step=ev.step, epoch=ev.epoch, episodes=tuple(ev.episodes)))
                    self.last_audit_step = ev.step
            elif isinstance(ev, Eval):
                plot.add_val(ev.step, ev.val_loss)
            elif isinstance(ev, RunStart):
                fed.started = ev
                self.run_dir = Path(ev.run_dir)
                self.remove_class("-hint")
                if ev.resumed:
                    plot.truncate_after(ev.step)
                    if not replay:
                        self.last_audit_step = ev.step
                        lines.append(AuditEntry(note=f"resumed at step {ev.step}"))
                else:
                    plot.clear_points()
                    if not replay:
                        self.last_audit_step = -1
                        self.audit.clear_entries()
                        lines.clear()
                self.set_status(f"{'Resumed' if ev.resumed else 'Started'} {ev.run_dir} at step {ev.step} "
                                f"(weights: {ev.init}; {ev.model.get('params', 0):,} parameters)")
            elif isinstance(ev, EpochEnd) and not replay:
                unit = unit_of(self.run.step.episodes if self.run.step else ())  # episodes, or windows of a stream
                lines.append(AuditEntry(note=epoch_note(ev.epoch, ev.step, ev.trained, ev.dropped, unit)))
            elif isinstance(ev, CheckpointSaved):
                self.set_status(f"step {ev.step}: saved {ev.kind} checkpoint {ev.path}")
            elif isinstance(ev, RunWarning):
                fed.warnings.append(ev.message)
                self.show_warning(f"step {ev.step}: {ev.message}")
            elif isinstance(ev, RunError):
                fed.errors.append(ev.message)
                self.show_warning(ev.message, error=True)
                self.set_status(f"failed at step {ev.step}")
            elif isinstance(ev, Done):
                fed.done = ev
                self.set_status(done_line(ev))
        with self.app.batch_update():
            self.audit.add(lines)
            if fed.done is not None or fed.started is not None or replay:
                plot.redraw()
            else:
                plot.redraw_if_due()  # at most once a second, in this same repaint
            self._render_numbers()
            self.evals.feed(events)
        return fed

    def _render_numbers(self) -> None:
        bar = self.query_one(ProgressBar)
        progress = self.query_one("#mon-progress", Static)
        metrics = self.query_one("#mon-metrics", Static)
        s = self.step
        if s is None:
            bar.update(total=self.max_iters or 1, progress=0)  # never indeterminate: that animates forever
            progress.update(f"step 0/{self.max_iters}" if self.max_iters else "")
            metrics.update("")
            return
        bar.update(total=max(self.max_iters, s.step), progress=s.step)
        progress.update(f"epoch {s.epoch} ({s.epoch_progress:.0%}) · step {s.step}/{self.max_iters} · "
                        + (self.run.ended or f"ETA {fmt_duration(s.eta_s)}"), layout=False)
        val = ""
        if self.run.eval is not None:
            val = f" · val {loss(self.run.val_loss)}"
            if self.run.best_val_loss is not None:
                val += f" (best {loss(self.run.best_val_loss)})"
        metrics.update(f"loss {loss(s.loss)}{val} · lr {s.lr:.2e} · {s.tokens_per_s:,.0f} tok/s{device_use(s, ' · ')}",
                       layout=False)  # one line each: no layout pass a few times a second
