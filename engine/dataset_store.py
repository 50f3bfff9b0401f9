"""The files of one split, as MyPT's prepare scripts may write them, read without loading them.

A split is one or more parts: the split folder itself, or its `shard_00000/`, `shard_00001/`, ...
folders (MyPT's `--tokens_per_shard`), in order. Each part has tokens.bin, mask.bin and
episodes.idx (start, length local to the part), and may have

    segment_ids.bin     uint8 per token (MyPT's `--enable_packing`): each index entry is a packed row;
                        id 0 is padding, 1, 2, ... the episodes packed into the row
    mask_weighted.bin   float32 per token (MyPT's `--weighted_mask`): the loss weight of each token

The parts' tokens are seen as one sequence (part k's token i is token base_k + i), memory-mapped.
A packed row is read as the episodes in it, each run of one segment id: the same episodes as
unpacked, so they train with attention inside each episode and positions restarting, like any
other episode in `batching = "pack"` (the padding, and MyPT's target across two episodes, go).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .dataset_writer import INDEX_DTYPE, MASK_DTYPE, TOKEN_DTYPE, WEIGHT_DTYPE, WEIGHTS_FILE
from .errors import MyptError
from .layout import INDEX_FILE, MASK_FILE, METADATA_FILE, TOKENS_FILE

SEGMENTS_FILE = "segment_ids.bin"
SEGMENT_DTYPE = np.dtype("u1")
_SCAN_TOKENS = 1 << 22  # segment scans read about this many tokens at a time


class DatasetError(MyptError, ValueError):
    """A folder that is not a prepared dataset, or one whose files are missing or inconsistent."""


@dataclass(frozen=True)
class Part:
    """One folder of a split: where its files are and where its tokens start in the split."""

    folder: Path
    base: int  # the split-wide offset of its first token
    size: int  # its tokens


class Concat:
    """Memory-mapped arrays of the parts seen as one array, for slices (`a[i:j]`) and `len`."""

    def __init__(self, arrays: list[np.ndarray]) -> None:
        self.arrays = arrays
        self.bases = [0]
        for a in arrays:
            self.bases.append(self.bases[-1] + len(a))
        self.dtype = arrays[0].dtype

    def __len__(self) -> int:
        return self.bases[-1]

    def __getitem__(self, key: slice) -> np.ndarray:
        if not isinstance(key, slice) or key.step not in (None, 1):
            raise TypeError("a split's tokens are read by contiguous slices")
        start, stop, _ = key.indices(len(self))
        pieces = []
        k = bisect.bisect_right(self.bases, start) - 1
        while start < stop and k < len(self.arrays):
            lo, hi = start - self.bases[k], min(stop, self.bases[k + 1]) - self.bases[k]
            pieces.append(self.arrays[k][lo:hi])
            start = self.bases[k + 1]
            k += 1
        if len(pieces) == 1:
            return pieces[0]
        return np.concatenate(pieces) if pieces else np.zeros(0, self.dtype)


@dataclass
class SplitFiles:
    """What a split folder holds, checked: its parts, the episodes as (start, length) in the
    split-wide token sequence, and the memory maps."""

    parts: list[Part]
    index: np.ndarray  # (N, 2) uint64 episodes (the on-disk dtype)
    rows: int  # index entries on disk (packed rows count once each)
    tokens: np.ndarray | Concat
    mask: np.ndarray | Concat
    weights: np.ndarray | Concat | None
    packed: bool


def part_folders(folder: Path) -> list[Path]:
    """The split folder, or its shard_* folders in order."""
    shards = sorted(p for p in folder.glob("shard_*") if p.is_dir())
    if shards and (folder / INDEX_FILE).exists():
        raise DatasetError(f"{folder}: holds both shard_* folders and its own {INDEX_FILE}: a split is one or "
                           "the other (a damaged or mixed dataset)")
    return shards or [folder]


def open_files(folder: Path, metadata: dict[str, Any], name: str) -> SplitFiles | None:
    """Check and map a split's parts; None when the split has no episodes."""
    parts: list[Part] = []
    indexes, tokens, masks, weights, segmented = [], [], [], [], []
    base = rows = 0
    for pf in part_folders(folder):
        opened = _open_part(pf)
        if opened is None:
            continue
        index, tok, msk, wts, seg = opened
        rows += len(index)
        if seg is not None:
            index = _segments(pf, index, len(tok))
        indexes.append(index + np.array([base, 0], dtype=np.int64))
        parts.append(Part(pf, base, len(tok)))
        tokens.append(tok)
        masks.append(msk)
        weights.append(wts)
        segmented.append(seg is not None)
        base += len(tok)
    _check_counts(folder, metadata, name, rows, base)
    if not parts or rows == 0:
        return None
    if any(w is None for w in weights) and any(w is not None for w in weights):
        raise DatasetError(f"{folder}: some parts have {WEIGHTS_FILE} and some do not")

    def one(arrays: list) -> Any:
        return arrays[0] if len(arrays) == 1 else Concat(arrays)

    return SplitFiles(parts, np.concatenate(indexes).astype(INDEX_DTYPE), rows, one(tokens), one(masks),
                      None if weights[0] is None else one(weights), any(segmented))


def _check_counts(folder: Path, metadata: dict[str, Any], name: str, rows: int, n_tokens: int) -> None:
    expected = _count(metadata, f"num_{name}_episodes")
    if expected is not None and expected != rows:
        if rows == 0 and not (folder / INDEX_FILE).exists():
            raise DatasetError(f"{folder}: missing, but {METADATA_FILE} says {expected} {name} episodes")
        raise DatasetError(f"{folder / INDEX_FILE}: {rows} episodes, but {METADATA_FILE} says {expected}")
    want = _count(metadata, f"num_{name}_tokens")
    if rows and want is not None and want != n_tokens:
        raise DatasetError(f"{folder / TOKENS_FILE}: {n_tokens} tokens, but {METADATA_FILE} says {want}")


