"""Numbers as mypt writes them everywhere: durations, losses, times ago."""

from __future__ import annotations

import time


def fmt_duration(seconds: float) -> str:
    """1h05m, 3m07s, 42s."""
    seconds = max(int(seconds), 0)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


def loss(x: float | None) -> str:
    """A loss with four decimals, "-" when there is none."""
    return "-" if x is None else f"{x:.4f}"


def ago(ts: float, now: float | None = None) -> str:
    """How long ago a timestamp was: 5s ago, 3m ago, 2h ago, else the date."""
    if not ts:
        return "-"
    s = max(int((time.time() if now is None else now) - ts), 0)
    if s < 60:
        return f"{s}s ago"
    if s < 3600:
        return f"{s // 60}m ago"
    if s < 86400:
        return f"{s // 3600}h ago"
    return time.strftime("%Y-%m-%d", time.localtime(ts))
