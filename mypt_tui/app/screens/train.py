"""The Train screen: the form, start/stop, and the run live.

The screen only lays out and handles: the form turns into a request (widgets/train_form), the
app's TrainingSession says what trains and where its events come from, and a timer drains
those events into the RunMonitor twice a second (one repaint per batch). Workers never
touch widgets; a worker that fails (a config error, out of memory...) becomes an error dialog.
"""

from __future__ import annotations

import time
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Button, Footer, Input, Select, Static
from textual.worker import Worker, WorkerState, get_current_worker

from engine.train.job import TrainRequest
from mypt_tui.app.widgets.dialogs import ErrorDialog
from mypt_tui.app.widgets.nav import NAV_BINDINGS, NavBar
from mypt_tui.app.widgets.run_monitor import MONITOR_BINDINGS, MonitorKeys, RunMonitor
from mypt_tui.app.widgets.train_form import TrainForm
from mypt_tui.flags import UsageError
from mypt_tui.present.errors import describe_error, resume_hint
from mypt_tui.present.train_job import command_line, job_description, prepare_progress
from mypt_tui.services.demo import Demo, DemoMissing, demos, ensure_prepared, find_demo, is_prepared
from mypt_tui.services.start_check import StartProblem, check_request
from mypt_tui.services.training import SessionState, TrainingSession

DRAIN_INTERVAL = 0.5  # seconds between UI updates from the event stream (each repaint costs the run its share)
STATE_TEXT = {SessionState.TRAINING: "training in this app", SessionState.STOPPING: "stopping ..."}


