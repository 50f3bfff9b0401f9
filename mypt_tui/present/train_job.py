"""What the Train form would start, in words: the command line that runs it headless, the first
screen's description of the job (what a newcomer sees before any run), and the progress of
preparing its demo set on first use."""

from __future__ import annotations

import shlex
from pathlib import Path

from engine.train.job import SCRATCH, TrainError, TrainRequest, run_dir_of
from mypt_tui.flags import train_argv

DEMO_TIME = "about 5 min on a laptop CPU"  # bench/RESULTS.md: the demo chat run, 2 cores, 307 s


def command_line(req: TrainRequest) -> str:
    """`mypt train --no-ui ...`: the same run, headless (in a shell, under tmux or nohup, on a server)."""
    return shlex.join(["mypt", "train", "--no-ui", *train_argv(req)])


def job_description(req: TrainRequest, demo: bool) -> str:
    """What ctrl+r starts, and what to do next: the first screen, until a run is shown."""
    start = f"ctrl+r  train the demo ({DEMO_TIME})" if demo else "ctrl+r  train it here"
    lines = [("The default job: " if demo else "The form's job: ") + _what(req), "", start,
             "ctrl+g  the same in the background: it keeps training if you quit or lose the connection",
             "", "Then F3 Chat talks to the newest checkpoint. F2 Runs lists runs, F4 Data prepares your own "
             "gold set, F5 Config edits a config; ctrl+p lists every action."]
    return "\n".join(lines)


def prepare_progress(kind: str, source: Path, done: int, total: int | None) -> str:
    """A first-use prepare's progress: pretraining prose counts documents, a gold set episodes."""
    unit = "documents" if kind == "pretrain" else "episodes"
    return f"preparing {source}: {done:,} {unit}" + (f" of {total:,}" if total else "")


def _what(req: TrainRequest) -> str:
    from engine.config import ConfigError, apply_overrides, load_config

    weights = "from scratch" if req.model is None or req.init == SCRATCH else f"continuing {req.model}"
    if req.resume:
        weights = "resuming its latest checkpoint"
    try:
        cfg = load_config(req.config) if req.config else None
        if cfg is not None and req.overrides:
            cfg = apply_overrides(cfg, req.overrides)
    except (ConfigError, OSError):
        cfg = None
    size = (f"a {cfg.n_layer}-layer, {cfg.n_embd}-wide model (context {cfg.block_size}) trained {weights} for "
            f"{cfg.max_iters:,} steps" if cfg is not None else f"a model trained {weights}")
    try:
        where = str(run_dir_of(req))
    except TrainError:  # no output yet: the start check will say so
        where = "(no output name yet)"
    return (f"{size} on {req.dataset or '(no dataset yet)'}, with the config {req.config or '(none yet)'}; "
            f"the run goes to {Path(where)}.")
