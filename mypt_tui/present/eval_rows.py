"""The eval table of a training run, as the headless console prints it at each eval and the app's
eval panel shows it: one row per eval set (loss, token accuracy, exact match, format), each with
its change since the last eval, and what a guard saw when one fired on the set."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.report import ReportCard, overall
from mypt_tui.present.eval_table import pct
from mypt_tui.present.numbers import loss

HEADER = ("set", "loss", "token acc", "exact match", "format")
GUARD_ROW = {"overfit": "val", "rises": "val"}  # guards about the run's own val split


@dataclass
class Cell:
    value: float | None
    delta: float | None  # since the eval (or probe round) before
    higher_is_better: bool
    rate: bool  # a fraction shown as a percentage

    @property
    def worse(self) -> bool:
        return self.delta is not None and (self.delta < 0 if self.higher_is_better else self.delta > 0)

    def text(self) -> str:
        if self.value is None:
            return "-"
        shown = pct(self.value) if self.rate else loss(self.value)
        return f"{shown} {arrow(self.delta, self.rate)}" if self.delta is not None else shown


def arrow(delta: float | None, rate: bool) -> str:
    """↑/↓ and the size of the change (rates in percentage points), "=" when unchanged."""
    if delta is None:
        return ""
    size = abs(delta) * (100 if rate else 1)
    if size < (0.05 if rate else 5e-5):
        return "="
    return ("↑" if delta > 0 else "↓") + (f"{size:.1f}" if rate else f"{size:.4f}")


@dataclass
class SetRow:
    name: str
    cells: list[Cell]
    alert: str  # what a guard saw on this set at the latest eval ("" when none fired)

    def texts(self) -> list[str]:
        return [self.name, *(c.text() for c in self.cells)]


def _num(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else None


def _last_two(card: ReportCard, name: str, key: str) -> tuple[float | None, float | None]:
    """The newest value of a set's metric, and the one before it (evals that measured it)."""
    seen = [v for r in card.records if (v := _num(r["sets"].get(name, {}).get(key))) is not None]
    return (seen[-1] if seen else None), (seen[-2] if len(seen) > 1 else None)


def set_rows(card: ReportCard) -> list[SetRow]:
    """One row per eval set of the newest eval (val first, then the named sets, then prompts)."""
    if not card.records:
        return []
    latest = card.records[-1]
    gate = latest.get("gate") or {}
    rows = []
    for name in latest["sets"]:
        cells = []
        for key, higher, rate in (("loss", False, False), ("token_accuracy", True, True),
                                  ("exact_match", True, True), ("format_compliance", True, True)):
            now, before = _last_two(card, name, key)
            cells.append(Cell(now, None if now is None or before is None else now - before, higher, rate))
        alerts = [text for code, text in (gate.get("guards") or {}).items()
                  if GUARD_ROW.get(code) == name or (code == "regression" and name in gate.get("regressed", []))]
        rows.append(SetRow(name, cells, "; ".join(alerts)))
    return rows


def cost_line(record: dict) -> str:
    """What this eval cost: the loss pass, and the probe round (or why it was skipped)."""
    text = f"evals {record.get('eval_seconds') or 0:.1f} s"
    probe = record.get("probe")
    if probe and probe.get("skipped"):
        return f"{text} · probes skipped: {probe['skipped']}"
    if probe:
        turns = sum(s.get("turns") or 0 for s in record["sets"].values())
        return (f"{text} · probes: {turns} replies in {probe['seconds']:.1f} s "
                f"({probe['share']:.1%} of the run so far; budget {probe['budget']:.0%})")
    return text


def gate_line(record: dict) -> str:
    """The checkpoint choice after this eval, in words."""
    gate = record.get("gate")
    if not gate:
        return ""
    best = "best/ unchanged" if gate.get("best_step") is None else f"best/ = step {gate['best_step']}"
    verdict = "chosen" if gate["chosen"] else "not chosen"
    line = f"{verdict}: {gate['reason']} ({best})"
    ext = gate.get("gate")
    if ext:
        metric = "" if ext.get("metric") is None else f", metric {ext['metric']:g}"
        line += (f"; external gate {'passed' if ext.get('passed') else 'did not pass'}{metric}"
                 + (f" ({ext['error']})" if ext.get("error") else ""))
    sat = gate.get("saturation")
    if sat and sat.get("detected"):
        line += f"; saturation: {sat['reason']}"
    if gate.get("early_stop"):
        line += f"; stopping early: {gate['early_stop']}"
    return line


def table_lines(card: ReportCard) -> list[str]:
    """The table the console prints after each eval (header, one row per set, cost, choice)."""
    if not card.records:
        return []
    record = card.records[-1]
    rows = set_rows(card)
    texts = [list(HEADER), *(r.texts() for r in rows)]
    widths = [max(len(t[c]) for t in texts) for c in range(len(HEADER))]
    val = "" if record["val_loss"] is not None else " | no val split"
    lines = [f"step {record['step']}: train {loss(record['train_loss'])}{val} · {cost_line(record)}"]
    for k, t in enumerate(texts):
        line = "  " + "  ".join(v.ljust(w) for v, w in zip(t, widths)).rstrip()
        if k and rows[k - 1].alert:
            line += f"  ! {rows[k - 1].alert}"
        lines.append(line)
    best = overall(record)
    if best["exact_match"] is not None:
        lines.append(f"  all probed turns: exact match {pct(best['exact_match'])}, "
                     f"format {pct(best['format_compliance'])}")
    choice = gate_line(record)
    if choice:
        lines.append(f"  {choice}")
    return lines
