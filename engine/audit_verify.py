"""Verifying an audit: the chain in the file (`verify_audit`), and the file against what the rest
of the run recorded (`verify_run`).

What it proves: that audit.jsonl is the file the trainer wrote — no record edited, removed,
reordered, inserted or appended, no tail cut and no file emptied — as far as the anchors reach.
Each checkpoint's meta.json and each `checkpoint`/`done` event hold the record count and last hash
at that moment, and each `step` event names the episodes of its step. A forger must rewrite the
audit, events.jsonl and every checkpoint's meta.json consistently to go unnoticed: nothing here is
signed with a secret, so that much cannot be ruled out. Records written after the newest anchor of
a run that did not finish (it crashed or still trains) are checked by the chain and the events only.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .audit import GENESIS, Anchor, digest, ids_digest, micro_batches, read_audit
from .events import CheckpointSaved, Done, RunStart, Step, read_events
from .jsonio import JsonError, read_json_object
from .layout import AUDIT_FILE, BEST_DIR, EVENTS_FILE, META_FILE
from .runs import checkpoints_in


@dataclass
class VerifyReport:
    records: int = 0
    steps: int = 0
    epochs_checked: int = 0
    anchors_checked: int = 0
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def verify_audit(path: Path, report: VerifyReport | None = None) -> VerifyReport:
    """The file alone: a start record first, the chain, and that each completed epoch trained
    every eligible episode exactly once (of its curriculum phase, after a `phase` record)."""
    rep = report or VerifyReport()
    prev = GENESIS
    start: dict[str, Any] | None = None
    seen: dict[int, Counter] = {}
    for n, rec in enumerate(read_audit(path), 1):
        rep.records += 1
        if rec.get("kind") == "corrupt":
            rep.errors.append(f"line {rec['line']}: not a record ({rec['why']})")
            continue
        if n == 1 and rec.get("kind") != "start":
            rep.errors.append("line 1: the first record must be the run's start record")
        if rec.get("prev") != prev:
            rep.errors.append(f"line {n} (step {rec.get('step')}): chain broken (prev does not match line {n - 1})")
        if rec.get("hash") != digest(rec):
            rep.errors.append(f"line {n} (step {rec.get('step')}): record was modified (hash mismatch)")
        prev = rec.get("hash")
        kind = rec.get("kind")
        if kind == "start":
            start = start or rec
        elif kind == "phase":  # a curriculum phase: its own eligible set, its epochs from 0
            start, seen = rec, {}
        elif kind == "step":
            rep.steps += 1
            for mb in micro_batches(rec):
                seen.setdefault(mb.get("epoch", -1), Counter()).update(mb["episodes"])
        elif kind == "epoch_end":
            _check_epoch(rec, seen, start, rep)
    if rep.records == 0:
        rep.errors.append(f"{path}: the audit is empty (no start record)")
    elif start is None:
        rep.errors.append("no start record")
    return rep


def _check_epoch(rec: dict[str, Any], seen: dict[int, Counter], start: dict[str, Any] | None,
                 rep: VerifyReport) -> None:
    epoch = rec.get("epoch", -1)
    trained = seen.pop(epoch, Counter())
    dropped = Counter(rec.get("dropped", []) if isinstance(rec.get("dropped"), list) else [])
    twice = sorted(e for e, c in (trained + dropped).items() if c > 1)
    if twice:
        rep.errors.append(f"epoch {epoch}: episodes seen more than once: {', '.join(twice[:5])}"
                          + (f" (+{len(twice) - 5} more)" if len(twice) > 5 else ""))
    covered = set(trained) | set(dropped)
    if start is None:
        rep.errors.append(f"epoch {epoch}: no start record to check coverage against")
    elif len(covered) != start.get("eligible"):
        rep.errors.append(f"epoch {epoch}: covered {len(covered)} distinct episodes, "
                          f"the run has {start.get('eligible')} eligible")
    elif ids_digest(covered) != start.get("eligible_sha256"):
        rep.errors.append(f"epoch {epoch}: covered {len(covered)} distinct episodes, but not the run's "
                          "eligible ones (their ids differ from the start record's)")
    rep.epochs_checked += 1


# -- the run ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Anchored:
    step: int
    anchor: Anchor
    where: str


def verify_run(run: Path) -> VerifyReport:
    """The audit of a run folder, checked on its own and against the run's anchors and events."""
    run = Path(run)
    path = run / AUDIT_FILE
    rep = VerifyReport()
    if not path.exists():
        rep.errors.append(f"{path}: no audit file")
        return rep
    verify_audit(path, rep)
    records = list(read_audit(path))
    history = _history(run, rep)
    anchors = history.anchors + _checkpoint_anchors(run, history, rep)
    for a in anchors:
        _check_anchor(records, a, rep)
    if history.final is not None and len(records) != history.final.anchor.records:
        extra = len(records) - history.final.anchor.records
        rep.errors.append(
            f"{history.final.where} ends the run at {history.final.anchor.records} records, the audit has "
            f"{len(records)}: " + (f"{extra} record(s) were added after the end" if extra > 0
                                   else f"{-extra} record(s) were removed"))
    _check_steps(records, history, rep)
    if not anchors:
        rep.notes.append("no anchors (a run from an older mypt, or none saved yet): only the chain was checked")
    return rep


