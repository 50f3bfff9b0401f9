"""The Data screen: prepare a dataset from gold episodes, read its statistics, and look at any
episode with its loss mask (what `mypt prepare` and `mypt inspect` do, in one place).

Preparing runs `engine.prepare.prepare` in a thread worker: progress comes back as messages
(a newer one replaces an older one still queued), the Cancel button makes `should_stop()`
true and the job leaves nothing behind. Opening a dataset also runs in a worker (the
statistics read every episode's mask); the mask view reads one episode on the UI thread.
"""

from __future__ import annotations

import threading

from rich.table import Table
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Button, Checkbox, Footer, Input, Label, ProgressBar, Select, Static, TabbedContent, TabPane
from textual.worker import Worker, WorkerState, get_current_worker

from mypt_tui.app.widgets.dialogs import ErrorDialog
from mypt_tui.app.widgets.mask_view import MaskView
from mypt_tui.app.widgets.nav import NAV_BINDINGS, NavBar
from mypt_tui.present.dataset_stats import COLUMNS, SplitStats, dataset_stats, notes, prepare_report_lines, title


def stats_table(stats: list[SplitStats]) -> Table:
    table = Table(box=None, pad_edge=False, header_style="bold")
    for col in COLUMNS:
        table.add_column(col, justify="left" if col == "split" else "right")
    for s in stats:
        table.add_row(*s.cells())
    return table


def find_episode(split, wanted: str) -> int:
    """An episode by id, else by index into the split; ValueError saying what exists."""
    wanted = wanted.strip()
    if not wanted:
        return 0
    found = split.locate(wanted)
    if found is not None:
        return found
    raise ValueError(f"no episode {wanted!r} in {split.name}: give an index 0..{len(split) - 1} or an episode id")


# -- messages ------------------------------------------------------------------------------------

class PrepareProgress(Message, bubble=False):
    def __init__(self, done: int, total: int | None) -> None:
        super().__init__()
        self.done, self.total = done, total

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, PrepareProgress)


class PrepareFinished(Message, bubble=False):
    def __init__(self, report=None, error: str | None = None, cancelled: bool = False) -> None:
        super().__init__()
        self.report, self.error, self.cancelled = report, error, cancelled


class DatasetOpened(Message, bubble=False):
    def __init__(self, path: str, dataset=None, stats: list[SplitStats] | None = None,
                 error: str | None = None) -> None:
        super().__init__()
        self.path, self.dataset, self.stats, self.error = path, dataset, stats or [], error


