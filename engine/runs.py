"""Run folders: where a run's files live, which checkpoint is the latest, and what state it is in.

A run folder (`checkpoints/<name>/`) holds `run.json` (how it was started), `config.toml` (the
resolved config), `events.jsonl`, `audit.jsonl`, a `step_NNNNNN/` checkpoint per save and `best/`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from .events import EVENTS_FILE, Done, Eval, RunError, RunStart, Step, read_events

RUN_FILE = "run.json"
CONFIG_FILE = "config.toml"
BEST_DIR = "best"


def step_dir(run: Path, step: int) -> Path:
    return Path(run) / f"step_{step:06d}"


def checkpoints_in(run: Path) -> list[tuple[int, Path]]:
    """(step, folder) of every complete step checkpoint in a run, oldest first."""
    out = []
    for p in Path(run).glob("step_*"):
        if p.is_dir() and p.name[5:].isdigit() and (p / "meta.json").exists():
            out.append((int(p.name[5:]), p))
    return sorted(out)


def latest_checkpoint(run: Path, *, resumable: bool = False) -> Path | None:
    """The newest step checkpoint (with `resumable`, the newest that has train_state.pt)."""
    for _, p in reversed(checkpoints_in(run)):
        if not resumable or (p / "train_state.pt").exists():
            return p
    return None


def is_run(path: Path) -> bool:
    return (Path(path) / RUN_FILE).exists() or (Path(path) / EVENTS_FILE).exists()


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class RunInfo:
    name: str
    path: Path
    status: str  # running, completed, stopped, failed, interrupted, new
    step: int = 0
    max_iters: int = 0
    loss: float | None = None
    val_loss: float | None = None
    best_val_loss: float | None = None
    updated: float = 0.0
    pid: int | None = None
    message: str = ""


def run_info(path: Path) -> RunInfo:
    """Status and last metrics of a run, from its events.jsonl alone."""
    path = Path(path)
    info = RunInfo(path.name, path, "new")
    events_path = path / EVENTS_FILE
    if not events_path.exists():
        return info
    info.updated = events_path.stat().st_mtime
    ended = None
    for ev in read_events(events_path):
        if isinstance(ev, RunStart):
            info.max_iters, info.pid, ended = ev.max_iters, ev.pid, None
            info.step = ev.step
        elif isinstance(ev, Step):
            info.step, info.loss = ev.step, ev.loss
        elif isinstance(ev, Eval):
            info.val_loss = ev.val_loss
            if ev.val_loss is not None and (info.best_val_loss is None or ev.val_loss < info.best_val_loss):
                info.best_val_loss = ev.val_loss
        elif isinstance(ev, (Done, RunError)):
            ended = ev
    if isinstance(ended, Done):
        info.status = ended.reason
    elif isinstance(ended, RunError):
        info.status, info.message = "failed", ended.message
    elif pid_alive(info.pid):
        info.status = "running"
    else:
        info.status = "interrupted"
    return info


def list_runs(root: Path = Path("checkpoints")) -> list[RunInfo]:
    """Every run under root, newest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    runs = [run_info(p) for p in root.iterdir() if p.is_dir() and is_run(p)]
    return sorted(runs, key=lambda r: r.updated, reverse=True)


def read_run_file(run: Path) -> dict:
    try:
        return json.loads((Path(run) / RUN_FILE).read_text())
    except FileNotFoundError:
        return {}
