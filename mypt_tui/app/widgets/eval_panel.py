"""The evals of one run, live: a row per eval set (loss, token accuracy, exact match, format, each
with its change since the last eval; the row red when a guard fired on it), the checkpoint
choice, a plot that switches between train loss, per-set val loss and per-set exact match, and
the latest probe replies with the gold beside each.

Fed the same event batches as the RunMonitor (live, followed or replayed): it folds them into a
ReportCard (engine.report) and renders once per batch that brought an eval, a probe or a choice.
"""

from __future__ import annotations

import math

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import ContentSwitcher, DataTable, Select, Static
from textual_plotext import PlotextPlot

from engine.events import Eval, Event, Gate, Probe, RunStart, Step
from engine.report import ReportCard
from mypt_tui.app.widgets.loss_plot import POINTS_PER_COLUMN, downsample
from mypt_tui.present.eval_rows import HEADER, cost_line, gate_line, set_rows
from mypt_tui.present.text import printable

VIEWS = (("val loss per set", "loss"), ("exact match per set", "exact"), ("train loss", "train"),
         ("probe replies", "replies"))
COLORS = ("orange", "cyan", "green", "magenta", "yellow", "blue", "red", "white")


class EvalPlot(PlotextPlot):
    """One metric of the evals against step: a line per eval set, or the train loss."""

    DEFAULT_CSS = "EvalPlot { min-height: 5; }"

    def show(self, series: dict[str, tuple[list[int], list[float]]], ylabel: str) -> None:
        plt = self.plt
        plt.clear_data()
        plt.xlabel("step")
        plt.ylabel(ylabel)
        budget = max((self.size.width or 80) * POINTS_PER_COLUMN, 20)
        for k, (name, (xs, ys)) in enumerate(series.items()):
            if xs:
                plt.plot(*downsample(xs, ys, budget), label=name, marker="braille", color=COLORS[k % len(COLORS)])
        self.refresh()


class EvalPanel(Vertical):
    DEFAULT_CSS = """
    EvalPanel { height: 1fr; }
    EvalPanel #eval-table { height: auto; max-height: 8; }
    EvalPanel #eval-choice { height: auto; max-height: 2; color: $text-muted; }
    EvalPanel #eval-controls { height: 1; }
    EvalPanel #eval-view { width: 28; }
    EvalPanel #eval-cost { width: 1fr; padding-left: 1; color: $text-muted; }
    EvalPanel ContentSwitcher { height: 1fr; }
    EvalPanel #eval-replies { height: 1fr; }
    """

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id)
        self.card = ReportCard()
        self.train: tuple[list[int], list[float]] = ([], [])

    def compose(self) -> ComposeResult:
        table = DataTable(id="eval-table", cursor_type="none", zebra_stripes=True)
        for col in HEADER:
            table.add_column(col, key=col)
        yield table
        yield Static("no evals yet", id="eval-choice")
        with Horizontal(id="eval-controls"):
            yield Select(VIEWS, value="loss", allow_blank=False, compact=True, id="eval-view")
            yield Static("", id="eval-cost")
        with ContentSwitcher(initial="eval-plot"):
            yield EvalPlot(id="eval-plot")
            replies = DataTable(id="eval-replies", cursor_type="row", zebra_stripes=True)
            for col in ("set", "episode", "", "gold", "reply"):
                replies.add_column(col, key=col or "ok")
            yield replies

    @property
    def view(self) -> str:
        return str(self.query_one("#eval-view", Select).value)

    def reset(self) -> None:
        self.card, self.train = ReportCard(), ([], [])
        self.render_card()

    def feed(self, events: list[Event]) -> None:
        """Fold a batch of events; redraw when it brought evals (steps only extend the train curve)."""
        changed = False
        for ev in events:
            self.card.apply(ev)
            if isinstance(ev, Step) and math.isfinite(ev.loss):
                self.train[0].append(ev.step)
                self.train[1].append(ev.loss)
            elif isinstance(ev, RunStart):
                xs, ys = self.train
                keep = sum(1 for x in xs if x <= ev.step) if ev.resumed else 0
                self.train = (xs[:keep], ys[:keep])
                changed = True
            changed = changed or isinstance(ev, (Eval, Probe, Gate))
        if changed:
            self.render_card()

    @on(Select.Changed, "#eval-view")
    def view_changed(self) -> None:
        self.query_one(ContentSwitcher).current = "eval-replies" if self.view == "replies" else "eval-plot"
        self.render_view()

    def render_card(self) -> None:
        table = self.query_one("#eval-table", DataTable)
        table.clear()
        for row in set_rows(self.card):
            style = "bold red" if row.alert else ""
            cells = [Text(row.name, style=style)]
            for cell in row.cells:
                worse = cell.worse and not row.alert
                cells.append(Text(cell.text(), style=style or ("yellow" if worse else "")))
            table.add_row(*cells, key=row.name)
        record = self.card.records[-1] if self.card.records else None
        alerts = "; ".join(r.alert for r in set_rows(self.card) if r.alert)
        choice = gate_line(record) if record else "no evals yet"
        self.query_one("#eval-choice", Static).update(
            Text(choice + (f"\nguard: {alerts}" if alerts else ""), style="red" if alerts else ""))
        self.query_one("#eval-cost", Static).update(cost_line(record) if record else "")
        self.render_view()

    def render_view(self) -> None:
        if self.view == "replies":
            self._render_replies()
            return
        plot = self.query_one(EvalPlot)
        if self.view == "train":
            plot.show({"train": self.train}, "loss")
            return
        key, label = ("loss", "val loss") if self.view == "loss" else ("exact_match", "exact match")
        series: dict[str, tuple[list[int], list[float]]] = {}
        for r in self.card.records:
            for name, s in r["sets"].items():
                value = s.get(key)
                if isinstance(value, (int, float)) and math.isfinite(value):
                    xs, ys = series.setdefault(name, ([], []))
                    xs.append(r["step"])
                    ys.append(value)
        plot.show(series, label)

    def _render_replies(self) -> None:
        table = self.query_one("#eval-replies", DataTable)
        table.clear()
        for k, r in enumerate(self.card.replies):
            ok = "-" if r.get("exact") is None else ("✓" if r["exact"] else "✗")
            style = "" if r.get("exact") is not False else ("yellow" if r.get("formatted") else "red")
            table.add_row(r["set"], f"{r['episode']}#{r['turn']}", Text(ok, style=style),
                          Text(_one_line(r.get("gold")), style="green"), Text(_one_line(r.get("reply")), style=style),
                          key=str(k))


def _one_line(text: str | None) -> str:
    """A gold or generated reply on one line, control characters shown as escapes (it is model output)."""
    return "-" if text is None else printable(text.replace("\n", "⏎"))
