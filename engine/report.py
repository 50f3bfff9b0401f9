"""A run's report card: its eval history, the gate decisions, the best checkpoint and why, final
scores and what evaluation cost, folded from the event stream.

The trainer folds its own events into one and writes it as `<run>/report.json` after every eval
(`mypt_report_v1`); `mypt runs --json`, the Runs screen and a resumed run fold the same events
from events.jsonl and get the same card. A resumed run's card drops the evals after the
checkpoint it resumed from, as its curves do.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .events import Done, Eval, Event, Gate, Probe, RunError, RunStart, Step, json_safe, read_events

REPORT_FILE = "report.json"
SCHEMA = "mypt_report_v1"
PROBE_KEYS = ("exact_match", "format_compliance", "tool_call_validity", "turns", "exact", "formatted",
              "tool_turns", "tool_valid")


class ReportCard:
    """Fold events with `apply`; `records` holds one dict per eval, oldest first."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.replies: list[dict[str, Any]] = []  # the latest probe round's replies
        self.replies_step: int | None = None
        self.sessions: list[float] = []  # each (re)start's run time so far
        self.ended: dict[str, Any] | None = None

    @classmethod
    def of_run(cls, run: Path) -> ReportCard:
        card = cls()
        path = Path(run) / "events.jsonl"
        if path.exists():
            for ev in read_events(path):
                card.apply(ev)
        return card

    def record(self, step: int) -> dict[str, Any] | None:
        return next((r for r in reversed(self.records) if r["step"] == step), None)

    def apply(self, ev: Event) -> None:
        if isinstance(ev, RunStart):
            self.ended = None
            self.sessions.append(0.0)
            if ev.resumed:
                self.records = [r for r in self.records if r["step"] <= ev.step]
            else:
                self.records, self.replies, self.replies_step = [], [], None
        elif isinstance(ev, Step):
            if self.sessions:
                self.sessions[-1] = ev.elapsed
        elif isinstance(ev, Eval):
            self.records = [r for r in self.records if r["step"] != ev.step]
            self.records.append({
                "step": ev.step, "train_loss": ev.train_loss, "val_loss": ev.val_loss,
                "train_accuracy": ev.train_accuracy, "val_accuracy": ev.val_accuracy,
                "sets": {name: dict(s) for name, s in ev.sets.items()}, "eval_seconds": ev.seconds,
                "probe": None, "gate": None})
        elif isinstance(ev, Probe):
            self._probe(ev)
        elif isinstance(ev, Gate):
            r = self.record(ev.step)
            if r is not None:
                r["gate"] = {k: getattr(ev, k) for k in ("chosen", "reason", "blocked", "best_step", "guards",
                                                         "regressed", "gate", "saturation", "early_stop")}
        elif isinstance(ev, Done):
            if self.sessions:
                self.sessions[-1] = ev.elapsed
            self.ended = {"reason": ev.reason, "step": ev.step, "early_stop": ev.early_stop}
        elif isinstance(ev, RunError):
            self.ended = {"reason": "failed", "step": ev.step, "message": ev.message}

    def _probe(self, ev: Probe) -> None:
        r = self.record(ev.step)
        if r is None:
            return
        r["probe"] = {"seconds": ev.seconds, "share": ev.share, "budget": ev.budget, "skipped": ev.skipped}
        for name, scores in ev.sets.items():
            target = r["sets"].setdefault(name, {"kind": "prompts"} if name == "prompts" else {})
            target.update({k: scores.get(k) for k in PROBE_KEYS})
            target["families"] = scores.get("families", {})
        if not ev.skipped:
            self.replies, self.replies_step = list(ev.replies), ev.step

    # -- what the card says -----------------------------------------------------------------------

    @property
    def best(self) -> dict[str, Any] | None:
        """The eval whose weights best/ holds (the last one chosen), with why."""
        chosen = [r for r in self.records if (r.get("gate") or {}).get("chosen")]
        return chosen[-1] if chosen else None

    @property
    def saturation(self) -> dict[str, Any] | None:
        seen = [(r["gate"] or {}).get("saturation") for r in self.records if r.get("gate")]
        seen = [s for s in seen if s]
        return seen[-1] if seen else None

    def cost(self) -> dict[str, Any]:
        """Seconds spent in evals and probes, and their shares of the run's time."""
        evals = sum(r.get("eval_seconds") or 0.0 for r in self.records)
        probes = sum((r.get("probe") or {}).get("seconds") or 0.0 for r in self.records)
        rounds = sum(1 for r in self.records if r.get("probe") and not r["probe"].get("skipped"))
        skipped = sum(1 for r in self.records if r.get("probe") and r["probe"].get("skipped"))
        run = sum(self.sessions)
        return {"eval_seconds": round(evals, 3), "probe_seconds": round(probes, 3), "probe_rounds": rounds,
                "probe_rounds_skipped": skipped, "run_seconds": round(run, 3),
                "eval_share": round(evals / run, 4) if run else None,
                "probe_share": round(probes / run, 4) if run else None}

    def to_dict(self) -> dict[str, Any]:
        """report.json (`mypt_report_v1`)."""
        best, last = self.best, (self.records[-1] if self.records else None)
        return {
            "schema": SCHEMA,
            "sets": {name: {k: s.get(k) for k in ("kind", "split", "path")}
                     for name, s in (last or {}).get("sets", {}).items()},
            "evals": self.records,
            "best": None if best is None else {"step": best["step"], "val_loss": best["val_loss"],
                                               "reason": best["gate"]["reason"], "sets": best["sets"],
                                               **overall(best)},
            "final": None if last is None else {"step": last["step"], "val_loss": last["val_loss"],
                                                "sets": last["sets"], **overall(last)},
            "saturation": self.saturation,
            "early_stop": next((r["gate"]["early_stop"] for r in reversed(self.records)
                                if (r.get("gate") or {}).get("early_stop")), ""),
            "cost": self.cost(),
            "ended": self.ended,
            "replies_step": self.replies_step,
            "replies": self.replies,
        }


def overall(record: dict[str, Any]) -> dict[str, Any]:
    """Exact match and format compliance over every probed turn of an eval (all sets together)."""
    turns = exact = formatted = 0
    for s in record.get("sets", {}).values():
        if s.get("turns"):
            turns += s["turns"]
            exact += s.get("exact") or 0
            formatted += s.get("formatted") or 0
    return {"exact_match": exact / turns if turns else None, "format_compliance": formatted / turns if turns else None}


class ReportWriter:
    """A sink that folds the run's events and rewrites report.json after each decision and at the end
    (written beside and renamed: a reader never sees half a file)."""

    def __init__(self, run: Path, card: ReportCard | None = None) -> None:
        self.path = Path(run) / REPORT_FILE
        self.card = card or ReportCard()

    def __call__(self, ev: Event) -> None:
        self.card.apply(ev)
        if isinstance(ev, (Gate, Done, RunError)):
            tmp = self.path.with_name(f".{self.path.name}.tmp")
            tmp.write_text(json.dumps(json_safe(self.card.to_dict()), indent=1, ensure_ascii=False),
                           encoding="utf-8")
            os.replace(tmp, self.path)
