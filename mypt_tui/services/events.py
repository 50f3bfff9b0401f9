"""The app's event sinks and sources: the training thread appends, the UI drains a few times a second.

The trainer calls sinks on its own thread; a sink that touched widgets, or posted one message
per step, would make the UI repaint hundreds of times a second and slow training down. So the
sink only appends to a locked list, and the UI takes the whole batch on a timer and renders it
once (`batch_update`). A run in another process is read the same way, from its events.jsonl.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Protocol

from engine.events import Event, EventFollower
from engine.layout import EVENTS_FILE


class EventSource(Protocol):
    def poll(self) -> list[Event]: ...


class EventBuffer:
    """A thread-safe sink (`buffer(event)`) whose `poll()` returns and clears what arrived."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: list[Event] = []

    def __call__(self, event: Event) -> None:
        with self._lock:
            self._events.append(event)

    def extend(self, events: list[Event]) -> None:
        with self._lock:
            self._events.extend(events)

    def poll(self) -> list[Event]:
        with self._lock:
            out, self._events = self._events, []
        return out


def follower(run_dir: Path) -> EventFollower:
    """A source that tails a run's events.jsonl (from the start: a replay, then live)."""
    return EventFollower(Path(run_dir) / EVENTS_FILE)
