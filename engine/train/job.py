"""One training-job builder for every door: `mypt train`, the app's Train form and detached runs.

A `TrainRequest` is what a user asks for, in the words of `mypt train`'s flags (a checkpoint
name, a config path, key overrides...). `build_job` checks it and resolves it into a `TrainJob`:
the config loaded and overridden, the run folder under the checkpoints root, and what to
initialise from. Neither argparse nor the app is needed to describe a job.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import TrainConfig, apply_overrides, load_config, resolve_config_path
from ..errors import MyptError
from ..layout import CONFIG_FILE
from ..runs import read_run_file

SCRATCH = "scratch"


class TrainError(MyptError):
    """A run that cannot start or continue, with a message meant for the user."""


@dataclass
class TrainRequest:
    """A run as the user describes it (the flags of `mypt train`, or the Train form)."""

    output: str | None = None  # run folder; a bare name goes under `checkpoints`
    dataset: str | None = None
    input_file: str | None = None  # raw text to pretrain on: the CLI prepares it into `dataset` first
    config: str | None = None
    model: str | None = None  # a checkpoint to continue from
    init_from_model: str | None = None  # MyPT's spelling: a checkpoint's weights only, no optimizer state
    init: str | None = None  # "scratch" (the default without `model`)
    resume: bool = False
    overwrite: bool = False
    tokenization: str | None = None
    checkpoints: str = "checkpoints"
    overrides: dict[str, Any] = field(default_factory=dict)  # config key -> value (typed or text)
    command: list[str] = field(default_factory=lambda: list(sys.argv))


@dataclass
class TrainJob:
    """A checked, resolved run: what `run_training` needs."""

    config: TrainConfig
    dataset: Path
    output: Path
    init: str | None = None  # a checkpoint (name or path) to continue from; None = from scratch
    weights_only: bool = False  # take init's weights only (a MyPT run's AdamW state is not carried over)
    resume: bool = False
    overwrite: bool = False
    tokenization: str | None = None  # when given, must match the dataset's
    checkpoints_root: Path = Path("checkpoints")
    command: list[str] = field(default_factory=lambda: list(sys.argv))


@dataclass
class TrainResult:
    reason: str  # completed, stopped, failed
    step: int
    run_dir: Path
    final_checkpoint: Path | None
    best_val_loss: float | None


def under_root(name: str, root: str | Path) -> Path:
    """A bare name means a folder under the checkpoints root (the guide's WebUI form writes names)."""
    p = Path(name)
    return p if len(p.parts) > 1 or p.is_absolute() or p.exists() else Path(root) / name


def run_dir_of(req: TrainRequest) -> Path:
    """Where the request's run is written (its --output, under the checkpoints root)."""
    if not req.output:
        raise TrainError("--output is required (the run folder, e.g. checkpoints/my_run)")
    return under_root(req.output, req.checkpoints)


def build_job(req: TrainRequest) -> TrainJob:
    """The TrainJob the request describes (raises ConfigError/TrainError with a user message)."""
    output = run_dir_of(req)
    if req.init not in (None, SCRATCH):
        raise TrainError(f"--init takes '{SCRATCH}'; to continue from {req.init!r} use --model {req.init}")
    if req.model and req.init_from_model:
        raise TrainError("--model and --init_from_model both name a checkpoint: give one (--init_from_model "
                         "takes the weights only, --model also a MyPT run's optimizer state)")
    model = req.model or req.init_from_model
    if req.init == SCRATCH and model:
        raise TrainError(f"--init {SCRATCH} and --model contradict each other: choose one")
    if req.resume and req.overwrite:
        raise TrainError("--resume and --overwrite contradict each other: choose one")
    dataset = req.dataset
    if req.input_file and not dataset:
        raise TrainError(f"--input_file {req.input_file} must be prepared first: mypt prepare pretrain --input "
                         f"{req.input_file} --output DIR, then --dataset DIR")
    if req.resume:
        saved = read_run_file(output)
        config_path: Path | None = Path(req.config) if req.config else output / CONFIG_FILE
        dataset = dataset or saved.get("dataset")
    else:
        config_path = resolve_config_path(req.config) if req.config else None
    cfg = load_config(config_path) if config_path else TrainConfig()
    if req.overrides:
        cfg = apply_overrides(cfg, req.overrides)
    dataset = dataset_of(cfg, dataset)
    return TrainJob(config=cfg, dataset=Path(dataset), output=output, init=model,
                    weights_only=req.init_from_model is not None, resume=req.resume,
                    overwrite=req.overwrite, tokenization=req.tokenization,
                    checkpoints_root=Path(req.checkpoints), command=list(req.command))


def dataset_of(cfg: TrainConfig, dataset: str | None) -> str:
    """The dataset a run starts on: --dataset, or a curriculum's first phase (the two must agree)."""
    first = cfg.curriculum["phases"][0]["dataset_dir"] if cfg.curriculum else None
    if first is not None and dataset and Path(dataset).resolve() != Path(first).resolve():
        raise TrainError(f"--dataset {dataset} is not the curriculum's first phase dataset_dir {first} "
                         f"({cfg.origins.get('curriculum', 'the config')}): drop --dataset, or make them agree")
    if not (dataset or first):
        raise TrainError("--dataset is required (a folder written by `mypt prepare`)")
    return dataset or first
