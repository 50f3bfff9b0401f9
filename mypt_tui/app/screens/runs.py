"""The Runs screen: every run under checkpoints/ with its status and last metrics; open one to see
its curves and audit replayed from its files, and follow it live while it trains, whichever
process writes it (this app, another app, or a headless / detached `mypt train --no-ui`)."""

from __future__ import annotations

import os
from collections import deque
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Button, DataTable, Footer, Static
from textual.worker import Worker, WorkerState

from engine.events import EventFollower
from engine.runs import RunInfo, RunScanner
from mypt_tui.app.messages import ResumeRun
from mypt_tui.app.widgets.audit_log import MAX_LINES
from mypt_tui.app.widgets.dialogs import ErrorDialog
from mypt_tui.app.widgets.nav import NAV_BINDINGS, NavBar
from mypt_tui.app.widgets.run_monitor import MONITOR_BINDINGS, MonitorKeys, RunMonitor
from mypt_tui.present.audit_lines import AuditEntry, audit_entry
from mypt_tui.present.errors import describe_error
from mypt_tui.present.fit import elide_middle
from mypt_tui.present.run_rows import COLUMNS, cells
from mypt_tui.services.events import follower
from mypt_tui.services.processes import interrupt

SCAN_INTERVAL = 2.0  # seconds between rescans of the runs folder (while this screen shows)
OTHER_COLUMNS_WIDTH = 60  # the columns after the run's name, with their padding
MIN_NAME_WIDTH = 20  # a longer run name is elided in the middle (its start and its timestamp stay)
FOLLOW_INTERVAL = 0.5  # seconds between polls of the opened run's events.jsonl
STATUS_STYLE = {"running": "bold green", "completed": "cyan", "stopped": "yellow", "failed": "bold red",
                "interrupted": "bold yellow", "new": "dim"}


def status_note(info: RunInfo) -> str:
    """What a run's status means for the user, and what they can do next."""
    if info.status == "running":
        where = "this app" if info.pid == os.getpid() else f"process {info.pid}"
        return f"{info.name}: running in {where}; following it live"
    if info.status == "interrupted":
        return (f"{info.name}: interrupted (its process ended without finishing; nothing already checkpointed "
                f"is lost). Continue it with Resume, or: mypt train --resume --output {info.path}")
    if info.status == "failed":
        return f"{info.name}: failed: {info.message}"
    return f"{info.name}: {info.status} at step {info.step}"


