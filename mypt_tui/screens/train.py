"""The Train screen: the guide's WebUI training form, start/stop, and the run live.

Training runs in a thread worker that never touches widgets: the trainer's events go to an
EventBuffer, and a timer drains it four times a second into the RunMonitor (one repaint per
batch). A detached run is a background `mypt train --no-ui` whose events.jsonl the same timer
follows. A worker that fails (a config error, out of memory...) becomes an error dialog.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Button, Footer, Input, Label, Select, Static
from textual.worker import Worker, WorkerState, get_current_worker

from mypt_tui.default_job import Demo, DemoMissing, demos, ensure_prepared, find_demo, is_prepared, unique_run_name
from mypt_tui.jobs import Detached, UsageError, interrupt, parse_train_argv, split_flags, start_detached
from mypt_tui.tui_sink import EventBuffer, EventSource, follower
from mypt_tui.widgets.dialogs import ErrorDialog
from mypt_tui.widgets.nav import NAV_BINDINGS, NavBar
from mypt_tui.widgets.run_monitor import RunMonitor

DRAIN_INTERVAL = 0.25  # seconds between UI updates from the event stream
SCRATCH = "scratch"
USER_ERRORS = ("TrainError", "ConfigError", "UsageError", "PrepareError", "CheckpointError", "FileNotFoundError")


def describe_error(exc: BaseException) -> str:
    """A worker's exception as the user should read it (our own errors carry a user message)."""
    if type(exc).__name__ in USER_ERRORS:
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def resume_hint(run_dir: Path | None) -> str:
    """How to continue a run that ended early, if it has something to continue from."""
    from engine.runs import latest_checkpoint

    if run_dir is None or latest_checkpoint(run_dir, resumable=True) is None:
        return ""
    return (f"\n\nNothing already checkpointed is lost. Continue with\n"
            f"  mypt train --resume --output {run_dir}\n(or Runs, F2: select the run, Resume).")


