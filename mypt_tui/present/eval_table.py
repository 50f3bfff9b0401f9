"""The eval table of `mypt eval` and of the app's eval dialog: per-family rows, A/B comparisons."""

from __future__ import annotations

from typing import Sequence

from mypt_tui.present.numbers import loss


def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def delta_pp(x: float | None) -> str:
    """A difference of two rates, in percentage points."""
    return "-" if x is None else f"{100 * x:+.1f}"


def delta_loss(x: float | None) -> str:
    return "-" if x is None else f"{x:+.4f}"


HEADERS = ("family", "episodes", "turns", "exact match", "format", "tool calls", "val loss", "token acc")


def metric_cells(m) -> list[str]:
    """One row of the per-family table, after the family name (engine.eval.Metrics)."""
    return [str(m.episodes), str(m.turns), pct(m.exact_match), pct(m.format_compliance),
            pct(m.tool_call_validity), loss(m.val_loss), pct(m.token_accuracy)]


def table(header: Sequence[str], rows: Sequence[Sequence[str]], rule_before_last: bool = True) -> str:
    """Columns padded to their widest cell; the first left-aligned, the rest right-aligned."""
    widths = [max(len(str(r[c])) for r in [header, *rows]) for c in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(str(v).ljust(w) if c == 0 else str(v).rjust(w)
                         for c, (v, w) in enumerate(zip(cells, widths))).rstrip()

    out = [line(header)]
    for k, r in enumerate(rows):
        if rule_before_last and k == len(rows) - 1 and len(rows) > 1:
            out.append("-" * len(line(header)))
        out.append(line(r))
    return "\n".join(out)


def single_table(report) -> str:
    return table(HEADERS, [[name, *metric_cells(m)] for name, m in report.rows()])


def compare_table(a, b) -> str:
    """A and B side by side per family, with B - A (rates in percentage points)."""
    from engine.eval import difference

    diff = difference(a, b)
    tools = a.overall.tool_turns > 0
    groups = [("exact match", "exact_match", pct, delta_pp), ("format", "format_compliance", pct, delta_pp)]
    if tools:
        groups.append(("tool calls", "tool_call_validity", pct, delta_pp))
    groups += [("val loss", "val_loss", loss, delta_loss), ("token acc", "token_accuracy", pct, delta_pp)]
    header = ["family", "episodes", "turns"]
    for title, *_ in groups:
        header += [f"{title} A", "B", "B-A"]
    rows = []
    for name, ma in a.rows():
        mb = b.overall if name == "overall" else b.families[name]
        row = [name, str(ma.episodes), str(ma.turns)]
        for _, key, fmt, dfmt in groups:
            row += [fmt(getattr(ma, key)), fmt(getattr(mb, key)), dfmt(diff[name][key])]
        rows.append(row)
    return table(header, rows)


def describe(report, label: str = "") -> str:
    """The checkpoint, its step, and the prompt form it was asked in."""
    step = "" if report.step is None else f" (step {report.step})"
    form = ("raw prompts: a base model, asked in plain text, its first line scored" if report.raw
            else "chat prompts")
    return f"{label}{report.checkpoint}{step} · {form}"


def failure_lines(report, n: int) -> list[str]:
    out = []
    for t in report.failures()[:n]:
        out += [f"  {t.episode} turn {t.turn} [{t.family}]: {t.score.problem}",
                f"    gold:  {t.gold!r}", f"    reply: {t.score.reply!r}"]
    return out


