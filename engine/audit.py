"""The episode audit: `<run>/audit.jsonl`, one hash-chained record per optimizer step and rank.

Record kinds:
- `start`: the eligible set of the run (count and the sha256 of its sorted ids), seed, policy.
- `step`: step, rank, and per micro-batch the epoch, position, episode ids and content hashes,
  tokens and supervised tokens.
- `epoch_end`: an epoch closed; the ids dropped as an incomplete last batch.
Every record carries `prev` (the previous record's hash) and `hash` (sha256 of the record
without `hash`), so an edited, removed or reordered record breaks the chain.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

from .layout import AUDIT_FILE

GENESIS = "0" * 64


def _digest(record: dict[str, Any]) -> str:
    body = {k: v for k, v in record.items() if k != "hash"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def ids_digest(ids: Iterable[str]) -> str:
    return hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()


class AuditWriter:
    """Appends chained records. On resume, records after the resumed step are cut first, so the
    steps that will be trained again are not recorded twice."""

    def __init__(self, path: Path, *, resume_step: int | None = None) -> None:
        self.path = Path(path)
        self.prev = GENESIS
        if resume_step is not None and self.path.exists():
            self._truncate_after(resume_step)
        self._fh = open(self.path, "a", encoding="utf-8")

    def _truncate_after(self, step: int) -> None:
        kept: list[str] = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                break  # a half-written last line of a crashed run
            if rec.get("step", 0) > step:
                break
            kept.append(line)
            self.prev = rec["hash"]
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text("".join(k + "\n" for k in kept), encoding="utf-8")
        os.replace(tmp, self.path)

    def write(self, kind: str, step: int, **fields: Any) -> dict[str, Any]:
        rec = {"kind": kind, "step": step, **fields, "prev": self.prev}
        rec["hash"] = _digest(rec)
        self._fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
        self._fh.flush()
        self.prev = rec["hash"]
        return rec

    def close(self) -> None:
        self._fh.close()


def read_audit(path: Path) -> Iterator[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                yield {"kind": "corrupt", "line": lineno}


@dataclass
class Occurrence:
    step: int
    rank: int
    epoch: int
    position: int
    micro_batch: int


def find_episode(path: Path, episode_id: str) -> list[Occurrence]:
    """Every step (and rank, epoch, micro-batch) where an episode trained."""
    out = []
    for rec in read_audit(path):
        if rec.get("kind") != "step":
            continue
        for k, mb in enumerate(rec["micro_batches"]):
            for _ in range(mb["episodes"].count(episode_id)):
                out.append(Occurrence(rec["step"], rec["rank"], mb["epoch"], mb["position"], k))
    return out


@dataclass
class VerifyReport:
    records: int = 0
    steps: int = 0
    epochs_checked: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def verify_audit(path: Path) -> VerifyReport:
    """Check the hash chain, and that each completed epoch trained every eligible episode once."""
    rep = VerifyReport()
    prev = GENESIS
    start: dict[str, Any] | None = None
    seen: dict[int, Counter] = {}
    for n, rec in enumerate(read_audit(path), 1):
        rep.records += 1
        if rec.get("kind") == "corrupt":
            rep.errors.append(f"line {rec['line']}: not valid JSON")
            continue
        if rec.get("prev") != prev:
            rep.errors.append(f"line {n} (step {rec.get('step')}): chain broken (prev does not match line {n - 1})")
        if rec.get("hash") != _digest(rec):
            rep.errors.append(f"line {n} (step {rec.get('step')}): record was modified (hash mismatch)")
        prev = rec.get("hash")
        kind = rec.get("kind")
        if kind == "start":
            start = rec
        elif kind == "step":
            rep.steps += 1
            for mb in rec["micro_batches"]:
                seen.setdefault(mb["epoch"], Counter()).update(mb["episodes"])
        elif kind == "epoch_end":
            epoch = rec["epoch"]
            trained = seen.pop(epoch, Counter())
            dropped = Counter(rec.get("dropped", []))
            twice = sorted(e for e, c in (trained + dropped).items() if c > 1)
            if twice:
                rep.errors.append(f"epoch {epoch}: episodes seen more than once: {', '.join(twice[:5])}"
                                  + (f" (+{len(twice) - 5} more)" if len(twice) > 5 else ""))
            covered = set(trained) | set(dropped)
            if start is None:
                rep.errors.append(f"epoch {epoch}: no start record to check coverage against")
            elif len(covered) != start["eligible"] or ids_digest(covered) != start["eligible_sha256"]:
                rep.errors.append(f"epoch {epoch}: covered {len(covered)} distinct episodes, "
                                  f"the run has {start['eligible']} eligible")
            rep.epochs_checked += 1
    if start is None and rep.records:
        rep.errors.append("no start record")
    return rep
