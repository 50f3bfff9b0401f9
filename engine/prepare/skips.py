"""The skipped episodes of a job: all of them counted, in total and by reason, and the earliest
KEEP_SKIPPED listed by message (a set with a million bad lines keeps memory flat)."""

from __future__ import annotations

import bisect

from ..episode import SkipReason

KEEP_SKIPPED = 1000  # skipped episodes listed by message (all are counted)


class SkipTally:
    """Skips arrive in input order from pass 1, then out of order from the duplicate pass: the
    list stays sorted by `seq` (the episode's position in the input stream), so it always holds
    the earliest ones."""

    def __init__(self, keep: int = KEEP_SKIPPED) -> None:
        self.keep = keep
        self.total = 0
        self.first_seq: int | None = None  # seq of the first skip recorded (where --strict stopped)
        self.by_reason: dict[str, int] = {}  # category (SkipReason's value) -> count
        self._listed: list[tuple[int, str]] = []  # (seq, "source: reason"), sorted

    def add(self, seq: int, reason: SkipReason, message: str) -> None:
        self.total += 1
        if self.first_seq is None:
            self.first_seq = seq
        self.by_reason[reason.value] = self.by_reason.get(reason.value, 0) + 1
        if len(self._listed) < self.keep:
            bisect.insort(self._listed, (seq, message))
        elif seq < self._listed[-1][0]:
            bisect.insort(self._listed, (seq, message))
            self._listed.pop()

    def messages(self, upto_seq: int | None = None) -> list[str]:
        """The listed messages in input order; with `upto_seq`, only those of episodes up to it."""
        return [m for seq, m in self._listed if upto_seq is None or seq <= upto_seq]

    def sorted_by_reason(self) -> dict[str, int]:
        return dict(sorted(self.by_reason.items()))