class TrainScreen(Screen):
    """Start a run from the form, watch it, stop it."""

    DEFAULT_CSS = """
    TrainScreen #train-form { grid-size: 4; grid-columns: 8 1fr 8 1fr; grid-rows: 1; grid-gutter: 0 1;
                              height: auto; padding: 0 1; }
    TrainScreen #train-form Label { color: $text-muted; }
    TrainScreen #train-actions { height: 1; padding: 0 1; margin: 1 0 0 0; }
    TrainScreen #train-actions Button { margin-right: 1; min-width: 8; width: auto; }
    TrainScreen #train-state { width: 1fr; color: $text-muted; }
    TrainScreen RunMonitor { padding: 0 1; }
    """

    BINDINGS = [
        *NAV_BINDINGS,
        Binding("ctrl+r", "start", "Start"),
        Binding("ctrl+g", "detach", "Run detached"),
        Binding("ctrl+t", "stop", "Stop"),
    ]

    class Status(Message):
        """A line of progress from a worker (the worker never touches widgets)."""

        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    class Checkpoints(Message):
        def __init__(self, names: list[tuple[str, str]]) -> None:
            super().__init__()
            self.names = names

    def __init__(self) -> None:
        super().__init__()
        self.buffer = EventBuffer()
        self.stop_flag = threading.Event()
        self.source: EventSource | None = None
        self.detached: Detached | None = None
        self.run_dir: Path | None = None
        self.state = "idle"  # idle | training | stopping | detached
        self._auto_output = ""  # the generated output name, while the user has not typed their own
        self._detach_after_prepare: list[str] | None = None
        self._type = "chat"
        self._found_init: list[tuple[str, str]] = []  # checkpoints under the root (rescanned)
        self._pinned_init: list[tuple[str, str]] = []  # a --model the app was opened with
        try:
            self.demos: dict[str, Demo] = demos()
        except DemoMissing as e:
            self.demos, self.demo_missing = {}, str(e)

    # -- layout ----------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield NavBar("train")
        with Grid(id="train-form"):
            yield Label("Type")
            yield Select([(d.title, k) for k, d in self.demos.items()] or [("Chat SFT", "chat")], value="chat",
                         allow_blank=False, compact=True, id="type")
            yield Label("Init")
            yield Select([("scratch (random weights)", SCRATCH)], value=SCRATCH, allow_blank=False, compact=True,
                         id="init")
            yield Label("Config")
            yield Input(compact=True, id="config", placeholder="a TOML config")
            yield Label("Dataset")
            yield Input(compact=True, id="dataset", placeholder="a prepared dataset folder")
            yield Label("Output")
            yield Input(compact=True, id="output", placeholder="run name (under checkpoints/) or folder")
            yield Label("Flags")
            yield Input(compact=True, id="flags", placeholder="more mypt train flags: --max_iters 50 --resume")
        with Horizontal(id="train-actions"):
            yield Button("Start", id="start", variant="success", compact=True)
            yield Button("Run detached", id="detach", compact=True)
            yield Button("Stop", id="stop", variant="error", compact=True, disabled=True)
            yield Static("", id="train-state")
        yield RunMonitor(id="train-monitor")
        yield Footer()

    @property
    def monitor(self) -> RunMonitor:
        return self.query_one(RunMonitor)

    @property
    def root(self) -> Path:
        return Path(getattr(self.app, "checkpoints_root", "checkpoints"))

    @property
    def training(self) -> bool:
        """A run trains inside this app (quitting must stop it first)."""
        return self.state in ("training", "stopping")

    def on_mount(self) -> None:
        self.set_interval(DRAIN_INTERVAL, self.drain)
        argv = getattr(self.app, "train_argv", None)
        if argv is not None:
            self.fill_from_argv(argv)
        else:
            self.apply_type("chat")
        if not self.demos:
            self.monitor.set_status(self.demo_missing)
        self.scan_checkpoints()
        if argv is not None and getattr(self.app, "autostart", False):
            self.call_after_refresh(self.action_start)
        else:
            self.prepare_if_needed()

    def on_screen_resume(self) -> None:
        if self.is_mounted:
            self.scan_checkpoints()

    def on_unmount(self) -> None:
        self.stop_flag.set()  # a training thread must end for the process to exit

    # -- the form --------------------------------------------------------------------------------

    def apply_type(self, kind: str) -> None:
        """Chat SFT / Tool SFT: the demo config and dataset of that type, and a fresh run name."""
        demo = self.demos.get(kind)
        if demo is None:
            return
        self.query_one("#config", Input).value = str(demo.config)
        self.query_one("#dataset", Input).value = str(demo.dataset)
        self.new_output(demo)

    def new_output(self, demo: Demo | None = None) -> None:
        if demo is None:
            demo = self.demos.get(str(self.query_one("#type", Select).value))
        if demo is None:
            return
        self._auto_output = unique_run_name(demo.run_prefix, self.root)
        self.query_one("#output", Input).value = self._auto_output

    def fill_from_argv(self, argv: list[str]) -> None:
        """The form as `mypt train ARGV` describes it (flags with no field go to Flags)."""
        from mypt_tui.jobs import argv_from_args

        try:
            args = parse_train_argv(argv)
        except UsageError as e:
            self.notify(str(e), severity="error", title="mypt train")
            return
        self.query_one("#config", Input).value = args.config or ""
        self.query_one("#dataset", Input).value = args.dataset or ""
        self.query_one("#output", Input).value = args.output or ""
        if args.model:
            self._pinned_init = [(args.model, args.model)]
            self.set_init_options(value=args.model)
        rest = argv_from_args(args)
        for name in ("model", "init", "config", "dataset", "output", "checkpoints"):
            if f"--{name}" in rest:
                i = rest.index(f"--{name}")
                del rest[i:i + 2]
        self.query_one("#flags", Input).value = " ".join(rest)

    def fill_for_resume(self, run_dir: Path) -> None:
        """The form set to continue a run from its latest checkpoint (with its own config and data)."""
        for key, value in (("config", ""), ("dataset", ""), ("output", str(run_dir)), ("flags", "--resume")):
            self.query_one(f"#{key}", Input).value = value
        self._auto_output = ""
        self.notify(f"ready to resume {run_dir.name}: Start (ctrl+r) trains it here, Run detached (ctrl+g) "
                    "in the background", title="Resume")

    def form_argv(self) -> list[str]:
        """The form as `mypt train` flags (UsageError for a bad Flags field)."""
        value = {k: self.query_one(f"#{k}", Input).value.strip() for k in ("config", "dataset", "output")}
        init = self.query_one("#init", Select).value
        flags = split_flags(self.query_one("#flags", Input).value)
        argv = []
        if "--resume" not in flags:  # a resumed run continues its own weights
            argv += ["--init", SCRATCH] if init in (SCRATCH, Select.NULL) else ["--model", str(init)]
        for key, v in value.items():
            if v:
                argv += [f"--{key}", v]
        argv += ["--checkpoints", str(self.root), *flags]
        parse_train_argv(argv)  # the same checks as the command line, before anything starts
        return argv

    def set_init_options(self, found: list[tuple[str, str]] | None = None, value: str | None = None) -> None:
        """The Init choices: scratch, the checkpoints found, and one given by `mypt train --model`."""
        select = self.query_one("#init", Select)
        current = value or select.value
        if found is not None:
            self._found_init = found
        extra = [o for o in self._pinned_init if o[1] not in {v for _, v in self._found_init}]
        options = [("scratch (random weights)", SCRATCH), *self._found_init, *extra]
        with self.prevent(Select.Changed):
            select.set_options(options)
            if current in [v for _, v in options]:
                select.value = current

    @on(Select.Changed, "#type")
    def type_changed(self, event: Select.Changed) -> None:
        if event.value == self._type:  # the Select announces its first value too
            return
        self._type = str(event.value)
        self.apply_type(self._type)
        self.prepare_if_needed()

    @on(Input.Changed, "#output")
    def output_edited(self, event: Input.Changed) -> None:
        if event.value != self._auto_output:
            self._auto_output = ""

    @on(Input.Changed, "#dataset")
    def dataset_edited(self, event: Input.Changed) -> None:
        self.update_buttons()

    @work(thread=True, exclusive=True, exit_on_error=False, group="scan")
    def scan_checkpoints(self) -> None:
        from engine.checkpoint import list_checkpoints

        found = list_checkpoints(self.root)
        names = [(f"{c.name}" + (f" (step {c.step})" if c.step is not None else ""), c.name) for c in found]
        self.post_message(self.Checkpoints(names))

    def on_train_screen_checkpoints(self, message: Checkpoints) -> None:
        self.set_init_options(message.names)

    # -- preparing the demo set ------------------------------------------------------------------

    def demo_to_prepare(self) -> Demo | None:
        demo = find_demo(self.query_one("#dataset", Input).value.strip() or "-")
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
                self.post_message(self.Status(f"preparing {demo.input}: {done:,} episodes"
                                              + (f" of {total:,}" if total else "")))

        worker = get_current_worker()  # the app closing cancels it: prepare stops, writing nothing
        made = ensure_prepared(demo, progress, should_stop=lambda: worker.is_cancelled)
        self.post_message(self.Status(f"{demo.dataset} is ready" if made else ""))
        return made

    def on_train_screen_status(self, message: Status) -> None:
        self.query_one("#train-state", Static).update(message.text)

    # -- start, detach, stop ---------------------------------------------------------------------

    def _argv_or_notify(self) -> list[str] | None:
        if self.state != "idle":
            self.notify("a run is already going: stop it first", severity="warning")
            return None
        try:
            return self.form_argv()
        except UsageError as e:
            self.app.push_screen(ErrorDialog("mypt train flags", str(e)))
            return None

    def action_start(self) -> None:
        argv = self._argv_or_notify()
        if argv is None:
            return
        self.start_in_app(argv)

    def start_in_app(self, argv: list[str]) -> None:
        from mypt_tui.jobs import run_dir_of

        self.run_dir = run_dir_of(argv)
        self.stop_flag.clear()
        self.buffer = EventBuffer()
        self.source = self.buffer
        self.detached = None
        self.monitor.reset(f"starting {self.run_dir} ...")
        self.set_state("training")
        self.train(argv, find_demo(self.query_one("#dataset", Input).value.strip() or "-"))
        if self._auto_output:
            self.new_output()

    @work(thread=True, exclusive=True, exit_on_error=False, group="train", description="training")
    def train(self, argv: list[str], demo: Demo | None):
        """The training thread: prepare the demo set if needed, then the engine's run_training."""
        from engine.events import EVENTS_FILE, read_events
        from engine.trainer import run_training
        from mypt_tui.jobs import build_train_job

        worker = get_current_worker()

        def should_stop() -> bool:  # the Stop button, or the app closing (which cancels workers)
            return self.stop_flag.is_set() or worker.is_cancelled

        if demo is not None and not is_prepared(demo):
            self.post_message(self.Status(f"preparing {demo.dataset} first ..."))
            ensure_prepared(demo, should_stop=should_stop)
            self.post_message(self.Status(""))
        job = build_train_job(argv)
        if job.resume and (Path(job.output) / EVENTS_FILE).exists():
            self.buffer.extend(list(read_events(Path(job.output) / EVENTS_FILE)))  # the curve so far
        return run_training(job, sinks=[self.buffer], should_stop=should_stop)

    def action_detach(self) -> None:
        argv = self._argv_or_notify()
        if argv is None:
            return
        demo = self.demo_to_prepare()
        if demo is not None:  # the headless command does not prepare: do it here first
            self._detach_after_prepare = argv
            self.prepare_demo(demo)
            return
        self.start_detached(argv)

    def start_detached(self, argv: list[str]) -> None:
        try:
            self.detached = start_detached(argv)
        except (UsageError, OSError) as e:
            self.app.push_screen(ErrorDialog("Could not start the detached run", str(e)))
            return
        self.run_dir = self.detached.run_dir
        self.source = follower(self.run_dir)
        self.monitor.reset(f"started detached: pid {self.detached.pid}, output in {self.detached.log} "
                           "(it keeps going if the app or the connection goes away)")
        self.set_state("detached")
        if self._auto_output:
            self.new_output()

    def action_stop(self) -> None:
        if self.state == "training":
            self.stop_flag.set()
            self.set_state("stopping")
            self.monitor.set_status("stopping after this step (a final checkpoint is saved) ...")
        elif self.state == "detached" and self.detached is not None:
            why = interrupt(self.detached.pid)
            if why:
                self.notify(why, severity="warning")
            else:
                self.monitor.set_status(f"asked pid {self.detached.pid} to stop (a final checkpoint is saved) ...")

    def request_stop(self) -> None:
        """Stop an in-app run (the app's quit does this before leaving)."""
        self.stop_flag.set()
        if self.state == "training":
            self.set_state("stopping")

    @on(Button.Pressed, "#start")
    def start_pressed(self) -> None:
        self.action_start()

    @on(Button.Pressed, "#detach")
    def detach_pressed(self) -> None:
        self.action_detach()

    @on(Button.Pressed, "#stop")
    def stop_pressed(self) -> None:
        self.action_stop()

    def set_state(self, state: str) -> None:
        self.state = state
        self.update_buttons()
        text = {"training": "training in this app", "stopping": "stopping ...",
                "detached": f"detached run (pid {self.detached.pid})" if self.detached else ""}.get(state, "")
        self.query_one("#train-state", Static).update(text)
        if state == "idle":
            self.app.run_badge = ""

    def update_buttons(self) -> None:
        busy = self.state != "idle"
        self.query_one("#start", Button).disabled = busy
        self.query_one("#detach", Button).disabled = busy
        self.query_one("#stop", Button).disabled = self.state not in ("training", "detached")

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        if action in ("start", "detach"):
            return self.state == "idle" or None
        if action == "stop":
            return self.state in ("training", "detached") or None
        return True

    # -- the event stream ------------------------------------------------------------------------

    def drain(self) -> None:
        """Render what arrived since the last call (a timer calls this a few times a second)."""
        if self.source is None:
            return
        fed = self.monitor.feed(self.source.poll())
        for w in fed.warnings:
            self.notify(w, severity="warning", title="Training warning", timeout=8)
        for e in fed.errors:
            self.notify(e, severity="error", title="Training failed", timeout=12)
        if fed.started is not None and self.detached is not None and fed.started.pid == self.detached.pid:
            self.detached.adopt_log()
        if self.monitor.step is not None and self.state != "idle":
            s = self.monitor.step
            self.app.run_badge = f"{self.run_dir.name if self.run_dir else ''} {s.step}/{self.monitor.max_iters}"
        if self.state == "detached" and self.detached is not None:
            code = self.detached.exit_code()
            if code is not None:
                self.detached_ended(code)
        if fed.done is not None and self.state == "detached":
            self.refresh_runs()

    def detached_ended(self, code: int) -> None:
        detached = self.detached
        self.monitor.feed(self.source.poll() if self.source else [])
        self.set_state("idle")
        self.source = None
        if code not in (0, 130):
            self.app.push_screen(ErrorDialog(
                f"The detached run ended with exit code {code}",
                (detached.log_tail() or "(no output)") + f"\n\n(full output: {detached.log})"))
        self.refresh_runs()

    def refresh_runs(self) -> None:
        self.scan_checkpoints()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The one place a finished or failed worker of this screen is handled (never a crash)."""
        worker = event.worker
        if event.state not in (WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED):
            return
        if worker.group == "prepare":
            if event.state == WorkerState.ERROR and type(worker.error).__name__ == "PrepareCancelled":
                return
            if event.state == WorkerState.ERROR:
                self.query_one("#train-state", Static).update("")
                self.app.push_screen(ErrorDialog("Preparing the demo dataset failed", describe_error(worker.error)))
                self._detach_after_prepare = None
            elif self._detach_after_prepare is not None:
                argv, self._detach_after_prepare = self._detach_after_prepare, None
                self.start_detached(argv)
        elif worker.group == "train":
            self.drain()
            self.source = None
            run_dir = self.run_dir
            self.set_state("idle")
            self.scan_checkpoints()
            if event.state == WorkerState.ERROR:
                message = describe_error(worker.error) + resume_hint(run_dir)
                self.monitor.show_warning(describe_error(worker.error), error=True)
                self.app.push_screen(ErrorDialog("Training failed", message))
            elif event.state == WorkerState.SUCCESS and worker.result is not None:
                result = worker.result
                word = {"completed": "Training complete", "stopped": "Training stopped"}.get(
                    result.reason, "Training failed")
                self.notify(f"{word} at step {result.step}: {result.final_checkpoint}", title=run_dir.name
                            if run_dir else "mypt", severity="information" if result.reason != "failed" else "error")
            self.app.training_ended()
        elif worker.group == "scan" and event.state == WorkerState.ERROR:
            self.notify(describe_error(worker.error), severity="warning", title="Listing checkpoints")
