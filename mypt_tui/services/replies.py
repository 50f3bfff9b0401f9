"""Replies as they stream: engine.chat updates folded into segments, several panes interleaved.

The Chat screen's generation worker runs `stream_replies`; it only calls `post` with snapshots
(the worker turns them into messages), so this module knows nothing of the UI.
"""

from __future__ import annotations

import json
import time
from typing import Callable, Iterator

from engine.chat import ContextTrimmed, ReplyDone, TokenText, ToolAnswered, ToolCalled

Segment = tuple[str, str]  # (kind, text)
Post = Callable[[str, tuple[Segment, ...], bool], None]  # (pane, snapshot, final)


class Segments:
    """A reply as it grows: consecutive text of one kind is one segment."""

    def __init__(self) -> None:
        self.items: list[list[str]] = []

    def append(self, kind: str, text: str) -> None:
        if self.items and self.items[-1][0] == kind and kind in ("content", "think", "cite", "toolcall"):
            self.items[-1][1] += text
        else:
            self.items.append([kind, text])

    def add(self, update: object) -> None:
        """Fold one engine.chat update into the reply."""
        if isinstance(update, TokenText):
            self.append(update.part, update.text)
        elif isinstance(update, ToolCalled):
            if update.error is not None:
                self.append("tool-error", f"tool call not run: {update.error}")
            else:
                args = json.dumps(update.arguments, ensure_ascii=False)
                self.append("tool", f"ran {update.name}({args})")
        elif isinstance(update, ToolAnswered):
            self.append("result" if update.ok else "tool-error", f"-> {update.content}")
        elif isinstance(update, ContextTrimmed):
            self.append("note", str(update))
        elif isinstance(update, ReplyDone):
            self.append("stats", update.summary())

    def snapshot(self) -> tuple[Segment, ...]:
        return tuple((k, t) for k, t in self.items)


def stream_replies(streams: dict[str, Iterator], interval: float, post: Post) -> None:
    """Advance every pane's reply a token at a time, in turn. A pane's snapshot is posted at most
    every `interval` seconds while tokens stream, at once for anything else (a tool call, a
    note), and when it ends. A stream that raises ends that pane's reply with the error."""
    replies = {p: Segments() for p in streams}
    posted = {p: 0.0 for p in streams}
    streams = dict(streams)
    while streams:
        for p in list(streams):
            try:
                update = next(streams[p])
            except StopIteration:
                update = None
            except Exception as e:  # noqa: BLE001 - a failed reply ends that pane's turn, not the app
                replies[p].append("error", f"error: {type(e).__name__}: {e}")
                update = None
            if update is not None:
                replies[p].add(update)
            final = update is None or isinstance(update, ReplyDone)
            now = time.monotonic()
            if final or not isinstance(update, TokenText) or now - posted[p] >= interval:
                posted[p] = now
                post(p, replies[p].snapshot(), final)
            if final:
                del streams[p]
