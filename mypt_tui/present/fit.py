"""Text that fits a width: a line that would wrap onto a hidden row, or be cut at its end, loses
what matters most (a checkpoint's step, an episode count). These shorten from the middle, or drop
the least useful parts, and say so with an ellipsis."""

from __future__ import annotations

from typing import Iterable

ELLIPSIS = "…"


def elide_middle(text: str, width: int) -> str:
    """`text` in at most `width` characters, its middle replaced by an ellipsis (the start says
    which run, the end which step)."""
    if len(text) <= width:
        return text
    if width <= 1:
        return text[:max(width, 0)]
    head = width // 2
    tail = width - 1 - head
    return text[:head] + ELLIPSIS + (text[-tail:] if tail else "")


def fit_parts(first: str, rest: Iterable[str], width: int, sep: str = " · ", min_first: int = 16) -> str:
    """`first · rest[0] · rest[1] ...` in `width` characters: `first` is shortened in the middle
    (down to `min_first`) to keep every part, else trailing parts are dropped one by one."""
    parts = list(rest)
    while parts and len(sep.join([first, *parts])) > width:
        room = width - len(sep) * len(parts) - sum(map(len, parts))
        if room >= min(min_first, len(first)):
            return sep.join([elide_middle(first, room), *parts])
        parts.pop()
    return elide_middle(sep.join([first, *parts]), width)
