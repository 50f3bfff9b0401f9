"""The episode-audit log: which episodes trained at which step and epoch, scrolling as they train."""

from __future__ import annotations

from typing import Any, Iterable

from textual.widgets import Log

MAX_LINES = 5000


def step_line(step: int, epoch: int, episodes: Iterable[str]) -> str:
    return f"{step:>6} e{epoch:<3} " + " ".join(episodes)


def audit_record_line(rec: dict[str, Any]) -> str | None:
    """One audit.jsonl record as a log line (None for records the log does not show)."""
    kind = rec.get("kind")
    if kind == "step":
        ids = [e for mb in rec.get("micro_batches", []) for e in mb.get("episodes", [])]
        rank = f" r{rec['rank']}" if rec.get("rank") else ""
        return step_line(rec["step"], rec.get("epoch", 0), ids) + rank
    if kind == "epoch_end":
        dropped = rec.get("dropped") or []
        return f"{'':>6} epoch {rec.get('epoch')} done" + (f", dropped {' '.join(dropped)}" if dropped else "")
    if kind == "resume":
        return f"{'':>6} resumed at step {rec['step']}"
    if kind == "corrupt":
        return f"{'':>6} (line {rec.get('line')} of audit.jsonl is not valid JSON)"
    return None


class AuditLog(Log):
    """A Log of audit lines, written in batches (one `write_lines` per UI update)."""

    DEFAULT_CSS = """
    AuditLog { min-height: 4; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:  # noqa: A002
        super().__init__(max_lines=MAX_LINES, id=id, classes=classes, auto_scroll=True)
