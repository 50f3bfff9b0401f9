"""The list of runs under a checkpoints folder, as `mypt runs` prints it and the Runs screen shows it.

The Runs screen rescans every couple of seconds, and a long run's events.jsonl holds a line per
step: RunScanner reads a file again only when it changed, and otherwise only re-checks whether
a "running" run's process is still alive.
"""

from __future__ import annotations

import time
from pathlib import Path

from engine.events import EVENTS_FILE
from engine.runs import RunInfo, is_run, pid_alive, run_info

COLUMNS = ("run", "status", "step", "loss", "val", "best val", "updated")


def ago(ts: float, now: float | None = None) -> str:
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


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:.4f}"


def cells(info: RunInfo, now: float | None = None) -> tuple[str, ...]:
    """One row of the runs table (the order of COLUMNS)."""
    step = f"{info.step}/{info.max_iters}" if info.max_iters else str(info.step)
    return (info.name, info.status, step, _num(info.loss), _num(info.val_loss), _num(info.best_val_loss),
            ago(info.updated, now))


class RunScanner:
    """list_runs with a cache keyed by each events.jsonl's size and modification time."""

    def __init__(self) -> None:
        self._cache: dict[Path, tuple[tuple[int, int], RunInfo]] = {}

    def scan(self, root: Path) -> list[RunInfo]:
        root = Path(root)
        if not root.is_dir():
            return []
        out = []
        seen = set()
        for path in root.iterdir():
            if not path.is_dir() or path.name.startswith(".") or not is_run(path):
                continue
            seen.add(path)
            try:
                st = (path / EVENTS_FILE).stat()
                key = (st.st_mtime_ns, st.st_size)
            except FileNotFoundError:
                key = (0, 0)
            cached = self._cache.get(path)
            if cached is not None and cached[0] == key:
                info = cached[1]
                if info.status == "running" and not pid_alive(info.pid):
                    info.status = "interrupted"
            else:
                info = run_info(path)
                self._cache[path] = (key, info)
            out.append(info)
        for gone in set(self._cache) - seen:
            del self._cache[gone]
        return sorted(out, key=lambda r: r.updated, reverse=True)
