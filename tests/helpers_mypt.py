"""Datasets and configs shaped the way MyPT's scripts write them, made by tests (never MyPT's files)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def write_split(folder: Path, rows: list[tuple[np.ndarray, np.ndarray]], segments: list[np.ndarray] | None = None,
                weights: list[np.ndarray] | None = None) -> None:
    """One MyPT split (or shard) folder: tokens.bin, mask.bin, episodes.idx [segment_ids.bin, mask_weighted.bin]."""
    folder.mkdir(parents=True, exist_ok=True)
    lengths = [len(ids) for ids, _ in rows]
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.uint64)
    np.concatenate([ids for ids, _ in rows]).astype(np.uint32).tofile(folder / "tokens.bin")
    np.concatenate([m for _, m in rows]).astype(np.uint8).tofile(folder / "mask.bin")
    np.stack([starts, np.asarray(lengths, dtype=np.uint64)], axis=1).tofile(folder / "episodes.idx")
    if segments is not None:
        np.concatenate(segments).astype(np.uint8).tofile(folder / "segment_ids.bin")
    if weights is not None:
        np.concatenate(weights).astype(np.float32).tofile(folder / "mask_weighted.bin")


def pack(episodes: list[tuple[np.ndarray, np.ndarray]], block: int, pad_id: int
         ) -> tuple[list[tuple[np.ndarray, np.ndarray]], list[np.ndarray]]:
    """MyPT's greedy packing: whole episodes in order into rows of `block` tokens, each row padded
    with `pad_id` (mask 0, segment 0); segment ids 1, 2, ... per episode in the row."""
    rows, segs = [], []
    ids: list[int] = []
    mask: list[int] = []
    seg: list[int] = []
    for e_ids, e_mask in episodes:
        if ids and len(ids) + len(e_ids) > block:
            rows.append((ids, mask))
            segs.append(seg)
            ids, mask, seg = [], [], []
        k = (seg[-1] if seg else 0) + 1
        ids, mask, seg = ids + list(e_ids), mask + list(e_mask), seg + [k] * len(e_ids)
    rows.append((ids, mask))
    segs.append(seg)
    padded = [(np.array(i + [pad_id] * (block - len(i))), np.array(m + [0] * (block - len(m)))) for i, m in rows]
    return padded, [np.array(s + [0] * (block - len(s))) for s in segs]


def write_dataset(root: Path, tokenizer_state: dict, train: dict, val: dict | None = None, **metadata) -> Path:
    """A MyPT dataset folder: `train`/`val` are write_split keyword arguments (a list of them: shards)."""
    counts = {}
    for name, split in (("train", train), ("val", val)):
        if split is None:
            continue
        shards = split if isinstance(split, list) else [split]
        for k, shard in enumerate(shards):
            write_split(root / name / (f"shard_{k:05d}" if isinstance(split, list) else ""), **shard)
        counts[f"num_{name}_episodes"] = sum(len(s["rows"]) for s in shards)
        counts[f"num_{name}_tokens"] = sum(len(ids) for s in shards for ids, _ in s["rows"])
    (root / "tokenizer_state.json").write_text(json.dumps(tokenizer_state))
    (root / "dataset_metadata.json").write_text(json.dumps({"schema": "episode_indexed_sft_v1", **counts,
                                                            **metadata}))
    return root
