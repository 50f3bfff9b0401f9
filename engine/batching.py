"""Rows of episode indices -> tensors the model trains on.

Both modes produce fixed-shape (rows, block_size) tensors with inputs ids[:-1] and targets
ids[1:] per episode; the loss mask is the episode's mask shifted the same way (mask[1:]).
`pad`: MyPT's shape, one episode per row, padded with the pad id (mask 0), plain causal attention.
`pack`: several whole episodes per row with segment ids (attention stays inside an episode) and
positions restarting at 0 for each, so an episode's logits are the same packed or alone
(`reset_positions=False`: positions count across the row, MyPT's segment_position_reset = false).
A split with loss weights (--weighted_mask) gives each trained target its weight as well.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch


class EpisodeSource(Protocol):
    def episode(self, i: int) -> tuple[np.ndarray, np.ndarray]: ...


@dataclass
class Batch:
    x: torch.Tensor  # (B, T) int64 inputs
    y: torch.Tensor  # (B, T) int64 targets
    mask: torch.Tensor  # (B, T) bool: the targets that are trained
    segment_ids: torch.Tensor | None  # (B, T) int64, pack mode only
    position_ids: torch.Tensor | None  # (B, T) int64, pack mode only
    tokens: int  # real (non-padding) input positions
    supervised: int  # trained targets
    weight: torch.Tensor | None = None  # (B, T) float32 loss weight of each target, weighted splits only
    weight_sum: float = 0.0  # the weights of the trained targets summed (supervised when unweighted)

    def to(self, device: torch.device | str) -> "Batch":
        move = (lambda t: None if t is None else t.to(device, non_blocking=True))
        return Batch(move(self.x), move(self.y), move(self.mask), move(self.segment_ids),
                     move(self.position_ids), self.tokens, self.supervised, move(self.weight), self.weight_sum)


def collate(rows: list[list[int]], source: EpisodeSource, *, block_size: int, batching: str, pad_id: int,
            use_loss_mask: bool = True, reset_positions: bool = True) -> Batch:
    """Build a batch; an over-long episode keeps its head (block_size + 1 tokens)."""
    n = max(len(rows), 1)
    x = np.full((n, block_size), pad_id, dtype=np.int64)
    y = np.full((n, block_size), pad_id, dtype=np.int64)
    m = np.zeros((n, block_size), dtype=bool)
    w = np.zeros((n, block_size), dtype=np.float32) if use_loss_mask and getattr(source, "weighted", False) else None
    seg = np.zeros((n, block_size), dtype=np.int64) if batching == "pack" else None
    pos = np.zeros((n, block_size), dtype=np.int64) if batching == "pack" else None
    tokens = 0
    for r, row in enumerate(rows):
        at = 0
        for k, i in enumerate(row, 1):
            ids, mask = source.episode(i)
            ids, mask = ids[:block_size + 1], mask[:block_size + 1]
            span = len(ids) - 1
            if at + span > block_size:
                raise ValueError(f"row {r} overflows block_size {block_size} (a packing bug)")
            x[r, at:at + span] = ids[:-1]
            y[r, at:at + span] = ids[1:]
            m[r, at:at + span] = mask[1:] != 0 if use_loss_mask else True
            if w is not None:
                w[r, at:at + span] = source.weights_of(i)[1:block_size + 1]
            if seg is not None:
                seg[r, at:at + span] = k
                pos[r, at:at + span] = np.arange(span) + (0 if reset_positions else at)
            at += span
        tokens += at
    t = torch.from_numpy
    supervised = int(m.sum())
    return Batch(t(x), t(y), t(m), None if seg is None else t(seg), None if pos is None else t(pos),
                 tokens, supervised, None if w is None else t(w),
                 supervised if w is None else float(w[m].sum(dtype=np.float64)))
