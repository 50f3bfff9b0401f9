"""Messages that cross screens: they bubble to the app, which owns what they change."""

from __future__ import annotations

from pathlib import Path

from textual.message import Message


class Notice(Message):
    """A warning or log record from any thread, to show as a notification."""

    def __init__(self, text: str, severity: str = "warning") -> None:
        super().__init__()
        self.text, self.severity = text, severity


class ResumeRun(Message):
    """Continue a run from its latest checkpoint: the Train form is filled to resume it."""

    def __init__(self, run_dir: Path) -> None:
        super().__init__()
        self.run_dir = run_dir


class Replying(Message):
    """A chat reply started or ended streaming (quitting asks while one streams)."""

    def __init__(self, busy: bool) -> None:
        super().__init__()
        self.busy = busy
