"""Rows of episode indices -> tensors the model trains on.

Both modes produce fixed-shape (rows, block_size) tensors with inputs ids[:-1] and targets
ids[1:] per episode; the loss mask is the episode's mask shifted the same way (mask[1:]).
`pad`: MyPT's shape, one episode per row, padded with the pad id (mask 0), plain causal attention.
`pack`: several whole episodes per row with segment ids (attention stays inside an episode) and
positions restarting at 0 for each, so an episode's logits are the same packed or alone
(`reset_positions=False`: positions count across the row, MyPT's segment_position_reset = false).
A split with loss weights (--weighted_mask) gives each trained target its weight as well.

Everything the step needs to know about a batch is computed here, on the host, from numpy:
the flat indices of the supervised positions and their targets (selecting them on the device
by a boolean mask would read the count back: a host sync), the token counts, and the model
FLOPs' inputs (positions computed, attention pairs). `pin()` then `to(device)` copies a batch
to a GPU without blocking the host.
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
    sup_index: torch.Tensor | None = None  # (supervised,) int64: flat positions (row * T + t) of the trained targets
    sup_targets: torch.Tensor | None = None  # (supervised,) int64: their targets
    positions: int = 0  # input positions the model computes (rows x T, padding included)
    attention_pairs: int = 0  # sum over attention spans of span^2 (a row in pad mode, an episode in pack)
    weight: torch.Tensor | None = None  # (B, T) float32 loss weight of each target, weighted splits only
    weight_sum: float = 0.0  # the weights of the trained targets summed (supervised when unweighted)

    def _map(self, fn) -> "Batch":  # noqa: ANN001
        def move(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else fn(t)

        return Batch(move(self.x), move(self.y), move(self.mask), move(self.segment_ids), move(self.position_ids),
                     self.tokens, self.supervised, move(self.sup_index), move(self.sup_targets), self.positions,
                     self.attention_pairs, move(self.weight), self.weight_sum)

    def to(self, device: torch.device | str) -> "Batch":
        return self._map(lambda t: t.to(device, non_blocking=True))

    def pin(self) -> "Batch":
        """The batch in page-locked memory, so that `to(cuda)` is an asynchronous copy."""
        return self._map(lambda t: t.pin_memory())


def collate(rows: list[list[int]], source: EpisodeSource, *, block_size: int, batching: str, pad_id: int,
            use_loss_mask: bool = True, min_rows: int = 1, reset_positions: bool = True) -> Batch:
    """Build a batch; an over-long episode keeps its head (block_size + 1 tokens). `min_rows` pads
    a short batch with empty rows (nothing trained), so that compiled code sees one shape."""
    n = max(len(rows), min_rows, 1)
    x = np.full((n, block_size), pad_id, dtype=np.int64)
    y = np.full((n, block_size), pad_id, dtype=np.int64)
    m = np.zeros((n, block_size), dtype=bool)
    w = np.zeros((n, block_size), dtype=np.float32) if use_loss_mask and getattr(source, "weighted", False) else None
    seg = np.zeros((n, block_size), dtype=np.int64) if batching == "pack" else None
    pos = np.zeros((n, block_size), dtype=np.int64) if batching == "pack" else None
    tokens = 0
    pairs = 0 if batching == "pack" else n * block_size * block_size
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
                pairs += span * span
            at += span
        tokens += at
        if seg is not None:
            pairs += (block_size - at) ** 2  # the padding tail is one more span (segment 0)
    if seg is not None:
        pairs += (n - len(rows)) * block_size * block_size  # empty rows
    sup_index = np.flatnonzero(m)
    t = torch.from_numpy
    return Batch(t(x), t(y), t(m), None if seg is None else t(seg), None if pos is None else t(pos),
                 tokens, len(sup_index), t(sup_index), t(y.reshape(-1)[sup_index]), n * block_size, pairs,
                 None if w is None else t(w), len(sup_index) if w is None else float(w[m].sum(dtype=np.float64)))