def _count(metadata: dict[str, Any], key: str) -> int | None:
    """A count from dataset_metadata.json: None when absent, DatasetError when not a count."""
    value = metadata.get(key)
    if value is not None and (type(value) is not int or value < 0):
        raise DatasetError(f"{METADATA_FILE}: {key} must be a whole number, got {value!r}")
    return value


def _open_part(folder: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, Any, Any] | None:
    """A part's index (local starts) and memory maps, its file sizes checked; None when empty."""
    paths = {f: folder / f for f in (TOKENS_FILE, MASK_FILE, INDEX_FILE)}
    if not folder.is_dir() or not paths[INDEX_FILE].exists() and not paths[TOKENS_FILE].exists():
        return None
    for p in paths.values():
        if not p.exists():
            raise DatasetError(f"{p}: missing")
        if not p.is_file():
            raise DatasetError(f"{p}: not a file")
    sizes = {f: p.stat().st_size for f, p in paths.items()}
    if sizes[INDEX_FILE] % 16:
        raise DatasetError(f"{paths[INDEX_FILE]}: {sizes[INDEX_FILE]} bytes is not a whole number of "
                           "16-byte (start, length) pairs (truncated?)")
    if sizes[TOKENS_FILE] % 4:
        raise DatasetError(f"{paths[TOKENS_FILE]}: {sizes[TOKENS_FILE]} bytes is not a whole number of "
                           "uint32 tokens (truncated?)")
    n_tokens = sizes[TOKENS_FILE] // 4
    if sizes[MASK_FILE] != n_tokens:
        raise DatasetError(f"{paths[MASK_FILE]}: {sizes[MASK_FILE]} mask bytes for {n_tokens} tokens in "
                           f"{TOKENS_FILE} (they must be aligned, one byte per token)")
    for extra, width in ((SEGMENTS_FILE, 1), (WEIGHTS_FILE, 4)):
        p = folder / extra
        if p.exists() and p.stat().st_size != width * n_tokens:
            raise DatasetError(f"{p}: {p.stat().st_size} bytes for {n_tokens} tokens in {TOKENS_FILE} "
                               f"({width} byte(s) a token)")
    if sizes[INDEX_FILE] == 0:
        return None
    index = np.fromfile(paths[INDEX_FILE], dtype=INDEX_DTYPE).reshape(-1, 2).astype(np.int64)
    _check_index(paths[INDEX_FILE], index, n_tokens)

    def mapped(name: str, dtype: np.dtype) -> Any:
        return np.memmap(folder / name, dtype=dtype, mode="r") if (folder / name).exists() else None

    return (index, np.memmap(paths[TOKENS_FILE], dtype=TOKEN_DTYPE, mode="r"),
            np.memmap(paths[MASK_FILE], dtype=MASK_DTYPE, mode="r"), mapped(WEIGHTS_FILE, WEIGHT_DTYPE),
            mapped(SEGMENTS_FILE, SEGMENT_DTYPE))


def _check_index(path: Path, index: np.ndarray, n_tokens: int) -> None:
    starts, lengths = index[:, 0], index[:, 1]
    bad = np.flatnonzero(lengths == 0)
    if len(bad):
        raise DatasetError(f"{path}: episode {bad[0]} has length 0")
    past = np.flatnonzero((starts < 0) | (starts > n_tokens) | (lengths > n_tokens - np.minimum(starts, n_tokens)))
    if len(past):
        i = int(past[0])
        raise DatasetError(f"{path}: episode {i} (start {starts[i]}, length {lengths[i]}) points "
                           f"past the end of {TOKENS_FILE} ({n_tokens} tokens)")


def _segments(folder: Path, rows: np.ndarray, n_tokens: int) -> np.ndarray:
    """The episodes in packed rows: each run of one non-zero segment id within a row, read a
    bounded number of tokens at a time. The rows must follow each other in the file."""
    ends = np.cumsum(rows[:, 1])
    if rows[0, 0] != 0 or (len(rows) > 1 and (rows[1:, 0] != ends[:-1]).any()):
        raise DatasetError(f"{folder / INDEX_FILE}: packed rows (with {SEGMENTS_FILE}) must follow each other "
                           "in tokens.bin, as MyPT's prepare writes them")
    out: list[np.ndarray] = []
    with open(folder / SEGMENTS_FILE, "rb") as fh:
        lo = 0
        while lo < len(rows):
            hi = max(lo + 1, int(np.searchsorted(ends, int(rows[lo, 0]) + _SCAN_TOKENS, side="right")))
            base, top = int(rows[lo, 0]), int(ends[hi - 1])
            fh.seek(base)
            seg = np.fromfile(fh, dtype=SEGMENT_DTYPE, count=top - base)
            change = np.ones(len(seg), dtype=bool)
            change[1:] = seg[1:] != seg[:-1]
            change[rows[lo:hi, 0] - base] = True  # a row starts a new run even with the same id
            starts = np.flatnonzero(change)
            lengths = np.diff(np.append(starts, len(seg)))
            keep = seg[starts] != 0
            out.append(np.stack([starts[keep] + base, lengths[keep]], axis=1))
            lo = hi
    found = np.concatenate(out) if out else np.zeros((0, 2), dtype=np.int64)
    if len(found) == 0:
        raise DatasetError(f"{folder / SEGMENTS_FILE}: every token is padding (segment id 0): no episodes")
    return found.astype(np.int64)
