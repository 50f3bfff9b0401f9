"""A modal that scores a checkpoint on a dataset's held-out episodes and shows the per-family table.

The eval runs in a thread worker that only posts messages (progress, the finished report); the
screen owns the widgets. Cancel stops it at the next token; closing cancels it first. A failure
(a missing checkpoint, another tokenizer) is shown in the status line, never closing the app.

    self.app.push_screen(EvalScreen("checkpoints/demo_chat", "data/prepared/demo_chat"))
"""

from __future__ import annotations

from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import DataTable, ProgressBar, Static
from textual.worker import Worker

from mypt_tui.present.eval_table import HEADERS, metric_cells, pct


def trained_on(checkpoint: str | Path, root: str | Path = "checkpoints") -> tuple[Path, str | None]:
    """A checkpoint (name, run or folder) resolved, and the dataset it was trained on (from its
    meta.json, where the trainer records it), or None when unknown (e.g. an imported model)."""
    import json

    from engine.checkpoint import resolve_checkpoint

    path = resolve_checkpoint(checkpoint, root)
    try:
        dataset = json.loads((path / "meta.json").read_text(encoding="utf-8")).get("dataset")
    except (OSError, ValueError):
        dataset = None
    return path, dataset if isinstance(dataset, str) and Path(dataset).is_dir() else None


def open_eval(screen, checkpoint: str | Path, root: str | Path = "checkpoints") -> None:
    """Push the eval of a checkpoint on the dataset it was trained on (its val split)."""
    from engine.checkpoint import CheckpointError

    try:
        path, dataset = trained_on(checkpoint, root)
    except (CheckpointError, FileNotFoundError) as e:
        screen.notify(str(e), title="Eval", severity="error")
        return
    if dataset is None:
        screen.notify(f"{path} does not say which prepared dataset it was trained on; run "
                      f"`mypt eval --model {path} --dataset DIR`", title="Eval", severity="warning")
        return
    from engine.stream import is_stream

    if is_stream(Path(dataset)):
        screen.notify(f"{path} was pretrained on a token stream, which has no episodes to score; run "
                      f"`mypt eval --model {path} --dataset DIR` on a prepared chat set (a base model is asked "
                      "in plain text)", title="Eval", severity="warning")
        return
    screen.app.push_screen(EvalScreen(path, dataset, checkpoints_root=root))


class EvalScreen(ModalScreen[object]):
    """Dismisses with the EvalReport when the eval finished, else None."""

    DEFAULT_CSS = """
    EvalScreen { align: center middle; }
    EvalScreen > Vertical { width: 100; max-width: 100%; height: auto; max-height: 90%;
                            border: thick $primary; background: $surface; padding: 0 1; }
    EvalScreen #eval-title { text-style: bold; }
    EvalScreen #eval-status { margin: 1 0 0 0; }
    EvalScreen ProgressBar { margin-bottom: 1; }
    EvalScreen DataTable { height: auto; max-height: 20; }
    EvalScreen #eval-keys { color: $text-muted; margin-top: 1; }
    """
    BINDINGS = [Binding("c", "cancel", "Cancel eval"), Binding("escape,q", "close", "Close")]

    class Progress(Message):
        """Posted by the worker; a newer one replaces an older one still in the queue."""

        def __init__(self, progress) -> None:
            super().__init__()
            self.progress = progress  # engine.eval.EvalProgress

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, EvalScreen.Progress)

    class Finished(Message):
        def __init__(self, report) -> None:
            super().__init__()
            self.report = report  # engine.eval.EvalReport

    class Failed(Message):
        def __init__(self, error: Exception) -> None:
            super().__init__()
            self.error = error

    def __init__(self, checkpoint: str | Path, dataset: str | Path, *, split: str = "val", limit: int | None = None,
                 device: str = "cpu", checkpoints_root: str | Path = "checkpoints") -> None:
        super().__init__()
        self.checkpoint, self.dataset = str(checkpoint), str(dataset)
        self.split, self.limit, self.device, self.root = split, limit, device, checkpoints_root
        self.report = None
        self.state = "running"  # running, done, cancelled, failed
        self._worker: Worker | None = None

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(f"Eval of {self.checkpoint} on {self.dataset} ({self.split})", id="eval-title", markup=False)
            yield Static("Loading the checkpoint...", id="eval-status", markup=False)
            yield ProgressBar(total=None, show_eta=False, id="eval-progress")
            yield DataTable(id="eval-table", cursor_type="row", zebra_stripes=True)
            yield Static("c cancel  ·  esc close", id="eval-keys")

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns(*HEADERS)
        self._worker = self.run_eval()

    @work(thread=True, exclusive=True, exit_on_error=False, group="eval")
    def run_eval(self) -> None:
        from textual.worker import get_current_worker

        from engine.eval import EvalOptions, evaluate_checkpoint

        worker = get_current_worker()
        try:
            report = evaluate_checkpoint(self.checkpoint, self.dataset,
                                         EvalOptions(split=self.split, limit=self.limit), device=self.device,
                                         root=self.root, on_progress=lambda p: self.post_message(self.Progress(p)),
                                         should_stop=lambda: worker.is_cancelled)
        except Exception as e:  # shown in the status line; the app goes on
            self.post_message(self.Failed(e))
            return
        self.post_message(self.Finished(report))

    @on(Progress)
    def show_progress(self, message: Progress) -> None:
        if self.state != "running":
            return
        p = message.progress
        bar = self.query_one(ProgressBar)
        if p.phase == "loss":
            text = f"Teacher-forced loss: batch {p.done} of {p.total}"
        else:
            so_far = f", exact match so far {pct(p.exact / p.turns)}" if p.turns else ""
            text = f"Generating: episode {p.done} of {p.total} ({p.turns} turns{so_far})"
        bar.update(total=p.total, progress=p.done)
        self.query_one("#eval-status", Static).update(text)

    @on(Finished)
    def show_report(self, message: Finished) -> None:
        r = self.report = message.report
        self.state = "done"
        table = self.query_one(DataTable)
        table.clear()
        for name, m in r.rows():
            table.add_row(name, *metric_cells(m), key=name)
        step = "" if r.step is None else f" at step {r.step}"
        self.query_one("#eval-status", Static).update(
            f"Done in {r.seconds:.1f} s{step}: {r.overall.episodes} episodes, {r.overall.turns} turns, "
            f"exact match {pct(r.overall.exact_match)}, format {pct(r.overall.format_compliance)}")
        self.query_one(ProgressBar).display = False
        self.query_one("#eval-keys", Static).update("esc close")

    @on(Failed)
    def show_failure(self, message: Failed) -> None:
        if self.state != "running":
            return
        self.state = "failed"
        self.query_one("#eval-status", Static).update(f"Eval failed: {message.error}")
        self.query_one(ProgressBar).display = False
        self.query_one("#eval-keys", Static).update("esc close")

    def action_cancel(self) -> None:
        if self.state != "running":
            return
        self.state = "cancelled"
        if self._worker is not None:
            self._worker.cancel()
        self.query_one("#eval-status", Static).update("Eval cancelled")
        self.query_one(ProgressBar).display = False
        self.query_one("#eval-keys", Static).update("esc close")

    def action_close(self) -> None:
        if self._worker is not None and self.state == "running":
            self._worker.cancel()
        self.dismiss(self.report)
