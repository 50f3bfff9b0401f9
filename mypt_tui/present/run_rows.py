"""The runs table, as `mypt runs` prints it and the Runs screen shows it; the last two columns are
the best checkpoint's exact match and format compliance over the probed turns of its eval."""

from __future__ import annotations

from engine.runs import RunInfo
from mypt_tui.present.eval_table import pct
from mypt_tui.present.numbers import ago, loss

COLUMNS = ("run", "status", "step", "loss", "val", "best val", "updated", "best exact", "best format")


def cells(info: RunInfo, now: float | None = None) -> tuple[str, ...]:
    """One row of the runs table (the order of COLUMNS)."""
    step = f"{info.step}/{info.max_iters}" if info.max_iters else str(info.step)
    return (info.name, info.status, step, loss(info.loss), loss(info.val_loss), loss(info.best_val_loss),
            ago(info.updated, now), pct(info.best_exact_match), pct(info.best_format))
