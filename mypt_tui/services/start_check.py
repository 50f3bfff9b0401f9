"""Checking a run before it starts, so that what is wrong names the form field to fix.

Every way the app starts a run (Start, ctrl+r, the palette, Run detached, `mypt train` opening
the app, Resume from Runs) goes through `check_request` first: the job is built with the
engine's own builder (`build_job`: config errors, flag contradictions), and what the trainer
would refuse only after loading (no such dataset, an output that holds a run, nothing to
resume, a run already complete) is found here, read-only, before anything is started.
"""

from __future__ import annotations

from pathlib import Path

from engine.config import ConfigError, resolve_config_path
from engine.layout import STEP_PREFIX
from engine.train.job import TrainError, TrainJob, TrainRequest, build_job


class StartProblem(Exception):
    """Why a run cannot start, and the form field (Type, Init, Config, Dataset, Output, Flags) to fix."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


def check_request(req: TrainRequest, *, prepared_later: bool = False) -> TrainJob:
    """The job the request describes, or StartProblem naming the field at fault. `prepared_later`:
    the dataset is the demo set, which the app prepares before training."""
    if not (req.output or "").strip():
        raise StartProblem("Output", "empty: type a run name (it goes under checkpoints/) or a folder")
    if not req.resume:
        _check_inputs(req, prepared_later)
    try:
        job = build_job(req)
    except ConfigError as e:
        flagged = set(e.by_key) and set(e.by_key) <= set(req.overrides)
        raise StartProblem("Flags" if flagged else "Config", str(e)) from None
    except TrainError as e:
        raise StartProblem(_field_of(str(e)), str(e)) from None
    if not prepared_later:
        _check_dataset(job.dataset)
    _check_output(job)
    return job


def _check_inputs(req: TrainRequest, prepared_later: bool) -> None:
    if not (req.config or "").strip():
        raise StartProblem("Config", "empty: choose a training config (the demo's is configs/demo/chat.toml)")
    if not resolve_config_path(req.config).is_file():
        raise StartProblem("Config", f"{req.config}: no such file")
    if not (req.dataset or "").strip():
        raise StartProblem("Dataset", "empty: choose a prepared dataset folder (Data screen, F4, prepares one)")
    if req.model and req.init in (None, ""):
        from engine.checkpoint import CheckpointError, resolve_checkpoint

        try:
            resolve_checkpoint(req.model, req.checkpoints)
        except (CheckpointError, OSError) as e:
            raise StartProblem("Init", str(e)) from None


def _check_dataset(path: Path) -> None:
    """Episodes (chat, tool) or a token stream (pretraining), opened as the trainer will."""
    from engine.dataset import open_dataset
    from engine.stream import is_stream, open_stream

    try:
        open_stream(path) if is_stream(path) else open_dataset(path)
    except (OSError, ValueError) as e:
        raise StartProblem("Dataset", str(e)) from None


def _check_output(job: TrainJob) -> None:
    """What the trainer checks of the run folder before it starts, and a resume with nothing left to do."""
    from engine.runs import latest_checkpoint

    out = Path(job.output)
    if not job.resume:
        if out.exists() and (not out.is_dir() or any(out.iterdir())) and not job.overwrite:
            raise StartProblem("Output", f"{out} already holds a run: choose another name, or add --resume "
                                         "(continue it) or --overwrite (start it over) to Flags")
        return
    ckpt = latest_checkpoint(out, resumable=True) if out.is_dir() else None
    if ckpt is None:
        raise StartProblem("Output", f"{out} has no checkpoint to resume from: start the run without --resume")
    step = int(ckpt.name[len(STEP_PREFIX):])
    if step >= job.config.max_iters:
        raise StartProblem("Flags", f"{out.name} is already complete at step {step} (max_iters "
                                    f"{job.config.max_iters}): raise --max_iters to continue, e.g. "
                                    f"--resume --max_iters {step * 2}")


def _field_of(message: str) -> str:
    """The field a build_job message is about (it speaks in flags)."""
    for flag, field in (("--output", "Output"), ("--dataset", "Dataset"), ("--init", "Init"), ("--model", "Init"),
                        ("--config", "Config"), ("--tokenization", "Flags")):
        if message.startswith(flag):
            return field
    return "Flags"