class RunsScreen(MonitorKeys, Screen):
    DEFAULT_CSS = """
    RunsScreen #runs-table { height: 40%; min-height: 5; }
    RunsScreen #runs-actions { height: 1; padding: 0 1; }
    RunsScreen #runs-actions Button { margin-right: 1; min-width: 8; width: auto; }
    RunsScreen #runs-empty { width: 1fr; color: $text-muted; }
    RunsScreen RunMonitor { padding: 0 1; }
    """

    BINDINGS = [
        *NAV_BINDINGS,
        Binding("o", "open", "Open"),
        Binding("ctrl+t", "stop", "Stop run"),
        Binding("ctrl+r", "resume", "Resume"),
        Binding("ctrl+o", "eval", "Eval"),
        *MONITOR_BINDINGS,
    ]

    class Scanned(Message):
        def __init__(self, runs: list[RunInfo]) -> None:
            super().__init__()
            self.runs = runs

    class Loaded(Message):
        """A run's history, read in a worker: events so far, the audit tail, and the follower."""

        def __init__(self, path: Path, source: EventFollower, events: list, audit: list[AuditEntry],
                     last: int) -> None:
            super().__init__()
            self.path, self.source, self.events, self.audit, self.last = path, source, events, audit, last

    def __init__(self) -> None:
        super().__init__()
        self.scanner = RunScanner()
        self.runs: dict[str, RunInfo] = {}
        self.shown: dict[str, list] = {}  # each row's cells as the table shows them
        self.opened: Path | None = None
        self.source: EventFollower | None = None
        self._scan_timer: Timer | None = None

    def compose(self) -> ComposeResult:
        yield NavBar("runs")
        table = DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)
        for col in COLUMNS:
            table.add_column(col.title() if col != "run" else "Run", key=col)
        yield table
        with Horizontal(id="runs-actions"):
            yield Button("Open", id="open", compact=True)
            yield Button("Stop", id="stop", variant="error", compact=True)
            yield Button("Resume", id="resume", compact=True)
            yield Static("", id="runs-empty")
        yield RunMonitor(id="runs-monitor")
        yield Footer()

    @property
    def root(self) -> Path:
        return Path(getattr(self.app, "checkpoints_root", "checkpoints"))

    @property
    def monitor(self) -> RunMonitor:
        return self.query_one(RunMonitor)

    def on_mount(self) -> None:
        self._scan_timer = self.set_interval(SCAN_INTERVAL, self.scan)
        self.set_interval(FOLLOW_INTERVAL, self.follow)
        self.monitor.set_hint("Select a run above and press Enter (or o): its loss curves and audit are replayed "
                              "from its files, then followed live while it trains.\n\nctrl+r resumes the selected "
                              "run (on the Train screen), ctrl+o evaluates its newest checkpoint, ctrl+t stops it "
                              "while it runs.")
        self.scan()

    def on_screen_suspend(self) -> None:
        if self._scan_timer is not None:
            self._scan_timer.pause()

    def on_screen_resume(self) -> None:
        if self._scan_timer is not None:
            self._scan_timer.resume()
            self.scan()

    # -- the table -------------------------------------------------------------------------------

    @work(thread=True, exclusive=True, exit_on_error=False, group="runs-scan")
    def scan(self) -> None:
        self.post_message(self.Scanned(self.scanner.scan(self.root)))

    def on_runs_screen_scanned(self, message: Scanned) -> None:
        table = self.query_one(DataTable)
        fresh = {str(r.path): r for r in message.runs}
        name_width = max(MIN_NAME_WIDTH, self.size.width - OTHER_COLUMNS_WIDTH)
        for key in [k for k in self.runs if k not in fresh]:
            table.remove_row(key)
            self.shown.pop(key, None)
        for key, info in fresh.items():
            row = [Text(c, style=STATUS_STYLE.get(c, "")) if i == 1 else c for i, c in enumerate(cells(info))]
            row[0] = elide_middle(info.name, name_width)  # the other columns stay on screen
            if self.shown.get(key) == row:
                continue  # unchanged: no repaint
            if key in self.runs:
                for col, value in zip(COLUMNS, row):
                    table.update_cell(key, col, value, update_width=True)  # "running" -> "completed"
            else:
                table.add_row(*row, key=key)
            self.shown[key] = row
        self.runs = fresh
        self.query_one("#runs-empty", Static).update(
            "" if fresh else f"no runs in {self.root}/ yet: start one on the Train screen (F1)")
        if self.opened is not None and str(self.opened) in fresh and self.source is not None:
            info = fresh[str(self.opened)]
            if info.status != "running" and self.monitor.status.startswith(f"{info.name}: running"):
                self.monitor.set_status(status_note(info))

    def selected(self) -> RunInfo | None:
        table = self.query_one(DataTable)
        if not self.runs or table.cursor_row < 0 or table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value
        return self.runs.get(key)

    @on(DataTable.RowSelected)
    def row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    # -- opening and following a run -------------------------------------------------------------

    def action_open(self) -> None:
        info = self.selected()
        if info is not None:
            self.open_run(info)

    def open_run(self, info: RunInfo) -> None:
        self.opened = info.path
        self.source = None
        self.monitor.reset(f"{info.name}: loading ...", run_dir=info.path)
        self.load(info.path)

    @work(thread=True, exclusive=True, exit_on_error=False, group="runs-load")
    def load(self, path: Path) -> None:
        from engine.audit import AUDIT_FILE, read_audit

        lines: deque[AuditEntry] = deque(maxlen=MAX_LINES)
        last = -1
        if (path / AUDIT_FILE).exists():
            for rec in read_audit(path / AUDIT_FILE):
                entry = audit_entry(rec)
                if entry is not None:
                    lines.append(entry)
                if rec.get("kind") == "step":
                    last = max(last, rec["step"])
        source = follower(path)
        events = source.poll()  # after the audit: steps past its end still get their lines
        self.post_message(self.Loaded(path, source, events, list(lines), last))

    def on_runs_screen_loaded(self, message: Loaded) -> None:
        if message.path != self.opened:
            return
        self.monitor.load_audit(message.audit, message.last)
        self.monitor.feed(message.events, replay=True)
        self.source = message.source
        info = self.runs.get(str(message.path))
        if info is not None:
            self.monitor.set_status(status_note(info))

    def follow(self) -> None:
        """Poll the opened run's events.jsonl (a timer): a live run's new steps appear as they come."""
        if self.source is None:
            return
        fed = self.monitor.feed(self.source.poll())
        if self.app.screen is self:
            for w in fed.warnings:
                self.notify(w, severity="warning", title=f"{self.opened.name if self.opened else ''}: warning")
            for e in fed.errors:
                self.notify(e, severity="error", title=f"{self.opened.name if self.opened else ''}: failed")
        if fed.done is not None:
            self.scan()

    # -- stop and resume -------------------------------------------------------------------------

    def action_stop(self) -> None:
        info = self.selected()
        if info is None or info.status != "running":
            self.notify("select a running run to stop it", severity="warning")
            return
        if info.pid == os.getpid():
            self.app.training.stop()  # type: ignore[attr-defined]
            self.notify(f"stopping {info.name} after this step (a final checkpoint is saved)")
            return
        why = interrupt(info.pid)
        if why:
            self.notify(why, severity="warning")
        else:
            self.notify(f"asked {info.name} (pid {info.pid}) to stop; it saves a final checkpoint first")

    def action_resume(self) -> None:
        info = self.selected()
        if info is None:
            return
        if info.status == "running":
            self.notify(f"{info.name} is still running", severity="warning")
            return
        self.post_message(ResumeRun(info.path))

    def action_eval(self) -> None:
        """Score the selected run's newest checkpoint on its dataset's val split."""
        from mypt_tui.app.screens.eval import open_eval

        info = self.selected()
        if info is not None:
            open_eval(self, info.path, self.app.checkpoints_root)

    @on(Button.Pressed, "#open")
    def open_pressed(self) -> None:
        self.action_open()

    @on(Button.Pressed, "#stop")
    def stop_pressed(self) -> None:
        self.action_stop()

    @on(Button.Pressed, "#resume")
    def resume_pressed(self) -> None:
        self.action_resume()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A failed read never closes the app: a run that cannot be read is a dialog; a failed
        rescan (every couple of seconds) only a notification."""
        if event.state != WorkerState.ERROR:
            return
        if event.worker.group == "runs-load":
            self.monitor.set_status("")
            self.app.push_screen(ErrorDialog("Reading the run failed", describe_error(event.worker.error)))
        else:
            self.notify(describe_error(event.worker.error), severity="warning", title="Listing runs")
