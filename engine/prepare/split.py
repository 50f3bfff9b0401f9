"""Between the passes, from pass 1's columns: the duplicate ids (found by 64-bit id hash, then
confirmed by reading the real ids back), and the seeded train/val split of the valid episodes."""

from __future__ import annotations

import math

import numpy as np

from ..episode import SkipReason
from ..errors import shown
from .options import PrepareOptions
from .skips import SkipTally
from .work import WorkSplit

TRAIN, VAL, DROPPED = 0, 1, -1  # what assign_splits makes of each written episode


def mark_duplicates(work: WorkSplit, skips: SkipTally, strict: bool) -> None:
    """Mark the later episodes whose id repeats an earlier one as skipped. Only episodes whose
    64-bit id hash repeats are read back and compared by their real id."""
    ids = work.column("id_hash")
    work.duplicate = np.zeros(len(ids), dtype=bool)
    if len(ids) < 2:
        return
    order = np.argsort(ids, kind="stable")
    same = np.flatnonzero(ids[order][1:] == ids[order][:-1])
    if len(same) == 0:
        return
    candidates = np.unique(np.concatenate((order[same], order[same + 1])))
    del order, same
    seqs = work.column("seq")
    first_at: dict[str, str] = {}
    for k, rec in work.records(candidates):  # in input order
        first = first_at.setdefault(rec["id"], rec["source"])
        if first == rec["source"]:
            continue
        if strict and skips.first_seq is not None and seqs[k] > skips.first_seq:
            continue  # --strict stopped at an earlier invalid episode
        work.duplicate[k] = True
        skips.add(int(seqs[k]), SkipReason.DUPLICATE_ID,
                  f"{rec['source']}: duplicate episode_id {shown(rec['id'], 60)} (first at {first})")
        fc = work.file_of(k)
        fc.episodes -= 1
        fc.skipped += 1


def assign_splits(works: list[WorkSplit], opts: PrepareOptions) -> tuple[list[np.ndarray], list[str]]:
    """Per input, per written episode: TRAIN, VAL or DROPPED (a duplicate); and the warnings.
    With a val_file each input is one split; otherwise a seeded draw from the input."""
    if opts.val_file is not None:
        return [np.where(work.duplicate, DROPPED, code).astype(np.int8) for code, work in zip((TRAIN, VAL), works)], []
    if opts.val_only:
        return [np.where(works[0].duplicate, DROPPED, VAL).astype(np.int8)], []
    duplicate = works[0].duplicate
    keep = np.flatnonzero(~duplicate)
    n = len(keep)
    n_val = n_val_episodes(n, opts.val_split)
    warnings = []
    if opts.val_split > 0 and n_val == 0:
        warnings.append(f"no val episodes: {n} valid episode(s) is too few to split off {opts.val_split:g}")
    target = np.full(len(duplicate), DROPPED, dtype=np.int8)
    target[keep] = TRAIN
    perm = np.random.default_rng(opts.seed).permutation(n)
    target[keep[perm[:n_val]]] = VAL
    return [target], warnings


def n_val_episodes(n: int, val_split: float) -> int:
    """Val size of a random split: round(n * val_split), at least 1 when a split is asked for
    and n >= 2, and never all of them (train keeps at least one episode)."""
    if val_split <= 0 or n < 2:
        return 0
    return min(max(1, math.floor(n * val_split + 0.5)), n - 1)
