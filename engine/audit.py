"""The episode audit: `<run>/audit.jsonl`, one hash-chained record per optimizer step and rank.

Record kinds:
- `start`: the eligible set of the run (count and the sha256 of its sorted ids), seed, policy.
  It is always the first record.
- `step`: step, rank, and per micro-batch the epoch, position, episode ids and content hashes,
  tokens and supervised tokens.
- `epoch_end`: an epoch closed; the ids dropped as an incomplete last batch.
- `resume`: training resumed at this step (the records of steps after it were cut first).
- `phase`: a curriculum phase trains from this step on: its dataset and eligible set (as `start`);
  its epochs count from 0, and an epoch the switch cut short is not checked.
Every record carries `prev` (the previous record's hash) and `hash` (sha256 of the record
without `hash`), so an edited, removed or reordered record breaks the chain.

A chain alone can be rebuilt by whoever edits the file. So the chain is anchored: each
checkpoint's meta.json, each `checkpoint` event and the `done` event carry the number of records
and the last hash at that moment (`AuditWriter.anchor()`). `verify_run` (in engine/audit_verify.py)
checks the file against those anchors and against the episodes each `step` event names.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from . import jsonio
from .errors import shown
from .layout import AUDIT_FILE  # noqa: F401 - the audit's file name, for callers that import it here

GENESIS = "0" * 64


def digest(record: dict[str, Any]) -> str:
    """The hash of a record: sha256 of its canonical JSON without the `hash` field."""
    body = {k: v for k, v in record.items() if k != "hash"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def ids_digest(ids: Iterable[str]) -> str:
    return hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()


@dataclass(frozen=True)
class Anchor:
    """The audit at one moment: how many records it held and the hash of the last one."""

    records: int
    hash: str

    def to_dict(self) -> dict[str, Any]:
        return {"records": self.records, "hash": self.hash}


class AuditWriter:
    """Appends chained records. On resume, records after the resumed step are cut first, so the
    steps that will be trained again are not recorded twice."""

    def __init__(self, path: Path, *, resume_step: int | None = None) -> None:
        self.path = Path(path)
        self.prev = GENESIS
        self.records = 0
        if resume_step is not None and self.path.exists():
            self._truncate_after(resume_step)
        self._fh = open(self.path, "a", encoding="utf-8")

    def _truncate_after(self, step: int) -> None:
        kept: list[str] = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                rec = jsonio.loads(line)
            except ValueError:
                break  # a half-written last line of a crashed run
            if not isinstance(rec, dict) or rec.get("step", 0) > step:
                break
            kept.append(line)
            self.prev = rec.get("hash", self.prev)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text("".join(k + "\n" for k in kept), encoding="utf-8")
        os.replace(tmp, self.path)
        self.records = len(kept)

    def write(self, kind: str, step: int, **fields: Any) -> dict[str, Any]:
        rec = {"kind": kind, "step": step, **fields, "prev": self.prev}
        rec["hash"] = digest(rec)
        try:
            self._fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
            self._fh.flush()
        except OSError as e:  # a write to an open file names no path: name it (disk full, size limit)
            raise OSError(e.errno, e.strerror, str(self.path)) from e
        self.prev = rec["hash"]
        self.records += 1
        return rec

    def anchor(self) -> Anchor:
        return Anchor(self.records, self.prev)

    def close(self) -> None:
        self._fh.close()


def read_audit(path: Path) -> Iterator[dict[str, Any]]:
    """The records in file order; a line that is not a record as the trainer writes it (not JSON,
    not an object, a field of the wrong type) is `{"kind": "corrupt", "line": N, "why": ...}`."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = jsonio.loads(line)
            except ValueError:
                rec = None
            why = "not a JSON object" if not isinstance(rec, dict) else record_problem(rec)
            yield rec if why is None else {"kind": "corrupt", "line": lineno, "why": why}


def _is_int(v: Any) -> bool:
    return type(v) is int


def _is_ids(v: Any) -> bool:
    return type(v) is list and all(type(x) is str for x in v)


_FIELDS: dict[str, tuple[tuple[str, Callable[[Any], bool]], ...]] = {  # kind -> fields a reader relies on
    "start": (("eligible", _is_int), ("eligible_sha256", lambda v: type(v) is str),
              ("world", lambda v: v is None or _is_int(v) and v > 0)),
    "step": (("rank", _is_int), ("epoch", _is_int), ("micro_batches", lambda v: type(v) is list)),
    "epoch_end": (("epoch", _is_int), ("dropped", _is_ids)),
    "resume": (),
    "phase": (("eligible", _is_int), ("eligible_sha256", lambda v: type(v) is str)),  # a curriculum phase
}
_BATCH_FIELDS = (("epoch", _is_int), ("position", _is_int), ("episodes", _is_ids))


def record_problem(rec: dict[str, Any]) -> str | None:
    """Why a record is not shaped as the trainer writes it (None when it is): its readers compare,
    count and sort these fields, so a forged type must not reach them."""
    kind = rec.get("kind")
    if type(kind) is not str or kind not in _FIELDS:
        return f"unknown kind {shown(kind)}"
    checks = (("step", _is_int), ("prev", lambda v: type(v) is str), ("hash", lambda v: type(v) is str),
              *_FIELDS[kind])
    bad = next((name for name, ok in checks if not ok(rec.get(name))), None)
    if bad is None and kind == "step":
        bad = next((f"micro_batches.{name}" for mb in rec["micro_batches"] for name, ok in _BATCH_FIELDS
                    if not (type(mb) is dict and ok(mb.get(name)))), None)
    return None if bad is None else f"{kind} record with a wrong or missing {bad!r}"


@dataclass
class Occurrence:
    step: int
    rank: int
    epoch: int
    position: int
    micro_batch: int


def micro_batches(rec: dict[str, Any]) -> list[dict[str, Any]]:
    """A step record's micro-batches, or [] when the record is not shaped as the trainer writes it."""
    mbs = rec.get("micro_batches")
    if not isinstance(mbs, list) or not all(isinstance(mb, dict) and isinstance(mb.get("episodes"), list)
                                            for mb in mbs):
        return []
    return mbs


def find_episode(path: Path, episode_id: str) -> list[Occurrence]:
    """Every step (and rank, epoch, micro-batch) where an episode trained."""
    out = []
    for rec in read_audit(path):
        if rec.get("kind") != "step":
            continue
        for k, mb in enumerate(micro_batches(rec)):
            for _ in range(mb["episodes"].count(episode_id)):
                out.append(Occurrence(rec.get("step", -1), rec.get("rank", 0), mb.get("epoch", -1),
                                      mb.get("position", -1), k))
    return out
