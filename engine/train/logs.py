"""MyPT's training log (`log_file`): one JSON object a line, appended, as MyPT's trainer writes it
(`training_start`, `eval`, `phase_switch`, `gold_checkpoint`, `training_complete`), made from the
run's events. It is written in addition to the run's own events.jsonl, never instead of it.

Paths are relative to the current folder, as MyPT resolves them (it opens the path as given from
where train.py runs); its folder is made if need be. The file is appended to, so a resumed run
continues the same log.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from ..config import TrainConfig
from ..events import CheckpointSaved, Done, Eval, Event, PhaseStart, RunError, RunStart, Step
from .job import TrainError


def check_log_files(cfg: TrainConfig) -> None:
    """Make log_file's and terminal_log_file's folders and open them once for appending, so a path
    that cannot be written stops the run before it starts (TrainError naming the key)."""
    for key in ("log_file", "terminal_log_file"):
        path = getattr(cfg, key)
        if not path:
            continue
        try:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            with open(path, "a", encoding="utf-8"):
                pass
        except OSError as e:
            where = cfg.origins.get(key)
            raise TrainError(f"{key} = {path!r}" + (f" ({where})" if where else "")
                             + f" cannot be written: {e.strerror or e}") from None


def _now() -> str:
    return datetime.now().isoformat()


class MyptLogSink:
    """Events -> MyPT's JSONL log lines at `path` (appended and flushed line by line)."""

    def __init__(self, path: str | Path, cfg: TrainConfig) -> None:
        self.path = Path(path)
        self.cfg = cfg
        self._fh = open(self.path, "a", encoding="utf-8")
        self.started: RunStart | None = None
        self.phase = cfg.curriculum["phases"][0]["name"] if cfg.curriculum else "default"
        self.lr = 0.0
        self.tokens = 0

    def __call__(self, ev: Event) -> None:
        line = self._line(ev)
        if line is not None:
            try:
                self._fh.write(json.dumps(line, ensure_ascii=False) + "\n")
                self._fh.flush()
            except OSError as e:  # name the file, as the events sink does
                raise OSError(e.errno, e.strerror, str(self.path)) from e

    def _line(self, ev: Event) -> dict[str, Any] | None:
        if isinstance(ev, Step):
            self.lr, self.tokens = ev.lr, self.tokens + ev.tokens
            return None
        if isinstance(ev, RunStart):
            self.started = ev
            return self._start(ev)
        base = {"iter": ev.step, "timestamp": _now()}
        if isinstance(ev, Eval):
            return {"event": "eval", **base, **self._progress(ev), "lr": self.lr, "phase": self.phase,
                    "val_loss": ev.val_loss, "train_loss": ev.train_loss,
                    "val_masked_token_acc": ev.val_accuracy, "val_masked_token_count": ev.val_tokens}
        if isinstance(ev, PhaseStart):
            self.phase = ev.name
            return {"event": "phase_switch", **base, **self._progress(ev), "new_phase": ev.name,
                    "dataset_dir": ev.dataset}
        if isinstance(ev, CheckpointSaved) and ev.kind == "best":
            return {"event": "gold_checkpoint", **base, "strategy": "val_loss", "val_loss": ev.val_loss,
                    "path": ev.path}
        if isinstance(ev, Done):
            steps = ev.step - (self.started.step if self.started else 0)
            return {"event": "training_complete", "timestamp": _now(), "reason": ev.reason,
                    "total_elapsed_s": round(ev.elapsed, 1), "total_elapsed_h": round(ev.elapsed / 3600, 2),
                    "total_steps": steps, "total_tokens": self.tokens,
                    "steps_per_sec": round(steps / ev.elapsed, 3) if ev.elapsed > 0 else 0,
                    "tokens_per_sec": round(self.tokens / ev.elapsed) if ev.elapsed > 0 else 0,
                    "best_val_loss": ev.best_val_loss, "final_checkpoint": ev.final_checkpoint}
        if isinstance(ev, RunError):
            return {"event": "training_error", **base, "message": ev.message}
        return None

    def _progress(self, ev: Event) -> dict[str, Any]:
        start = self.started.step if self.started else 0
        elapsed = ev.time - self.started.time if self.started else 0.0
        return {"elapsed_s": round(elapsed, 1), "tokens_processed": self.tokens,
                "progress_pct": round(100 * (ev.step - start) / max(1, self.cfg.max_iters - start), 2)}

    def _start(self, ev: RunStart) -> dict[str, Any]:
        cfg, m = self.cfg, ev.model
        return {"event": "training_start", "timestamp": _now(), "name": cfg.name, "description": cfg.description,
                "resumed": ev.resumed, "config": {
                    "max_iters": cfg.max_iters, "start_step": ev.step, "learning_rate": cfg.learning_rate,
                    "warmup_iters": cfg.warmup_iters, "grad_clip": cfg.grad_clip,
                    "grad_accum_steps": cfg.gradient_accumulation_steps, "batch_size": cfg.batch_size,
                    "block_size": cfg.block_size,
                    "tokens_per_step": cfg.batch_size * cfg.gradient_accumulation_steps * cfg.block_size,
                    "eval_interval": cfg.eval_interval, "eval_iters": cfg.eval_iters, "precision": cfg.precision,
                    "run_dir": ev.run_dir, "init": ev.init},
                "model": {"total_params": m.get("params"), **{k: m.get(k) for k in (
                    "n_layer", "n_head", "n_embd", "pos_encoding", "mlp_type", "norm_type")}}}

    def close(self) -> None:
        self._fh.close()