class DataScreen(Screen):
    """Prepare, statistics and the mask view, one tab each."""

    BINDINGS = [
        *NAV_BINDINGS,
        Binding("ctrl+r", "prepare", "Prepare"),
        Binding("escape", "cancel", "Cancel"),
        Binding("left_square_bracket", "episode(-1)", "Prev", key_display="["),
        Binding("right_square_bracket", "episode(1)", "Next", key_display="]"),
    ]

    DEFAULT_CSS = """
    DataScreen TabPane { padding: 0 1; }
    DataScreen .form-row { height: 1; margin-top: 1; }
    DataScreen .form-row Label { width: 12; }
    DataScreen .form-row Label.inline { width: auto; margin-right: 1; }
    DataScreen .form-row Input { width: 1fr; }
    DataScreen .form-row Select { width: 14; margin-right: 2; }
    DataScreen .form-row Button { margin-left: 1; min-width: 8; }
    DataScreen .form-row Checkbox { margin-left: 1; }
    DataScreen #data-progress { margin-top: 1; }
    DataScreen #prepare-report { margin-top: 1; height: auto; }
    DataScreen #prepare-report.-error { color: $error; }
    DataScreen #stats-scroll { height: 1fr; }
    DataScreen #data-stats-table { margin-top: 1; height: auto; }
    DataScreen #data-stats-text { margin-top: 1; height: auto; color: $text-muted; }
    DataScreen #mask-split { width: 12; }
    DataScreen #mask-view { margin-top: 1; }
    """

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.dataset = None  # engine.dataset.Dataset shown in Stats and the mask view
        self.stats: list[SplitStats] = []
        self.report = None  # the last PrepareReport
        self.preparing = False
        self.episode_index = 0
        self._cancel = threading.Event()

    def compose(self) -> ComposeResult:
        yield NavBar()
        with TabbedContent(id="data-tabs"):
            with TabPane("Prepare", id="tab-prepare"):
                with VerticalScroll():
                    with Horizontal(classes="form-row"):
                        yield Label("input")
                        yield Input(placeholder="gold episodes: a .jsonl/.json file or a folder", id="prep-input",
                                    compact=True)
                    with Horizontal(classes="form-row"):
                        yield Label("type")
                        yield Select([("chat", "chat"), ("tool", "tool")], value="chat", allow_blank=False,
                                     id="prep-kind", compact=True)
                        yield Label("tokenization", classes="inline")
                        yield Select([("gpt2", "gpt2"), ("char", "char")], value="gpt2", allow_blank=False,
                                     id="prep-tokenization", compact=True)
                    with Horizontal(classes="form-row"):
                        yield Label("val split")
                        yield Input("0.1", id="prep-val-split", compact=True)
                    with Horizontal(classes="form-row"):
                        yield Label("val file")
                        yield Input(placeholder="optional: held-out episodes (replaces the split)",
                                    id="prep-val-file", compact=True)
                    with Horizontal(classes="form-row"):
                        yield Label("output")
                        yield Input(placeholder="folder to write the prepared dataset to", id="prep-output",
                                    compact=True)
                        yield Checkbox("overwrite", id="prep-overwrite", compact=True)
                    with Horizontal(classes="form-row"):
                        yield Button("Prepare", id="prepare", variant="primary", compact=True)
                        yield Button("Cancel", id="cancel", variant="error", compact=True, disabled=True)
                    yield ProgressBar(total=100, show_eta=False, id="data-progress")
                    yield Static("", id="prepare-report")
            with TabPane("Stats", id="tab-stats"):
                with Horizontal(classes="form-row"):
                    yield Label("dataset")
                    yield Input(placeholder="a prepared dataset folder", id="data-path", compact=True)
                    yield Button("Open", id="open-dataset", compact=True)
                with VerticalScroll(id="stats-scroll"):
                    yield Static("", id="data-stats-table")
                    yield Static("Open a prepared dataset (or prepare one).", id="data-stats-text")
            with TabPane("Mask view", id="tab-mask"):
                with Horizontal(classes="form-row"):
                    yield Select([("train", "train"), ("val", "val")], value="train", allow_blank=False,
                                 id="mask-split", compact=True)
                    yield Input(placeholder="episode: index or id", id="mask-episode", compact=True)
                    yield Button("Show", id="mask-show", compact=True)
                    yield Button("◀", id="mask-prev", compact=True)
                    yield Button("▶", id="mask-next", compact=True)
                yield MaskView(id="mask-view")
        yield Footer()

    # -- prepare ------------------------------------------------------------------------------

    def options(self):
        """PrepareOptions from the form; ValueError naming the field that is wrong."""
        from engine.prepare import PrepareOptions

        value = {k: self.query_one(f"#prep-{k}", Input).value.strip() for k in ("input", "output", "val-file")}
        if not value["input"]:
            raise ValueError("input: give a .jsonl/.json file or a folder of them")
        if not value["output"]:
            raise ValueError("output: give the folder to write the prepared dataset to")
        raw_split = self.query_one("#prep-val-split", Input).value.strip() or "0"
        try:
            val_split = float(raw_split)
        except ValueError:
            raise ValueError(f"val split must be a number in [0, 1), got {raw_split!r}") from None
        return PrepareOptions(
            input=value["input"], output=value["output"],
            kind=str(self.query_one("#prep-kind", Select).value),
            tokenization=str(self.query_one("#prep-tokenization", Select).value),
            val_split=val_split, val_file=value["val-file"] or None,
            overwrite=self.query_one("#prep-overwrite", Checkbox).value)

    @on(Button.Pressed, "#prepare")
    def action_prepare(self) -> None:
        if self.preparing:
            return
        try:
            opts = self.options()
        except ValueError as e:
            self._report(str(e), error=True)
            return
        self._cancel.clear()
        self._set_preparing(True)
        self.query_one("#data-progress", ProgressBar).update(total=None, progress=0)
        self._report(f"Preparing {opts.input} -> {opts.output} ...")
        self.run_prepare(opts)

    @work(thread=True, exclusive=True, exit_on_error=False, group="prepare")
    def run_prepare(self, opts) -> None:
        from engine.prepare import PrepareCancelled, PrepareError, prepare

        worker = get_current_worker()
        cancel = self._cancel
        try:
            report = prepare(opts, lambda done, total: self.post_message(PrepareProgress(done, total)),
                             lambda: cancel.is_set() or worker.is_cancelled)
        except PrepareCancelled as e:
            self.post_message(PrepareFinished(error=str(e), cancelled=True))
        except (PrepareError, OSError, ValueError) as e:
            self.post_message(PrepareFinished(error=str(e)))
        else:
            self.post_message(PrepareFinished(report))

    @on(PrepareProgress)
    def _progress(self, message: PrepareProgress) -> None:
        self.query_one("#data-progress", ProgressBar).update(total=message.total, progress=message.done)

    @on(PrepareFinished)
    def _prepared(self, message: PrepareFinished) -> None:
        self._set_preparing(False)
        bar = self.query_one("#data-progress", ProgressBar)
        if message.report is None:
            bar.update(total=100, progress=0)
            self._report(message.error or "failed", error=not message.cancelled)
            return
        self.report = message.report
        bar.update(total=1, progress=1)
        self._report("\n".join(prepare_report_lines(message.report)))
        self.query_one("#data-path", Input).value = str(message.report.output)
        self.open_dataset(str(message.report.output))

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        if self.preparing:
            self._cancel.set()
            self._report("Cancelling ...")

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:
            if event.worker.group == "prepare":
                self._set_preparing(False)
            self.app.push_screen(ErrorDialog("Data: a worker failed",
                                             f"{type(event.worker.error).__name__}: {event.worker.error}"))

    def _set_preparing(self, on: bool) -> None:
        self.preparing = on
        self.query_one("#prepare", Button).disabled = on
        self.query_one("#cancel", Button).disabled = not on

    def _report(self, text: str, error: bool = False) -> None:
        w = self.query_one("#prepare-report", Static)
        w.update(text)
        w.set_class(error, "-error")

    # -- statistics ---------------------------------------------------------------------------

    @on(Input.Submitted, "#data-path")
    @on(Button.Pressed, "#open-dataset")
    def _open_pressed(self) -> None:
        path = self.query_one("#data-path", Input).value.strip()
        if path:
            self.open_dataset(path)

    def open_dataset(self, path: str) -> None:
        """Open a prepared dataset (in a worker) and show its statistics and first episode."""
        self.query_one("#data-stats-text", Static).update(f"Opening {path} ...")
        self.run_worker(lambda: self._open(path), thread=True, group="open", exclusive=True, exit_on_error=False)

    def _open(self, path: str) -> None:
        from engine.dataset import DatasetError, open_dataset

        try:
            ds = open_dataset(path)
            stats = dataset_stats(ds)
        except (DatasetError, OSError, ValueError) as e:
            self.post_message(DatasetOpened(path, error=str(e)))
            return
        self.post_message(DatasetOpened(path, ds, stats))

    @on(DatasetOpened)
    def _dataset_opened(self, message: DatasetOpened) -> None:
        table = self.query_one("#data-stats-table", Static)
        text = self.query_one("#data-stats-text", Static)
        if message.error is not None:
            table.update("")
            text.update(f"error: {message.error}")
            return
        self.dataset, self.stats = message.dataset, message.stats
        table.update(stats_table(message.stats))
        text.update("\n".join([title(message.dataset), *notes(message.dataset, message.stats)]))
        self.query_one("#data-tabs", TabbedContent).active = "tab-stats"
        self.show_episode("train", 0)

    # -- mask view ----------------------------------------------------------------------------

    @on(Input.Submitted, "#mask-episode")
    @on(Button.Pressed, "#mask-show")
    def _show_pressed(self) -> None:
        if self.dataset is None:
            self.query_one(MaskView).show_message("Open a prepared dataset first (Stats tab).")
            return
        split = self.dataset.split(str(self.query_one("#mask-split", Select).value))
        if split is None:
            self.query_one(MaskView).show_message("That split is empty.")
            return
        try:
            i = find_episode(split, self.query_one("#mask-episode", Input).value)
        except ValueError as e:
            self.query_one(MaskView).show_message(str(e))
            return
        self.show_episode(split.name, i)

    @on(Select.Changed, "#mask-split")
    def _split_changed(self, event: Select.Changed) -> None:
        if self.dataset is not None and self.dataset.split(str(event.value)) is not None:
            self.show_episode(str(event.value), 0)

    @on(Button.Pressed, "#mask-prev")
    def _prev(self) -> None:
        self.action_episode(-1)

    @on(Button.Pressed, "#mask-next")
    def _next(self) -> None:
        self.action_episode(1)

    def action_episode(self, step: int) -> None:
        if self.dataset is None:
            return
        name = str(self.query_one("#mask-split", Select).value)
        split = self.dataset.split(name)
        if split is not None:
            self.show_episode(name, (self.episode_index + step) % len(split))

    def show_episode(self, split_name: str, i: int) -> None:
        """Draw episode i of a split with its loss mask."""
        split = self.dataset.split(split_name)
        view = self.query_one(MaskView)
        if split is None:
            view.show_message(f"The {split_name} split is empty.")
            return
        picker = self.query_one("#mask-split", Select)
        if picker.value != split_name:
            with picker.prevent(Select.Changed):
                picker.value = split_name
        ids, mask = split.episode(i)
        rec = split.meta(i)
        self.episode_index = i
        src = f", from {rec['source']}" if rec.get("source") else ""
        view.show(f"{split_name} episode {i} of {len(split)}: {rec['id']}{src} · {len(ids)} tokens, "
                  f"{int(mask.sum())} trained", ids, mask, self.dataset.tokenizer())
