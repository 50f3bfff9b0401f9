"""The runs table, as `mypt runs` prints it and the Runs screen shows it."""

from __future__ import annotations

from engine.runs import RunInfo
from mypt_tui.present.numbers import ago, loss

COLUMNS = ("run", "status", "step", "loss", "val", "best val", "updated")


def cells(info: RunInfo, now: float | None = None) -> tuple[str, ...]:
    """One row of the runs table (the order of COLUMNS)."""
    step = f"{info.step}/{info.max_iters}" if info.max_iters else str(info.step)
    return (info.name, info.status, step, loss(info.loss), loss(info.val_loss), loss(info.best_val_loss),
            ago(info.updated, now))
