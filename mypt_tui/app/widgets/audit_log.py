"""The episode-audit pane: which episodes trained at which step and epoch, following as they train.

Each entry is a step (or a note) made into lines for the pane's width; a new width makes them
again, so a line never runs off the pane. The pane follows new lines while it is scrolled to the
end, and keeps following across a resize or a layout change (Textual's own Log stops following
when a change of size leaves it short of the end); scrolling up stops it, scrolling back to the
end resumes it. Clicking a step asks for its full record (`StepPicked`).
"""

from __future__ import annotations

from collections import deque
from typing import Iterable

from textual import events
from textual.message import Message
from textual.widgets import Log

from mypt_tui.present.audit_lines import AuditEntry

MAX_LINES = 5000


class AuditLog(Log):
    """A Log of audit entries, written in batches (one `add` per UI update)."""

    DEFAULT_CSS = """
    AuditLog { min-height: 4; }
    """

    class StepPicked(Message):
        """The user clicked a step's line: show its full record."""

        def __init__(self, step: int) -> None:
            super().__init__()
            self.step = step

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:  # noqa: A002
        super().__init__(max_lines=MAX_LINES, id=id, classes=classes, auto_scroll=False)
        self.entries: deque[AuditEntry] = deque(maxlen=MAX_LINES)
        self.line_steps: deque[int | None] = deque(maxlen=MAX_LINES)  # the step of each line shown
        self.following = True
        self._made_for = 0  # the width the lines shown were made for

    def on_mount(self) -> None:
        self.watch(self, "scroll_y", self._scrolled, init=False)

    def _scrolled(self, y: float) -> None:
        self.following = y >= self.max_scroll_y - 0.5

    @property
    def text_width(self) -> int:
        return max(self.scrollable_content_region.width, 20) if self.size.width else 80

    @property
    def last_step(self) -> int | None:
        return next((e.step for e in reversed(self.entries) if e.step is not None), None)

    def add(self, entries: Iterable[AuditEntry]) -> None:
        entries = list(entries)
        if not entries:
            return
        self.entries.extend(entries)
        self._write(entries)

    def clear_entries(self) -> None:
        self.entries.clear()
        self.line_steps.clear()
        self.clear()
        self.following = True

    def _write(self, entries: list[AuditEntry]) -> None:
        width = self._made_for = self.text_width
        lines: list[str] = []
        for entry in entries:
            made = entry.lines(width)
            lines += made
            self.line_steps.extend([entry.step] * len(made))
        self.write_lines(lines, scroll_end=False)
        if self.following:
            self.scroll_end(animate=False, immediate=True, x_axis=False)

    def on_resize(self) -> None:
        if self.text_width != self._made_for and self.entries:
            following = self.following
            self.clear()
            self.line_steps.clear()
            self.following = following
            self._write(list(self.entries))
        elif self.following:
            self.scroll_end(animate=False, immediate=True, x_axis=False)

    def step_at(self, y: int) -> int | None:
        """The step of the line at row `y` of the pane (None for a note or past the end)."""
        row = y + round(self.scroll_y)
        return self.line_steps[row] if 0 <= row < len(self.line_steps) else None

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        step = self.step_at(offset.y) if offset is not None else None
        if step is not None:
            self.post_message(self.StepPicked(step))
