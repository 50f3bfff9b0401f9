"""Which episodes train at which step: eligibility, seeded epoch order, rows and batches.

Epoch e visits a permutation seeded by (epoch_seed, e) (file order with epoch_shuffle off). A
global batch is `world * batch_size` rows; in `pad` mode a row is one episode, in `pack` mode
whole episodes are packed into a row in epoch order. Batches never straddle epochs; with
drop_last the incomplete tail of an epoch is dropped (and reported). Under DDP each rank takes
a disjoint, contiguous share of every global batch. The sampler's state is three integers, so a
resumed run continues with exactly the next batch.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field

import numpy as np


@dataclass(frozen=True)
class Eligibility:
    """The pre-flight census of a split under one config."""

    eligible: np.ndarray  # episode indices, file order
    total: int
    too_short: int  # fewer than episode_min_tokens tokens
    overlong: int  # longer than block_size + 1 tokens
    overlong_dropped: int
    overlong_truncated: int
    no_supervised: int  # nothing to train on (e.g. nothing supervised in a truncated head)

    def fingerprint(self) -> str:
        """Identifies the eligible set; a resume on another dataset or policy is refused by it."""
        return hashlib.sha256(self.eligible.astype(np.int64).tobytes()).hexdigest()[:16]


def eligible_episodes(lengths: np.ndarray, supervised: np.ndarray, head_supervised, *, block_size: int,
                      min_tokens: int, overlong: str) -> Eligibility:
    """Apply episode_min_tokens and the over-long policy (`drop`, or `truncate` keeping the head).

    `head_supervised(i)` counts the trained targets within an over-long episode's first
    block_size + 1 tokens; it is asked only for over-long episodes under `truncate`.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    supervised = np.asarray(supervised, dtype=np.int64)
    keep = lengths >= max(min_tokens, 2)
    too_short = int((~keep).sum())
    long_mask = keep & (lengths > block_size + 1)
    n_long = int(long_mask.sum())
    no_sup = keep & (supervised == 0)
    truncated = 0
    if overlong == "drop":
        keep &= ~long_mask
    elif overlong == "truncate":
        for i in np.flatnonzero(long_mask & ~no_sup):
            if head_supervised(int(i)) == 0:
                no_sup[i] = True
            else:
                truncated += 1
    else:
        raise ValueError(f"overlong must be 'drop' or 'truncate', not {overlong!r}")
    keep &= ~no_sup
    return Eligibility(
        eligible=np.flatnonzero(keep), total=len(lengths), too_short=too_short, overlong=n_long,
        overlong_dropped=n_long if overlong == "drop" else 0, overlong_truncated=truncated,
        no_supervised=int(no_sup.sum()))


@dataclass
class SamplerState:
    epoch: int = 0
    cursor: int = 0  # next position in this epoch's order
    batches: int = 0  # global batches drawn so far
    drawn: int = 0  # episodes drawn so far (random mode's epoch count)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class SampledBatch:
    """This rank's rows of one global batch, and where in the epoch it came from."""

    rows: list[list[int]]  # episode indices per row
    epoch: int
    position: int  # cursor in the epoch order where the global batch starts
    global_rows: int
    closes_epoch: bool = False  # the epoch ended with this batch
    dropped: list[int] = field(default_factory=list)  # tail dropped when the epoch closed

    @property
    def episodes(self) -> list[int]:
        return [i for row in self.rows for i in row]


def pack_rows(order: np.ndarray, start: int, lengths: np.ndarray, capacity: int,
              n_rows: int) -> tuple[list[list[int]], int]:
    """Fill up to n_rows rows of `capacity` input positions with whole episodes, in order.

    An episode of L tokens takes L - 1 input positions (inputs ids[:-1], targets ids[1:]);
    an over-long one is cut to capacity. Returns the rows and the next position.
    """
    rows: list[list[int]] = []
    row: list[int] = []
    used = 0
    pos = start
    while pos < len(order):
        i = int(order[pos])
        need = min(int(lengths[i]) - 1, capacity)
        if row and used + need > capacity:
            rows.append(row)
            row, used = [], 0
            if len(rows) == n_rows:
                return rows, pos
        row.append(i)
        used += need
        pos += 1
    if row:
        rows.append(row)
    return rows, pos


