"""The data a run trains on: a dataset opened for a job, which of its episodes are eligible, and the
pre-flight counts. A curriculum opens one of these per phase (engine.train.curriculum).

A token stream (pretraining, engine.stream) trains as windows of block_size + 1 tokens, offered in
the shape of episodes: every position is trained, and the sampler, batching, eval and audit work on
windows as they do on episodes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import TrainConfig
from ..dataset import EpisodeSplit, open_dataset
from ..sampler import Eligibility, eligible_episodes, pack_rows
from ..stream import StreamDataset, WindowSplit, is_stream, open_stream
from ..tokenizer import Tokenizer
from .job import TrainError


@dataclass(frozen=True)
class Data:
    """The dataset as the run reads it: its tokenizer, its splits, and the id that fills padding."""

    tok: Tokenizer
    train: EpisodeSplit | WindowSplit
    val: EpisodeSplit | WindowSplit | None
    pad_id: int
    path: Path = Path(".")
    packs: bool = False  # the dataset asks for packing (MyPT's packed rows, or mypt prepare --enable_packing)
    pack_block_size: int | None = None  # the row length it was prepared for, when it says
    stream: StreamDataset | None = None  # a token stream (pretraining): train and val are its windows

    @property
    def kind(self) -> str:
        """"pretrain" for a token stream, "sft" for episodes."""
        return "pretrain" if self.stream is not None else "sft"

    def windowed(self, block_size: int) -> "Data":
        """A token stream cut into windows of this block_size (episodes are left as they are)."""
        if self.stream is None:
            return self
        train = self.stream.windows("train", block_size)
        if train is None:
            raise TrainError(f"{self.path}: the stream holds {self.stream.tokens('train')} training tokens, "
                             f"fewer than one window of block_size {block_size} + 1")
        return Data(self.tok, train, self.stream.windows("val", block_size), self.pad_id, self.path, stream=self.stream)


def census(split: EpisodeSplit, cfg: TrainConfig) -> Eligibility:
    """Eligibility of a split's episodes under the config's min-tokens and over-long policy."""
    limit = cfg.block_size + 1

    def head_supervised(i: int) -> int:
        _, mask = split.episode(i)
        return int(np.count_nonzero(mask[1:limit]))

    return eligible_episodes(split.lengths, split.supervised if cfg.use_loss_mask else split.lengths - 1,
                             head_supervised, block_size=cfg.block_size, min_tokens=cfg.episode_min_tokens,
                             overlong=cfg.overlong)


def preflight(split: EpisodeSplit, elig: Eligibility, cfg: TrainConfig, world: int) -> dict:
    """What the run will do, before step 0: counts, supervised tokens, and epochs of max_iters."""
    idx = elig.eligible
    sup = int(split.supervised[idx].sum()) if cfg.use_loss_mask else int((split.lengths[idx] - 1).sum())
    tokens = int(split.lengths[idx].sum())
    if len(idx) and cfg.batching == "pack":
        rows, _ = pack_rows(idx, 0, split.lengths, cfg.block_size, len(idx))
        per_row = len(idx) / len(rows)
    else:
        per_row = 1.0
    per_step = per_row * cfg.batch_size * cfg.gradient_accumulation_steps * world
    steps_per_epoch = len(idx) / per_step if per_step else float("inf")
    report = {
        "episodes": elig.total, "eligible": len(idx), "skipped_short": elig.too_short,
        "overlong": elig.overlong, "overlong_dropped": elig.overlong_dropped,
        "overlong_truncated": elig.overlong_truncated, "no_supervised": elig.no_supervised,
        "tokens": tokens, "supervised_tokens": sup, "episodes_per_step": round(per_step, 2),
        "steps_per_epoch": round(steps_per_epoch, 2),
        "epochs": round(cfg.max_iters / steps_per_epoch, 2) if steps_per_epoch else 0.0,
    }
    if split.weighted and cfg.use_loss_mask:
        report["weighted_supervised"] = round(float(split.weight_sums[idx].sum()), 2)
    return report


def open_data(path: Path, cfg: TrainConfig, tokenization: str | None = None, role: str = "--dataset") -> Data:
    """Open a dataset to train on; refuse one that does not fit the job (`role` names it in errors)."""
    if is_stream(path):
        return _open_stream(path, cfg, tokenization, role)
    try:
        ds = open_dataset(path)
    except (FileNotFoundError, ValueError) as e:
        raise TrainError(f"{role}: {e}" if role != "--dataset" else str(e)) from None
    tok = ds.tokenizer()
    if tokenization and tokenization != tok.kind:
        raise TrainError(f"--tokenization {tokenization} but the dataset {path} was prepared "
                         f"with {tok.kind}; prepare it again or drop the flag")
    train = ds.split("train")
    if train is None:
        what = "is an eval-only dataset (prepared with --val_only)" if ds.metadata.get("val_only") \
            else "has no training episodes"
        raise TrainError(f"{role} {path} {what}")
    pad_id = cfg.pad_token_id if cfg.pad_token_id is not None else tok.pad_id
    block = ds.metadata.get("pack_block_size")
    packs = train.packed or ds.metadata.get("batching") == "pack"
    return Data(tok, train, ds.split("val"), pad_id, Path(path), packs, block if isinstance(block, int) else None)


def _open_stream(path: Path, cfg: TrainConfig, tokenization: str | None, role: str) -> Data:
    try:
        ds = open_stream(path)
    except ValueError as e:
        raise TrainError(f"{role}: {e}" if role != "--dataset" else str(e)) from None
    tok = ds.tokenizer()
    if tokenization and tokenization != tok.kind:
        raise TrainError(f"--tokenization {tokenization} but the token stream {path} was prepared with {tok.kind}")
    pad_id = cfg.pad_token_id if cfg.pad_token_id is not None else tok.pad_id
    placeholder = Data(tok, None, None, pad_id, Path(path), stream=ds)  # type: ignore[arg-type]
    return placeholder.windowed(cfg.block_size)


def eligible(data: Data, cfg: TrainConfig) -> Eligibility:
    """The train episodes under the config the run trains with (its block_size may be the checkpoint's)."""
    elig = census(data.train, cfg)
    if len(elig.eligible) == 0:
        raise TrainError(f"no episode of {data.path} has a supervised token to train on "
                         f"({elig.total} episodes: {elig.too_short} shorter than episode_min_tokens, "
                         f"{elig.overlong_dropped} over-long dropped, {elig.no_supervised} with nothing supervised)")
    return elig