class TrainScreen(MonitorKeys, Screen):
    """Start a run from the form, watch it, stop it."""

    DEFAULT_CSS = """
    TrainScreen #train-actions { height: 1; padding: 0 1; margin: 1 0 0 0; }
    TrainScreen #train-actions Button { margin-right: 1; min-width: 8; width: auto; }
    TrainScreen #train-state { width: 1fr; color: $text-muted; }
    TrainScreen #train-command { width: 1fr; height: auto; max-height: 3; padding: 0 1; color: $text-muted; }
    TrainScreen RunMonitor { padding: 0 1; }
    """

    BINDINGS = [
        *NAV_BINDINGS,
        Binding("ctrl+r", "start", "Start"),
        Binding("ctrl+g", "detach", "Run detached"),
        Binding("ctrl+t", "stop", "Stop"),
        *MONITOR_BINDINGS,
    ]

    class Status(Message):
        """A line of progress from a worker (the worker never touches widgets)."""

        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    def __init__(self) -> None:
        super().__init__()
        self._shown_state: SessionState | None = None
        self._detach_after_prepare: TrainRequest | None = None
        self.command = ""  # the form's run as a headless command line
        self.demo_missing = ""
        try:
            self.demos: dict[str, Demo] = demos()
        except DemoMissing as e:
            self.demos, self.demo_missing = {}, str(e)

    @property
    def session(self) -> TrainingSession:
        return self.app.training  # type: ignore[attr-defined]

    @property
    def root(self) -> Path:
        return Path(getattr(self.app, "checkpoints_root", "checkpoints"))

    def compose(self) -> ComposeResult:
        yield NavBar("train")
        yield TrainForm(self.demos, self.root, id="train-form")
        yield Static("", id="train-command", markup=False)
        with Horizontal(id="train-actions"):
            yield Button("Start", id="start", variant="success", compact=True)
            yield Button("Run detached", id="detach", compact=True)
            yield Button("Stop", id="stop", variant="error", compact=True, disabled=True)
            yield Button("Copy command", id="copy", compact=True)
            yield Static("", id="train-state")
        yield RunMonitor(id="train-monitor")
        yield Footer()

    @property
    def monitor(self) -> RunMonitor:
        return self.query_one(RunMonitor)

    @property
    def form(self) -> TrainForm:
        return self.query_one(TrainForm)

    def on_mount(self) -> None:
        self.set_interval(DRAIN_INTERVAL, self.drain)
        request = getattr(self.app, "train_request", None)
        if request is not None:
            self.form.fill(request)
        else:
            self.form.apply_type("chat")
        if not self.demos:
            self.monitor.set_status(self.demo_missing)
        self.show_state()
        self.form.rescan()
        if request is not None and getattr(self.app, "autostart", False):
            self.call_after_refresh(self.action_start)
        else:
            self.prepare_if_needed()

    def on_screen_resume(self) -> None:
        if self.is_mounted:
            self.form.rescan()

    def on_unmount(self) -> None:
        self.session.request_stop()  # a training thread must end for the process to exit

    def fill_for_resume(self, run_dir: Path) -> None:
        self.form.fill_for_resume(run_dir)
        self.notify(f"ready to resume {run_dir.name}: Start (ctrl+r) trains it here, Run detached (ctrl+g) "
                    "in the background", title="Resume")

    @on(Select.Changed, "#type")
    def type_changed(self) -> None:
        self.prepare_if_needed()

    # -- what the form would start, in words ---------------------------------------------------------

    @on(Input.Changed, "TrainForm Input")
    @on(Select.Changed, "TrainForm Select")
    def form_changed(self) -> None:
        """The command line under the form, and (before any run) the job described in the panes' place."""
        try:
            request = self.form.request()
        except UsageError as e:
            self.query_one("#train-command", Static).update(f"flags: {e}")
            return
        self.command = command_line(request)
        self.query_one("#train-command", Static).update(f"$ {self.command}")
        demo = find_demo(request.dataset or "-")
        is_demo = demo is not None and request.config is not None and Path(request.config) == demo.config
        self.monitor.set_hint(job_description(request, is_demo))

    def action_copy_command(self) -> None:
        self.form_changed()
        self.app.copy_to_clipboard(self.command)
        self.notify(f"copied: {self.command}", title="Train command", timeout=6)

    @on(Button.Pressed, "#copy")
    def copy_pressed(self) -> None:
        self.action_copy_command()

    # -- preparing the demo set ----------------------------------------------------------------------

    def demo_to_prepare(self) -> Demo | None:
        demo = find_demo(self.form.value("dataset") or "-")
        return demo if demo is not None and not is_prepared(demo) else None

    def prepare_if_needed(self) -> None:
        demo = self.demo_to_prepare()
        if demo is not None:
            self.prepare_demo(demo)

    @work(thread=True, exclusive=True, exit_on_error=False, group="prepare")
    def prepare_demo(self, demo: Demo) -> bool:
        self.post_message(self.Status(f"preparing {demo.input} into {demo.dataset} (first use) ..."))
        last = [0.0]

        def progress(done: int, total: int | None) -> None:
            now = time.monotonic()
            if now - last[0] > 0.3:
                last[0] = now
                self.post_message(self.Status(prepare_progress(demo.kind, demo.input, done, total)))

        worker = get_current_worker()  # the app closing cancels it: prepare stops, writing nothing
        made = ensure_prepared(demo, progress, should_stop=lambda: worker.is_cancelled)
        self.post_message(self.Status(f"{demo.dataset} is ready" if made else ""))
        return made

    def on_train_screen_status(self, message: Status) -> None:
        self.query_one("#train-state", Static).update(message.text)

    # -- start, detach, stop -----------------------------------------------------------------------

    def checked_request(self) -> TrainRequest | None:
        """The form's request once it passed every check a start needs; else a dialog naming the
        field at fault (which gets the focus) and None. Every way to start comes through here."""
        if self.session.busy:
            self.notify("a run is already going: stop it first", severity="warning")
            return None
        try:
            request = self.form.request()
            demo = find_demo(request.dataset or "-")
            check_request(request, prepared_later=demo is not None and not is_prepared(demo))
            return request
        except UsageError as e:
            self.cannot_start("Flags", str(e))
        except StartProblem as e:
            self.cannot_start(e.field, e.message)
        except Exception as e:  # noqa: BLE001 - a check that fails unexpectedly is still a dialog, not a crash
            self.cannot_start("", describe_error(e))
        return None

    def cannot_start(self, field: str, message: str) -> None:
        title = f"Cannot start the run: {field}" if field else "Cannot start the run"
        self.app.push_screen(ErrorDialog(title, message), lambda _: self.form.focus_field(field))

    def action_start(self) -> None:
        request = self.checked_request()
        if request is None:
            return
        try:
            self.session.begin_in_app(request)
        except Exception as e:  # noqa: BLE001 - never a crash: the run did not start, say why
            self.cannot_start("", describe_error(e))
            return
        self.monitor.reset(f"starting {self.session.run_dir} ...")
        self.show_state()
        self.train(request, find_demo(request.dataset or "-"))
        if self.form.output_is_generated:
            self.form.new_output()

    @work(thread=True, exclusive=True, exit_on_error=False, group="train", description="training")
    def train(self, request: TrainRequest, demo: Demo | None):  # noqa: ANN201 - a TrainResult
        """The training thread: the session prepares the demo set if needed, then trains."""
        worker = get_current_worker()
        return self.session.train(request, demo, cancelled=lambda: worker.is_cancelled,
                                  status=lambda text: self.post_message(self.Status(text)))

    def action_detach(self) -> None:
        request = self.checked_request()
        if request is None:
            return
        demo = self.demo_to_prepare()
        if demo is not None:  # the headless command does not prepare: do it here first
            self._detach_after_prepare = request
            self.prepare_demo(demo)
            return
        self.start_detached(request)

    def start_detached(self, request: TrainRequest) -> None:
        try:
            detached = self.session.start_detached(request)
        except Exception as e:  # noqa: BLE001 - never a crash: the run did not start, say why
            self.app.push_screen(ErrorDialog("Could not start the detached run", describe_error(e)))
            return
        self.monitor.reset(f"started detached: pid {detached.pid}, output in {detached.log} "
                           "(it keeps going if the app or the connection goes away)")
        self.show_state()
        if self.form.output_is_generated:
            self.form.new_output()

    def action_stop(self) -> None:
        detached = self.session.state == SessionState.DETACHED
        why = self.session.stop()
        if why:
            self.notify(why, severity="warning")
        elif detached and self.session.detached is not None:
            self.monitor.set_status(f"asked pid {self.session.detached.pid} to stop (a final checkpoint is saved) ...")
        else:
            self.monitor.set_status("stopping after this step (a final checkpoint is saved) ...")
        self.show_state()

    @on(Button.Pressed, "#start")
    def start_pressed(self) -> None:
        self.action_start()

    @on(Button.Pressed, "#detach")
    def detach_pressed(self) -> None:
        self.action_detach()

    @on(Button.Pressed, "#stop")
    def stop_pressed(self) -> None:
        self.action_stop()

    def show_state(self) -> None:
        """Buttons, the state line and the top bar's badge as the session is now."""
        state = self.session.state
        self._shown_state = state
        busy = state != SessionState.IDLE
        self.query_one("#start", Button).disabled = busy
        self.query_one("#detach", Button).disabled = busy
        self.query_one("#stop", Button).disabled = state not in (SessionState.TRAINING, SessionState.DETACHED)
        detached = self.session.detached
        text = STATE_TEXT.get(state, f"detached run (pid {detached.pid})"
                              if state == SessionState.DETACHED and detached else "")
        self.query_one("#train-state", Static).update(text)
        if state == SessionState.IDLE:
            self.app.run_badge = ""  # type: ignore[attr-defined]

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        state = self.session.state
        if action in ("start", "detach"):
            return state == SessionState.IDLE or None
        if action == "stop":
            return state in (SessionState.TRAINING, SessionState.DETACHED) or None
        return True

    # -- the event stream ----------------------------------------------------------------------------

    def drain(self) -> None:
        """Render what arrived since the last call (a timer calls this a few times a second)."""
        if self.session.state != self._shown_state:
            self.show_state()  # another screen (Runs) or the app asked the session to stop
        if self.session.source is None:
            return
        fed = self.monitor.feed(self.session.poll())
        for w in fed.warnings:
            self.notify(w, severity="warning", title="Training warning", timeout=8)
        for e in fed.errors:
            self.notify(e, severity="error", title="Training failed", timeout=12)
        detached = self.session.detached
        if fed.started is not None and detached is not None and fed.started.pid == detached.pid:
            detached.adopt_log()
        step = self.monitor.step
        if step is not None and self.session.busy:
            name = self.session.run_dir.name if self.session.run_dir else ""
            self.app.run_badge = f"{name} {step.step}/{self.monitor.max_iters}"  # type: ignore[attr-defined]
        code = self.session.detached_exit()
        if code is not None:
            self.detached_ended(code)
        elif fed.done is not None and self.session.state == SessionState.DETACHED:
            self.form.rescan()

    def detached_ended(self, code: int) -> None:
        detached = self.session.detached
        self.monitor.feed(self.session.poll())
        self.session.finish()
        self.show_state()
        if code not in (0, 130) and detached is not None:
            self.app.push_screen(ErrorDialog(
                f"The detached run ended with exit code {code}",
                (detached.log_tail() or "(no output)") + f"\n\n(full output: {detached.log})"))
        self.form.rescan()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The one place a finished or failed worker of this screen is handled (never a crash)."""
        worker = event.worker
        if event.state not in (WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED):
            return
        if worker.group == "prepare":
            self.prepare_ended(event.state, worker)
        elif worker.group == "train":
            self.training_ended(event.state, worker)
        elif worker.group == "scan" and event.state == WorkerState.ERROR:
            self.notify(describe_error(worker.error), severity="warning", title="Listing checkpoints")

    def prepare_ended(self, state: WorkerState, worker: Worker) -> None:
        if state == WorkerState.ERROR and type(worker.error).__name__ == "PrepareCancelled":
            return
        if state == WorkerState.ERROR:
            self.query_one("#train-state", Static).update("")
            self.app.push_screen(ErrorDialog("Preparing the demo dataset failed", describe_error(worker.error)))
            self._detach_after_prepare = None
        elif self._detach_after_prepare is not None:
            request, self._detach_after_prepare = self._detach_after_prepare, None
            self.start_detached(request)

    def training_ended(self, state: WorkerState, worker: Worker) -> None:
        self.drain()
        run_dir = self.session.run_dir
        self.session.finish()
        self.show_state()
        self.form.rescan()
        if state == WorkerState.ERROR:
            message = describe_error(worker.error) + resume_hint(run_dir)
            self.monitor.show_warning(describe_error(worker.error), error=True)
            self.app.push_screen(ErrorDialog("Training failed", message))
        elif state == WorkerState.SUCCESS and worker.result is not None:
            result = worker.result
            word = {"completed": "Training complete", "stopped": "Training stopped"}.get(
                result.reason, "Training failed")
            self.notify(f"{word} at step {result.step}: {result.final_checkpoint}", title=run_dir.name
                        if run_dir else "mypt", severity="information" if result.reason != "failed" else "error")
        self.app.training_ended()  # type: ignore[attr-defined]
