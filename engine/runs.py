"""Run folders: where a run's files live, which checkpoint is the latest, and what state it is in.

RunStatus folds a run's events into its state; RunScanner lists the runs of a folder.
A run folder (`checkpoints/<name>/`) holds `run.json` (how it was started), `config.toml` (the
resolved config), `events.jsonl`, `audit.jsonl`, a `step_NNNNNN/` checkpoint per save and `best/`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from .events import Done, Eval, Event, EventFollower, RunError, RunStart, Step
from .layout import EVENTS_FILE, META_FILE, RUN_FILE, STEP_PREFIX, TRAIN_STATE_FILE
from .report import ReportCard, overall


def step_dir(run: Path, step: int) -> Path:
    return Path(run) / f"{STEP_PREFIX}{step:06d}"


def checkpoints_in(run: Path) -> list[tuple[int, Path]]:
    """(step, folder) of every complete step checkpoint in a run, oldest first."""
    out = []
    for p in Path(run).glob(f"{STEP_PREFIX}*"):
        if p.is_dir() and p.name[len(STEP_PREFIX):].isdigit() and (p / META_FILE).exists():
            out.append((int(p.name[len(STEP_PREFIX):]), p))
    return sorted(out)


def latest_checkpoint(run: Path, *, resumable: bool = False) -> Path | None:
    """The newest step checkpoint (with `resumable`, the newest that has train_state.pt)."""
    for _, p in reversed(checkpoints_in(run)):
        if not resumable or (p / TRAIN_STATE_FILE).exists():
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
class RunStatus:
    """What a run's events say so far, folded one event at a time (`apply`): the one reading of
    a run's state, shared by `mypt runs`, the console renderer and the app's run monitor."""

    max_iters: int = 0
    pid: int | None = None
    step: Step | None = None  # the last step event
    eval: Eval | None = None  # the last eval event
    best_val_loss: float | None = None
    ended: str = ""  # "", or completed / stopped / failed once the run ended
    message: str = ""  # why it failed
    at_step: int = 0  # the last step reached (a resume starts again at its checkpoint's step)

    def apply(self, ev: Event) -> None:
        if isinstance(ev, RunStart):
            self.max_iters, self.pid, self.at_step, self.ended = ev.max_iters, ev.pid, ev.step, ""
            if not ev.resumed:
                self.step = self.eval = self.best_val_loss = None
        elif isinstance(ev, Step):
            self.step, self.at_step = ev, ev.step
        elif isinstance(ev, Eval):
            self.eval = ev
            if ev.val_loss is not None and (self.best_val_loss is None or ev.val_loss < self.best_val_loss):
                self.best_val_loss = ev.val_loss
        elif isinstance(ev, Done):
            self.ended = ev.reason
        elif isinstance(ev, RunError):
            self.ended, self.message = "failed", ev.message

    @property
    def loss(self) -> float | None:
        return self.step.loss if self.step is not None else None

    @property
    def val_loss(self) -> float | None:
        return self.eval.val_loss if self.eval is not None else None

    def state(self) -> str:
        """running, completed, stopped, failed, or interrupted (its process is gone unfinished)."""
        if self.ended:
            return self.ended
        return "running" if pid_alive(self.pid) else "interrupted"


@dataclass
class RunInfo:
    """One row of the runs list."""

    name: str
    path: Path
    status: str  # running, completed, stopped, failed, interrupted, new
    step: int = 0
    max_iters: int = 0
    loss: float | None = None
    val_loss: float | None = None
    best_val_loss: float | None = None  # best/'s val loss (the lowest val loss for runs without gate events)
    updated: float = 0.0
    pid: int | None = None
    message: str = ""
    best_step: int | None = None  # the step best/ holds (the report card's choice)
    best_exact_match: float | None = None  # over every probed turn of that eval
    best_format: float | None = None
    report: dict | None = None  # the report card (engine.report, without the probe replies)


class RunFold:
    """A run's events.jsonl folded into its status and report card, as far as it has been read:
    `update` reads only what was appended since (a live run's file grows by megabytes)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.follower = EventFollower(self.path / EVENTS_FILE)
        self.status, self.card = RunStatus(), ReportCard()

    def update(self) -> None:
        for ev in self.follower.poll():
            self.status.apply(ev)
            self.card.apply(ev)

    def info(self, updated: float) -> RunInfo:
        return _info(self.path, self.status, self.card, updated)


def run_info(path: Path) -> RunInfo:
    """Status, last metrics and report card of a run, from its events.jsonl alone."""
    path = Path(path)
    events_path = path / EVENTS_FILE
    if not events_path.exists():
        return RunInfo(path.name, path, "new")
    updated = events_path.stat().st_mtime
    fold = RunFold(path)
    fold.update()
    return fold.info(updated)


def _info(path: Path, status: RunStatus, card: ReportCard, updated: float) -> RunInfo:
    best = card.best
    scores = overall(best) if best else {"exact_match": None, "format_compliance": None}
    decided = any(r.get("gate") for r in card.records)  # runs before gate events: the lowest val loss
    best_val = (best["val_loss"] if best else None) if decided else status.best_val_loss
    report = card.to_dict()
    for key in ("replies", "replies_step"):
        report.pop(key)
    return RunInfo(path.name, path, status.state(), step=status.at_step, max_iters=status.max_iters,
                   loss=status.loss, val_loss=status.val_loss, best_val_loss=best_val,
                   updated=updated, pid=status.pid, message=status.message,
                   best_step=best["step"] if best else None, best_exact_match=scores["exact_match"],
                   best_format=scores["format_compliance"], report=report)


class RunScanner:
    """The runs under a checkpoints folder, newest first. Rescanning often is cheap: of a run's
    events.jsonl only what was appended since the last scan is read (the whole file again only
    when it was replaced or cut); unchanged, only whether a running run's process is still alive
    is checked."""

    def __init__(self) -> None:
        self._cache: dict[Path, tuple[tuple[int, int, int], RunFold, RunInfo]] = {}

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
            info = self._info(path)
            out.append(info)
        for gone in set(self._cache) - seen:
            del self._cache[gone]
        return sorted(out, key=lambda r: r.updated, reverse=True)

    def _info(self, path: Path) -> RunInfo:
        try:
            st = (path / EVENTS_FILE).stat()
        except FileNotFoundError:
            self._cache.pop(path, None)
            return run_info(path)
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        cached = self._cache.get(path)
        if cached is not None and cached[0] == key:
            info = cached[2]
            if info.status == "running" and not pid_alive(info.pid):
                info.status = "interrupted"
            return info
        fold = cached[1] if cached is not None else None
        if fold is None or key[0] != cached[0][0] or st.st_size < fold.follower.offset:
            fold = RunFold(path)  # new, replaced or cut: read it from the start
        fold.update()
        info = fold.info(st.st_mtime)
        self._cache[path] = (key, fold, info)
        return info


def list_runs(root: Path = Path("checkpoints")) -> list[RunInfo]:
    """Every run under root, newest first."""
    return RunScanner().scan(root)


def read_run_file(run: Path) -> dict:
    try:
        return json.loads((Path(run) / RUN_FILE).read_text())
    except FileNotFoundError:
        return {}
