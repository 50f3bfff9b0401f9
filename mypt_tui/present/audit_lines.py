"""The episode audit as a reader sees it: one line per step that fits the pane, notes for epoch
ends and resumes, and the full record of one step.

A step of the demo trains 55 episodes; their ids do not fit a pane, so a step's line says how
many trained and lists the ids that fit: `step 123 e2 · 55 episodes: chat-000412 … (+53)`.
A pretraining step trains windows of a token stream, named by shard and offset
(`step 12 e0 · 8 windows: shard_00000.bin:2048 … (+7)`).
Lines are made for a width; the app's audit pane makes them again when its width changes.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from typing import Any

from engine.stream import is_window_id
from mypt_tui.present.fit import ELLIPSIS, elide_middle


@dataclass(frozen=True)
class AuditEntry:
    """One thing the audit pane shows: a step (its episodes), or a note (epoch end, resume)."""

    step: int | None = None  # None for a note
    epoch: int = 0
    episodes: tuple[str, ...] = ()
    rank: int = 0
    note: str = ""

    def lines(self, width: int) -> list[str]:
        if self.step is None:
            return textwrap.wrap(self.note, max(width, 10), subsequent_indent="  ") or [""]
        return [step_line(self.step, self.epoch, self.episodes, width, self.rank)]


def step_line(step: int, epoch: int, episodes: tuple[str, ...] | list[str], width: int, rank: int = 0) -> str:
    """`step 123 e2 · 55 episodes: chat-000412 chat-000981 … (+53)` in at most `width` characters."""
    n = len(episodes)
    unit = unit_of(episodes) + ("" if n == 1 else "s")
    head = f"step {step} e{epoch}" + (f" r{rank}" if rank else "") + f" · {n} {unit}:"
    full = " ".join([head, *episodes])
    if len(full) <= width:
        return full
    line = head.rstrip(":") if len(head) <= width else f"{head} {ELLIPSIS} (+{n})"
    for k in range(1, n):
        candidate = " ".join([head, *episodes[:k]]) + f" {ELLIPSIS} (+{n - k})"
        if len(candidate) > width:
            break
        line = candidate
    return elide_middle(line, width)


def unit_of(ids: tuple[str, ...] | list[str]) -> str:
    """What a step trained: "window" (of a token stream) or "episode"."""
    return "window" if ids and is_window_id(ids[0]) else "episode"


def epoch_note(epoch: int, step: int, trained: int, dropped: int, unit: str = "episode") -> str:
    extra = f", {dropped} dropped (an incomplete last batch)" if dropped else ""
    return f"epoch {epoch} done at step {step}: {trained:,} {unit}s trained{extra}"


def audit_entry(rec: dict[str, Any]) -> AuditEntry | None:
    """One audit.jsonl record as an entry (None for records the pane does not show)."""
    kind = rec.get("kind")
    if kind == "step":
        ids = tuple(e for mb in rec.get("micro_batches", []) for e in mb.get("episodes", []))
        return AuditEntry(step=rec["step"], epoch=rec.get("epoch", 0), episodes=ids, rank=rec.get("rank") or 0)
    if kind == "epoch_end":
        dropped = rec.get("dropped") or []
        text = f"epoch {rec.get('epoch')} done at step {rec.get('step')}"
        return AuditEntry(note=text + (f"; dropped (an incomplete last batch): {' '.join(dropped)}" if dropped else ""))
    if kind == "resume":
        return AuditEntry(note=f"resumed at step {rec['step']}")
    if kind == "corrupt":
        return AuditEntry(note=f"(line {rec.get('line')} of audit.jsonl is not valid JSON)")
    return None


def record_text(rec: dict[str, Any]) -> str:
    """The full audit record of one step: every micro-batch's episodes with their hashes."""
    rank = f" · rank {rec['rank']}" if rec.get("rank") else ""
    batches = rec.get("micro_batches", [])
    unit = unit_of(batches[0].get("episodes", []) if batches else [])
    out = [f"step {rec['step']} · epoch {rec.get('epoch', 0)}{rank} · {rec.get('tokens', 0):,} tokens, "
           f"{rec.get('supervised', 0):,} trained" + (" (loss-masked in)" if unit == "episode" else "")]
    for i, mb in enumerate(batches, 1):
        ids, hashes = mb.get("episodes", []), mb.get("hashes", [])
        out.append("")
        out.append(f"micro-batch {i}: epoch {mb.get('epoch')}, from position {mb.get('position')} of the epoch, "
                   f"{len(ids)} {unit}s, {mb.get('tokens', 0):,} tokens ({mb.get('supervised', 0):,} trained)")
        out += [f"  {e}  sha256 {h[:16]}" for e, h in zip(ids, hashes + [""] * (len(ids) - len(hashes)))]
    out += ["", f"record hash {str(rec.get('hash', ''))[:16]} (previous {str(rec.get('prev', ''))[:16]})"]
    return "\n".join(out)