class EpisodeSampler:
    def __init__(self, eligible: np.ndarray, lengths: np.ndarray, *, batch_size: int, block_size: int,
                 batching: str = "pad", mode: str = "epoch", seed: int = 1337, shuffle: bool = True,
                 drop_last: bool = True, world: int = 1, rank: int = 0,
                 state: SamplerState | None = None) -> None:
        if len(eligible) == 0:
            raise ValueError("no eligible episodes to sample from")
        if batching not in ("pad", "pack") or mode not in ("epoch", "random"):
            raise ValueError(f"unknown batching {batching!r} or sampling mode {mode!r}")
        self.eligible = np.asarray(eligible, dtype=np.int64)
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.batch_size, self.block_size = batch_size, block_size
        self.batching, self.mode = batching, mode
        self.seed, self.shuffle, self.drop_last = seed, shuffle, drop_last
        self.world, self.rank = world, rank
        self.state = state or SamplerState()
        self._order_epoch = -1
        self._order = self.eligible

    @property
    def n_rows(self) -> int:
        return self.batch_size * self.world

    def order(self, epoch: int) -> np.ndarray:
        """Epoch `epoch`'s visiting order of the eligible episodes."""
        if epoch != self._order_epoch:
            if self.shuffle:
                perm = np.random.default_rng([self.seed, epoch]).permutation(len(self.eligible))
                self._order = self.eligible[perm]
            else:
                self._order = self.eligible
            self._order_epoch = epoch
        return self._order

    def _rows(self, order: np.ndarray, start: int) -> tuple[list[list[int]], int]:
        if self.batching == "pad":
            end = min(start + self.n_rows, len(order))
            return [[int(i)] for i in order[start:end]], end
        return pack_rows(order, start, self.lengths, self.block_size, self.n_rows)

    def _share(self, rows: list[list[int]]) -> list[list[int]]:
        """This rank's contiguous share (a partial last batch is split as evenly as possible)."""
        bounds = np.linspace(0, len(rows), self.world + 1).round().astype(int)
        return rows[bounds[self.rank]:bounds[self.rank + 1]]

    def next_batch(self) -> SampledBatch:
        if self.mode == "random":
            return self._random_batch()
        s = self.state
        order = self.order(s.epoch)
        rows, end = self._rows(order, s.cursor)
        batch = SampledBatch(self._share(rows), s.epoch, s.cursor, len(rows))
        s.cursor, s.batches, s.drawn = end, s.batches + 1, s.drawn + (end - batch.position)
        if s.cursor < len(order) and self.drop_last:
            rest, _ = self._rows(order, s.cursor)
            if len(rest) < self.n_rows:  # the tail cannot fill a whole batch: drop it
                batch.dropped = [int(i) for i in order[s.cursor:]]
                s.cursor = len(order)
        if s.cursor >= len(order):
            batch.closes_epoch = True
            s.epoch, s.cursor = s.epoch + 1, 0
        return batch

    def _random_batch(self) -> SampledBatch:
        """Random mode: episodes drawn with replacement, seeded by (epoch_seed, batch number)."""
        s = self.state
        rng = np.random.default_rng([self.seed, s.batches])
        if self.batching == "pad":
            picks = self.eligible[rng.integers(0, len(self.eligible), self.n_rows)]
            rows = [[int(i)] for i in picks]
        else:
            draws = self.eligible[rng.integers(0, len(self.eligible), self.n_rows * self.block_size)]
            rows, _ = pack_rows(draws, 0, self.lengths, self.block_size, self.n_rows)
        n = sum(len(r) for r in rows)
        batch = SampledBatch(self._share(rows), s.epoch, s.drawn % len(self.eligible), len(rows))
        s.batches, s.drawn = s.batches + 1, s.drawn + n
        s.epoch = s.drawn // len(self.eligible)
        return batch

    def epoch_progress(self) -> float:
        """Fraction of the current epoch done (0 right after an epoch closed)."""
        if self.mode == "random":
            return (self.state.drawn % len(self.eligible)) / len(self.eligible)
        return self.state.cursor / len(self.eligible)