@dataclass
class _History:
    """What events.jsonl says: the anchors still valid (a resume discards those after its step),
    the final anchor if the run ended, the world size, and the episodes of each step."""

    anchors: list[_Anchored] = field(default_factory=list)
    final: _Anchored | None = None
    steps: dict[int, list[str]] = field(default_factory=dict)
    counts: dict[int, tuple[int, int]] = field(default_factory=dict)  # step -> (tokens, supervised)
    last_step: int = 0
    ended_at: int | None = None  # the step of the `done` event, when the run ended


def _history(run: Path, rep: VerifyReport) -> _History:
    h = _History()
    events = run / EVENTS_FILE
    if not events.exists():
        rep.notes.append(f"{events}: no events: the audit could not be checked against them")
        return h
    for ev in read_events(events):
        if isinstance(ev, RunStart):
            h.anchors = [a for a in h.anchors if a.step <= ev.step]
            h.steps = {s: e for s, e in h.steps.items() if s <= ev.step}
            h.final, h.last_step, h.ended_at = None, ev.step, None
        elif isinstance(ev, Step):
            h.steps[ev.step] = list(ev.episodes)
            h.counts[ev.step] = (ev.tokens, ev.supervised)
            h.last_step = ev.step
        if isinstance(ev, Done):
            h.ended_at = ev.step
        if isinstance(ev, (CheckpointSaved, Done)) and ev.audit_records is not None and ev.audit_hash:
            anchored = _Anchored(ev.step, Anchor(ev.audit_records, ev.audit_hash),
                                 f"events.jsonl ({ev.type} at step {ev.step})")
            h.anchors.append(anchored)
            if isinstance(ev, Done):
                h.final = anchored
    return h


def _checkpoint_anchors(run: Path, history: _History, rep: VerifyReport) -> list[_Anchored]:
    """The anchors in the step checkpoints' meta.json (and best/ when it is of this history)."""
    out = []
    folders = [p for _, p in checkpoints_in(run)]
    if (run / BEST_DIR / META_FILE).exists():
        folders.append(run / BEST_DIR)
    for folder in folders:
        try:
            meta = read_json_object(folder / META_FILE, "checkpoint metadata")
        except (JsonError, OSError) as e:
            rep.errors.append(f"{folder / META_FILE}: cannot be read: {e}")
            continue
        audit = meta.get("audit")
        if not isinstance(audit, dict):
            continue
        step = meta.get("step")
        if type(step) is not int:
            rep.errors.append(f"{folder / META_FILE}: its step is damaged ({step!r}): the anchor cannot be placed")
            continue
        if folder.name == BEST_DIR and step > history.last_step:
            rep.notes.append(f"{folder}: from steps a resume discarded (step {step}); not an anchor")
            continue
        out.append(_Anchored(step, Anchor(audit.get("records", -1), audit.get("hash", "")), str(folder / META_FILE)))
    return out


def _check_anchor(records: list[dict[str, Any]], a: _Anchored, rep: VerifyReport) -> None:
    rep.anchors_checked += 1
    n = a.anchor.records
    if not isinstance(n, int) or n < 1:
        rep.errors.append(f"{a.where}: its audit anchor is damaged")
    elif len(records) < n:
        rep.errors.append(f"{a.where} anchors {n} audit records, the file has {len(records)}: "
                          "records were removed from the end")
    elif records[n - 1].get("hash") != a.anchor.hash:
        rep.errors.append(f"{a.where}: record {n} of the audit is not the one it anchored: "
                          "the audit was rewritten before that point")


def _check_steps(records: list[dict[str, Any]], history: _History, rep: VerifyReport) -> None:
    """Every step up to the run's last is in the audit (every rank), with the episodes its
    `step` event names, in the same order."""
    by_step: dict[int, list[list[str]]] = {}
    counts: dict[int, list[int]] = {}
    world = 1
    for rec in records:
        if rec.get("kind") == "start":
            world = rec.get("world", 1) or 1
        elif rec.get("kind") == "step":
            eps = [e for mb in micro_batches(rec) for e in mb["episodes"]]
            by_step.setdefault(rec["step"], []).append(eps)
            total = counts.setdefault(rec["step"], [0, 0])
            total[0] += rec.get("tokens", 0) if type(rec.get("tokens")) is int else 0
            total[1] += rec.get("supervised", 0) if type(rec.get("supervised")) is int else 0
    missing = [s for s in range(1, history.last_step + 1) if len(by_step.get(s, [])) < world]
    if missing:
        rep.errors.append(f"steps missing from the audit: {_ranges(missing)} "
                          f"(the run reached step {history.last_step})")
    if history.ended_at is not None and by_step and max(by_step) > history.ended_at:
        rep.errors.append(f"step {max(by_step)} is in the audit, but the run ended at step {history.ended_at} "
                          "(events.jsonl): records were added after the end")
    for step, named in sorted(history.steps.items()):
        got = [e for eps in by_step.get(step, []) for e in eps]
        if step in by_step and got != named:
            rep.errors.append(f"step {step}: the audit's episodes differ from the step event's "
                              f"({len(got)} vs {len(named)} ids, or another order)")
        elif step in by_step and tuple(counts[step]) != history.counts[step]:
            rep.errors.append(f"step {step}: the audit's tokens and supervised tokens {tuple(counts[step])} differ "
                              f"from the step event's {history.counts[step]}")


def _ranges(steps: list[int]) -> str:
    out, start = [], steps[0]
    for a, b in zip(steps, steps[1:] + [None]):
        if b != a + 1:
            out.append(str(start) if start == a else f"{start}-{a}")
            start = b
    return ", ".join(out[:5]) + (f" (+{len(out) - 5} more ranges)" if len(out) > 5 else "")
