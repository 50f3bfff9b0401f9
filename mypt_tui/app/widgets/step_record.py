"""The full audit record of one step: every micro-batch's episodes with their hashes, read from
the run's audit.jsonl (the authority on what trained) in a worker, as a modal."""

from __future__ import annotations

from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static
from textual.worker import Worker, WorkerState

from mypt_tui.app.widgets.dialogs import DIALOG_CSS
from mypt_tui.present.audit_lines import record_text
from mypt_tui.present.errors import describe_error


def find_record(run_dir: Path, step: int) -> dict | None:
    """The audit record of `step` (the last one written: a resume trains its steps again)."""
    from engine.audit import AUDIT_FILE, read_audit

    found = None
    for rec in read_audit(Path(run_dir) / AUDIT_FILE):
        if rec.get("kind") == "step" and rec.get("step") == step:
            found = rec
    return found


class StepRecord(ModalScreen[None]):
    """Which episodes trained at a step, in full; another step can be typed in."""

    DEFAULT_CSS = DIALOG_CSS.format(cls="StepRecord") + """
    StepRecord > Vertical { width: 100; }
    StepRecord VerticalScroll { max-height: 20; }
    StepRecord #record-step { width: 12; }
    StepRecord Horizontal { align: left middle; }
    """
    BINDINGS = [Binding("escape", "close", "Close")]

    class Read(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    def __init__(self, run_dir: Path, step: int) -> None:
        super().__init__()
        self.run_dir, self.step = Path(run_dir), step

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(f"Audit record of {self.run_dir.name}", classes="dialog-title")
            with VerticalScroll():
                yield Static("reading ...", id="record-text", markup=False)
            with Horizontal():
                yield Label("step ")
                yield Input(str(self.step), id="record-step", compact=True, type="integer")
                yield Button("Close", id="close", compact=True)

    def on_mount(self) -> None:
        self.query_one("#record-step", Input).focus()
        self.read(self.step)

    @work(thread=True, exclusive=True, exit_on_error=False, group="record")
    def read(self, step: int) -> None:
        rec = find_record(self.run_dir, step)
        self.post_message(self.Read(record_text(rec) if rec is not None else f"step {step}: not in the audit"))

    def on_step_record_read(self, message: Read) -> None:
        self.query_one("#record-text", Static).update(message.text)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:
            why = describe_error(event.worker.error)
            self.query_one("#record-text", Static).update(f"cannot read the audit: {why}")

    @on(Input.Submitted, "#record-step")
    def _step_typed(self, event: Input.Submitted) -> None:
        if event.value.strip().isdigit():
            self.read(int(event.value))

    @on(Button.Pressed, "#close")
    def action_close(self) -> None:
        self.dismiss(None)
