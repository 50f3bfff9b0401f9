"""Pass 2: copy each work split into the dataset's train/ and val/, keeping input order within
each split, a bounded block at a time. It reads with plain file reads, not memory maps: mapped
pages would count as the job's memory."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

import numpy as np

from .. import dataset as dsf
from .split import TRAIN, VAL
from .weights import LossWeights
from .work import WorkSplit

_COPY_TOKENS = 1 << 20  # pass 2 copies about this many tokens at a time
_COPY_WINDOW = 1 << 14  # ... reading the work index this many episodes at a time


@dataclass
class Written:
    """The dataset's two splits as written (their counts), and the content hashes in each."""

    train: dsf.SplitWriter
    val: dsf.SplitWriter
    train_content: np.ndarray  # uint64 per train episode: first 64 bits of its content sha256
    val_content: np.ndarray


def write_splits(works: list[WorkSplit], targets: list[np.ndarray], dataset: Path,
                 check_stop: Callable[[], None], weights: LossWeights | None = None) -> Written:
    """train/ and val/ under `dataset`; a split with no episodes gets no folder. With `weights`,
    each split also gets the tokens' loss weights."""
    writers = tuple(dsf.SplitWriter(dataset / name, weighted=weights is not None) for name in ("train", "val"))
    content: dict[int, list[np.ndarray]] = {TRAIN: [], VAL: []}
    for work, target in zip(works, targets):
        _copy_work(work, target, writers, check_stop, weights)
        for code in (TRAIN, VAL):
            content[code].append(work.column("content")[target == code])
    for writer in writers:
        writer.close()
    for name, writer in zip(("train", "val"), writers):
        if writer.episodes == 0:
            shutil.rmtree(dataset / name)
    return Written(*writers, np.concatenate(content[TRAIN]), np.concatenate(content[VAL]))


def _copy_work(work: WorkSplit, target: np.ndarray, writers: tuple[dsf.SplitWriter, dsf.SplitWriter],
               check_stop: Callable[[], None], weights: LossWeights | None) -> None:
    supervised = work.column("supervised")
    with open(work.folder / dsf.INDEX_FILE, "rb") as xf, open(work.folder / dsf.TOKENS_FILE, "rb") as tf, \
            open(work.folder / dsf.MASK_FILE, "rb") as mf, open(work.folder / dsf.EPISODES_FILE, "rb") as lines:
        for lo, hi, lengths in _blocks(xf, len(target)):
            count = int(lengths.sum())
            ids = np.fromfile(tf, dtype=dsf.TOKEN_DTYPE, count=count)
            mask = np.fromfile(mf, dtype=dsf.MASK_DTYPE, count=count)
            tails = [dsf.split_tail(next(lines)) for _ in range(hi - lo)]
            w = weights.of(ids, mask) if weights is not None else None
            _deal(ids, mask, lengths, target[lo:hi], supervised[lo:hi], tails, writers, w)
            check_stop()


def _blocks(index_file: BinaryIO, n: int) -> Iterator[tuple[int, int, np.ndarray]]:
    """(lo, hi, lengths) of consecutive runs of the n work episodes holding about _COPY_TOKENS
    tokens each (at least one episode), reading the index a window at a time."""
    lo = 0
    while lo < n:
        index = np.fromfile(index_file, dtype=dsf.INDEX_DTYPE, count=2 * min(_COPY_WINDOW, n - lo))
        lengths = index[1::2].astype(np.int64)
        ends = np.cumsum(lengths)
        a = 0
        while a < len(lengths):
            b = max(a + 1, int(np.searchsorted(ends, (ends[a - 1] if a else 0) + _COPY_TOKENS, side="right")))
            yield lo + a, lo + b, lengths[a:b]
            a = b
        lo += len(lengths)


def _deal(ids: np.ndarray, mask: np.ndarray, lengths: np.ndarray, target: np.ndarray, supervised: np.ndarray,
          tails: list[bytes], writers: tuple[dsf.SplitWriter, dsf.SplitWriter], weights: np.ndarray | None) -> None:
    """Hand a block's episodes to the split each is assigned to (none for a dropped one)."""
    per_token = np.repeat(target, lengths)
    for code, writer in zip((TRAIN, VAL), writers):
        sel = target == code
        if sel.any():
            tok_sel = per_token == code
            writer.add_block(ids[tok_sel], mask[tok_sel], lengths[sel], int(supervised[sel].sum()),
                             [tl for tl, s in zip(tails, sel) if s], None if weights is None else weights[tok_sel])
