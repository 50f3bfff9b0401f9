"""What a prepare is asked (PrepareOptions), what it answers (PrepareReport, PrepareError) and
the checks made before anything is read or written, so a bad request fails at once and whole."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Union

from ..episode import input_files
from ..errors import MyptError
from ..layout import KINDS, METADATA_FILE, TOKENIZATIONS

DEFAULT_SEED = 1337
DEFAULT_VAL_SPLIT = 0.1

Progress = Callable[[int, Union[int, None]], None]


class PrepareError(MyptError):
    """The job cannot be done (bad options, bad input, an existing output, --strict)."""


class PrepareCancelled(PrepareError):
    """should_stop() asked the job to stop; nothing was written."""


@dataclass
class PrepareOptions:
    input: str | Path
    output: str | Path
    kind: str = "chat"  # chat | tool (tool: the set must contain tool calls; usage is reported)
    tokenization: str = "gpt2"  # gpt2 | char
    val_split: float = DEFAULT_VAL_SPLIT  # ignored with val_file
    val_file: str | Path | None = None  # a separate validation input: no random split
    seed: int = DEFAULT_SEED
    system_prompt: str | None = None  # for episodes that have no system text of their own
    no_system_prompt: bool = False  # drop every system block
    strict: bool = False  # the first invalid episode fails the job
    overwrite: bool = False  # replace an existing prepared dataset at output
    workers: int | None = None  # processes rendering pass 1; None: auto (several for large JSONL inputs)
    val_only: bool = False  # every episode goes to val/: an evaluation dataset (MyPT's --val_only)
    weighted_mask: bool = False  # also write per-token loss weights (MyPT's --weighted_mask)
    enable_packing: bool = False  # train this dataset packed (MyPT's --enable_packing): mypt packs at train time
    pack_block_size: int | None = None  # the packed row length it is meant for (checked against block_size)


@dataclass
class FileCount:
    input: str  # "input" or "val_file"
    file: str  # the file's label in episode sources
    episodes: int = 0  # valid episodes kept
    skipped: int = 0


@dataclass
class PrepareReport:
    output: Path
    kind: str
    tokenization: str
    train_episodes: int
    val_episodes: int
    train_tokens: int
    val_tokens: int
    train_supervised: int
    val_supervised: int
    skipped_total: int
    skipped: list[str]  # "file:line: reason", in input order (the first KEEP_SKIPPED)
    skipped_by_reason: dict[str, int]
    overlap: int  # val episodes whose content (sha256) also occurs in train
    overlap_examples: list[str]  # ids of such val episodes (a few)
    files: list[FileCount]
    warnings: list[str]
    seconds: float
    metadata: dict = field(repr=False)

    @property
    def episodes(self) -> int:
        return self.train_episodes + self.val_episodes

    @property
    def train_mask_ratio(self) -> float:
        return self.train_supervised / self.train_tokens if self.train_tokens else 0.0

    @property
    def val_mask_ratio(self) -> float:
        return self.val_supervised / self.val_tokens if self.val_tokens else 0.0


@dataclass(frozen=True)
class Control:
    """The caller's hold on a running job, handed to every stage that loops: progress goes out
    as `on_progress(done, total_or_None)`, a stop request comes in through `should_stop()`."""

    on_progress: Progress
    should_stop: Callable[[], bool]

    @classmethod
    def of(cls, on_progress: Progress | None, should_stop: Callable[[], bool] | None) -> Control:
        return cls(on_progress or (lambda done, total: None), should_stop or (lambda: False))

    def check_stop(self) -> None:
        if self.should_stop():
            raise PrepareCancelled("prepare cancelled: nothing was written")


def check_options(opts: PrepareOptions) -> None:
    if opts.kind not in KINDS:
        raise PrepareError(f"unknown kind {opts.kind!r}: choose chat or tool")
    if opts.tokenization not in TOKENIZATIONS:
        raise PrepareError(f"unknown tokenization {opts.tokenization!r}: choose gpt2 or char")
    if not (isinstance(opts.val_split, (int, float)) and 0.0 <= opts.val_split < 1.0):
        raise PrepareError(f"--val_split must be at least 0 and below 1, got {opts.val_split}")
    if opts.no_system_prompt and opts.system_prompt is not None:
        raise PrepareError("--system_prompt and --no_system_prompt contradict each other: give one")
    if not isinstance(opts.seed, int) or opts.seed < 0:
        raise PrepareError(f"--seed must be a non-negative integer, got {opts.seed}")
    if opts.workers is not None and opts.workers < 1:
        raise PrepareError(f"--workers must be at least 1, got {opts.workers}")
    if opts.system_prompt is not None and not opts.system_prompt.strip():
        raise PrepareError("--system_prompt is empty")
    if opts.val_only and opts.val_file is not None:
        raise PrepareError("--val_only and --val_file contradict each other: --val_only puts every --input "
                           "episode in val/; give one")
    if opts.pack_block_size is not None and not opts.enable_packing:
        raise PrepareError("--pack_block_size needs --enable_packing")
    if opts.pack_block_size is not None and opts.pack_block_size < 2:
        raise PrepareError(f"--pack_block_size must be at least 2, got {opts.pack_block_size}")


def check_output(out: Path, overwrite: bool) -> None:
    if out.is_symlink():  # replacing it would put a folder in place of the link, not where it points
        raise PrepareError(f"{out} is a symbolic link: give the folder it points to ({out.resolve()})")
    if not out.exists():
        return
    if not out.is_dir():
        raise PrepareError(f"{out} exists and is not a folder")
    if not overwrite:
        raise PrepareError(f"{out} already exists: use --overwrite to replace it")
    if any(out.iterdir()) and not (out / METADATA_FILE).exists():
        raise PrepareError(f"{out} exists and is not a prepared dataset (no {METADATA_FILE}): "
                           "refusing to replace it, even with --overwrite")


def checked_inputs(opts: PrepareOptions, out: Path) -> list[tuple[str, Path]]:
    """(role, path) of each input, "input" then "val_file"; each must exist and must not hold
    the output (a prepared dataset inside an input folder would be read as input next time)."""
    inputs = [("input", Path(opts.input))]
    if opts.val_file is not None:
        inputs.append(("val_file", Path(opts.val_file)))
    for role, path in inputs:
        try:
            input_files(path)
        except FileNotFoundError as e:
            raise PrepareError(str(e)) from None
        if path.is_dir() and out.resolve().is_relative_to(path.resolve()):
            flag = "--input" if role == "input" else "--val_file"
            raise PrepareError(f"the output {out} is inside the {flag} folder {path}: "
                               "it would be read as input next time; choose an output beside it")
    return inputs
