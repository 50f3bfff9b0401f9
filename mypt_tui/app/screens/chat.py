"""The Chat screen: talk to a checkpoint, or to two side by side ("base vs phase 3a").

Everything slow happens in thread workers that only post messages: the checkpoint list is
scanned (every few seconds, so the newest step of a run still training shows up), a model
loads, a reply is generated. The generation worker folds engine.chat updates into a reply
and posts snapshots of it about twelve times a second; a snapshot replaces an older
one still queued (`can_replace`), so a slow terminal never works through stale updates.
Widgets are touched only by the message handlers, on the UI thread.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Button, Checkbox, Footer, Input, Label, Select, TextArea
from textual.worker import Worker, WorkerState, get_current_worker

from engine.generate import SamplingConfig
from mypt_tui.app.messages import Replying
from mypt_tui.app.widgets.chat_view import ChatPane, ChatTurn
from mypt_tui.app.widgets.dialogs import ErrorDialog
from mypt_tui.app.widgets.nav import NAV_BINDINGS, NavBar
from mypt_tui.app.widgets.sampling import SamplingControls
from mypt_tui.present.checkpoints import checkpoint_options, newest_choice, pane_title, raw_note
from mypt_tui.present.fit import elide_middle
from mypt_tui.services.replies import Segment, stream_replies

PANES = ("A", "B")
SETTINGS_WIDTH = 30  # columns of the settings panel
LABEL_WIDTH = SETTINGS_WIDTH - 6  # a checkpoint's label in its list (longer ones are elided in the middle)
DEFAULT_SYSTEM = "You are a helpful assistant."


@dataclass
class ChatLaunch:
    """What `mypt chat` opens the screen with; the screen reads `app.chat_launch` on mount."""

    model: str | None = None
    root: str | None = None  # None: the app's checkpoints folder
    system: str | None = None
    sampling: SamplingConfig | None = None
    device: str = "auto"


# -- messages (posted by workers, handled on the UI thread) ----------------------------------

class CheckpointsFound(Message, bubble=False):
    def __init__(self, infos: list) -> None:
        super().__init__()
        self.infos = infos


class ModelLoaded(Message, bubble=False):
    def __init__(self, pane: str, path: str, session=None, error: str | None = None) -> None:
        super().__init__()
        self.pane, self.path, self.session, self.error = pane, path, session, error


class ReplyUpdate(Message, bubble=False):
    """The reply of `turn` in `pane` so far; `final` when the turn is over."""

    def __init__(self, pane: str, turn: int, segments: tuple[Segment, ...], final: bool = False) -> None:
        super().__init__()
        self.pane, self.turn, self.segments, self.final = pane, turn, segments, final

    def can_replace(self, message: Message) -> bool:
        # A queued snapshot of the same reply holds everything this one does.
        return (isinstance(message, ReplyUpdate) and message.pane == self.pane
                and message.turn == self.turn and not self.final)


class ReplyFinished(Message, bubble=False):
    """Every pane's reply of a turn is over (or failed)."""


class ChatScreen(Screen):
    """Checkpoint, system prompt and sampling on the left; the conversation on the right."""

    STREAM_INTERVAL = 1 / 12  # seconds between reply snapshots: smooth to read, and cheap enough
    # that a fast model loses little speed to redrawing (tests set 0: every token)
    RESCAN_SECONDS = 5.0

    BINDINGS = [
        *NAV_BINDINGS,
        Binding("escape", "stop", "Stop"),
        Binding("ctrl+l", "clear", "Clear"),
        Binding("ctrl+n", "toggle_compare", "Compare"),
        Binding("ctrl+o", "eval", "Eval"),  # not ctrl+e: text fields use it (end of line)
        Binding("ctrl+r", "rescan", "Rescan", show=False),
        Binding("ctrl+t", "toggle_settings", "Settings"),
    ]

    DEFAULT_CSS = """
    ChatScreen #chat-body { height: 1fr; }
    ChatScreen #chat-settings { width: %d; height: 1fr; padding: 0 1; border-right: vkey $primary-darken-2; }
    ChatScreen #chat-settings.-hidden { display: none; }
    ChatScreen #chat-settings .heading { margin-top: 1; text-style: bold; }
    ChatScreen #chat-settings Select { margin-bottom: 0; }
    ChatScreen #system { height: 5; }
    ChatScreen #ckpt-B, ChatScreen #pane-B { display: none; }
    ChatScreen.-compare #ckpt-B, ChatScreen.-compare #pane-B { display: block; }
    ChatScreen #chat-main { width: 1fr; }
    ChatScreen #panes { height: 1fr; }
    ChatScreen #chat-input { height: 1; margin-top: 1; }
    ChatScreen #message { width: 1fr; }
    ChatScreen #chat-input Button { min-width: 6; margin-left: 1; }
    """ % SETTINGS_WIDTH

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.sessions: dict[str, object | None] = {p: None for p in PANES}
        self.loading_path: dict[str, str | None] = {p: None for p in PANES}
        self.root = "checkpoints"
        self.device = "auto"
        self.busy = False
        self._turn = 0
        self._stop = threading.Event()
        self._extra: list[str] = []  # checkpoints named by path, outside the root
        self._launch: ChatLaunch | None = None
        self._wanted: str | None = None  # the launch checkpoint, picked once the list is in
        self.checkpoint_choices: list[tuple[str, str]] | None = None

    def compose(self) -> ComposeResult:
        launch = self._launch_options()
        yield NavBar()
        with Horizontal(id="chat-body"):
            with VerticalScroll(id="chat-settings"):
                yield Label("Checkpoint", classes="heading")
                yield Select([], prompt="pick a checkpoint", id="ckpt-A", compact=True)
                yield Checkbox("compare side by side", id="compare", compact=True)
                yield Select([], prompt="second checkpoint", id="ckpt-B", compact=True)
                yield Button("Rescan checkpoints", id="rescan", compact=True)
                yield Label("System prompt", classes="heading")
                yield TextArea(launch.system if launch.system is not None else DEFAULT_SYSTEM, id="system",
                               soft_wrap=True, show_line_numbers=False, compact=True)
                yield Label("Sampling", classes="heading")
                yield SamplingControls(launch.sampling, id="sampling")
            with Vertical(id="chat-main"):
                with Horizontal(id="panes"):
                    for p in PANES:
                        yield ChatPane(p, id=f"pane-{p}")
                with Horizontal(id="chat-input"):
                    yield Input(placeholder="Message (enter sends)", id="message", compact=True,
                                select_on_focus=False)
                    yield Button("Send", id="send", variant="primary", compact=True)
                    yield Button("Stop", id="stop", variant="error", compact=True, disabled=True)
                    yield Button("Clear", id="clear", compact=True)
        yield Footer()

    def _launch_options(self) -> ChatLaunch:
        if self._launch is None:
            launch = getattr(self.app, "chat_launch", None)
            self._launch = launch if isinstance(launch, ChatLaunch) else ChatLaunch()
        return self._launch

    def on_mount(self) -> None:
        launch = self._launch_options()
        self.root = launch.root or str(getattr(self.app, "checkpoints_root", "checkpoints"))
        self.device = launch.device
        if launch.model:
            target = Path(launch.model)
            if not target.exists() and (Path(self.root) / target).exists():
                target = Path(self.root) / target
            self._extra.append(str(target))
            self._wanted = str(target)
        self.rescan()
        self._rescan_timer = self.set_interval(self.RESCAN_SECONDS, self.rescan)
        self.query_one("#message", Input).focus()

    def on_screen_suspend(self) -> None:
        self._rescan_timer.pause()  # another screen is shown: no need to watch the disk

    def on_screen_resume(self) -> None:
        if hasattr(self, "_rescan_timer"):
            self.rescan()
            self._rescan_timer.resume()

    # -- checkpoints ---------------------------------------------------------------------------

    def rescan(self) -> None:
        self.run_worker(self._scan, thread=True, group="scan", exclusive=True, exit_on_error=False)

    def _scan(self) -> None:
        from engine.checkpoint import list_checkpoints

        self.post_message(CheckpointsFound(list_checkpoints(self.root)))

    @on(CheckpointsFound)
    def _checkpoints_found(self, message: CheckpointsFound) -> None:
        options = [(elide_middle(label, LABEL_WIDTH), value)
                   for label, value in checkpoint_options(message.infos, self._extra)]
        if options != self.checkpoint_choices:  # unchanged: keep the lists as the user sees them
            self.checkpoint_choices = options
            for p in PANES:
                picker = self.query_one(f"#ckpt-{p}", Select)
                current = picker.value
                with picker.prevent(Select.Changed):
                    picker.set_options(options)
                    if current is not Select.NULL and any(v == current for _, v in options):
                        picker.value = current
        if self._wanted is None and self.query_one("#ckpt-A", Select).value is Select.NULL:
            self._wanted = newest_choice(message.infos)  # reached with F3: the newest checkpoint, ready
        if self._wanted is not None:
            wanted, self._wanted = self._wanted, None
            self.query_one("#ckpt-A", Select).value = wanted

    @on(Select.Changed, "#ckpt-A, #ckpt-B")
    def _checkpoint_picked(self, event: Select.Changed) -> None:
        pane = event.select.id.split("-")[1]
        if self.query_one("#chat-settings").has_focus_within:
            self.query_one("#message", Input).focus()  # picked: what comes next is typing a message
        if event.value is Select.NULL:
            self.sessions[pane] = None
            self.query_one(f"#pane-{pane}", ChatPane).set_title("no checkpoint")
            return
        path = str(event.value)
        if self.loading_path[pane] == path:
            return
        self.load(pane, path)

    def load(self, pane: str, path: str) -> None:
        """Load a checkpoint into a pane (in a worker); a newer choice wins over a slower one."""
        self.loading_path[pane] = path
        self.sessions[pane] = None
        self.query_one(f"#pane-{pane}", ChatPane).set_title(f"loading {path} ...")
        self.run_worker(partial(self._load, pane, path, self.device), thread=True, group=f"load-{pane}",
                        exclusive=True, exit_on_error=False)

    def _load(self, pane: str, path: str, device: str) -> None:
        from engine.chat import ChatSession
        from engine.checkpoint import CheckpointError
        from engine.device import pick_device
        from engine.tokenizer import TokenizerError

        try:
            session = ChatSession.from_checkpoint(path, device=str(pick_device(device)), root=self.root)
        except (CheckpointError, TokenizerError, OSError, ValueError, RuntimeError) as e:
            self.post_message(ModelLoaded(pane, path, error=str(e)))
            return
        self.post_message(ModelLoaded(pane, path, session))

    @on(ModelLoaded)
    def _model_loaded(self, message: ModelLoaded) -> None:
        if self.loading_path[message.pane] != message.path:
            return  # another checkpoint was picked meanwhile
        pane = self.query_one(f"#pane-{message.pane}", ChatPane)
        if message.error is not None:
            self.loading_path[message.pane] = None
            pane.set_title("could not load")
            pane.add(ChatTurn("note", f"cannot load {message.path}: {message.error}"))
            self.notify(message.error, title="Checkpoint", severity="error")
            return
        self.sessions[message.pane] = message.session
        pane.set_title(*pane_title(message.session, self.root))
        if pane.texts():
            pane.add(ChatTurn("note", f"now talking to {message.path} (a new conversation)"))
        if note := raw_note(message.session):
            pane.add(ChatTurn("note", note))

    # -- sending ------------------------------------------------------------------------------

    def active_panes(self) -> list[str]:
        return list(PANES) if self.has_class("-compare") else ["A"]

    @on(Input.Submitted, "#message")
    @on(Button.Pressed, "#send")
    def action_send(self) -> None:
        if self.busy:
            self.notify("A reply is still being written: stop it first (escape).", severity="warning")
            return
        box = self.query_one("#message", Input)
        text = box.value.strip()
        if not text:
            return
        panes = self.active_panes()
        missing = [p for p in panes if self.sessions[p] is None]
        if missing:
            what = "still loading" if any(self.loading_path[p] for p in missing) else "not picked"
            self.notify(f"Checkpoint {' and '.join(missing)} is {what}.", severity="warning")
            return
        try:
            sampling = self.query_one(SamplingControls).config()
        except ValueError as e:
            self.notify(str(e), title="Sampling", severity="error")
            return
        system = self.query_one("#system", TextArea).text.strip() or None
        self._turn += 1
        targets = []
        for p in panes:
            session = self.sessions[p]
            session.system, session.sampling = system, sampling
            view = self.query_one(f"#pane-{p}", ChatPane)
            view.add(ChatTurn("user", text))
            view.add(ChatTurn("assistant", turn=self._turn)).show((), streaming=True)
            targets.append((p, session))
        box.value = ""
        self._stop.clear()
        self._set_busy(True)
        self.generate(targets, text, self._turn, self.STREAM_INTERVAL)

    @work(thread=True, exclusive=True, exit_on_error=False, group="chat")
    def generate(self, targets: list, text: str, turn: int, interval: float) -> None:
        """Stream every pane's reply, a token from each in turn, posting reply snapshots."""
        worker = get_current_worker()
        stop = self._stop

        def should_stop() -> bool:
            return stop.is_set() or worker.is_cancelled

        streams = {p: s.send(text, should_stop=should_stop) for p, s in targets}
        try:
            stream_replies(streams, interval, lambda p, segments, final: self.post_message(
                ReplyUpdate(p, turn, segments, final)))
        finally:
            self.post_message(ReplyFinished())

    @on(ReplyUpdate)
    def _reply_update(self, message: ReplyUpdate) -> None:
        self.query_one(f"#pane-{message.pane}", ChatPane).show_reply(message.turn, message.segments,
                                                                     streaming=not message.final)

    @on(ReplyFinished)
    def _reply_finished(self) -> None:
        self._set_busy(False)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "chat" and event.state in (WorkerState.ERROR, WorkerState.CANCELLED):
            self._set_busy(False)
        if event.state == WorkerState.ERROR:  # a bug, not a user error: say so, keep the app
            self.app.push_screen(ErrorDialog("Chat: a worker failed",
                                             f"{type(event.worker.error).__name__}: {event.worker.error}"))

    def _set_busy(self, busy: bool) -> None:
        self.busy = busy
        self.post_message(Replying(busy))  # the app asks before quitting while a reply streams
        self.query_one("#stop", Button).disabled = not busy
        self.query_one("#send", Button).disabled = busy

    # -- actions ------------------------------------------------------------------------------

    @on(Button.Pressed, "#stop")
    def action_stop(self) -> None:
        if self.busy:
            self._stop.set()

    @on(Button.Pressed, "#clear")
    def action_clear(self) -> None:
        if self.busy:
            self.notify("Stop the reply before clearing.", severity="warning")
            return
        for p in PANES:
            if self.sessions[p] is not None:
                self.sessions[p].clear()
            self.query_one(f"#pane-{p}", ChatPane).clear()

    def action_eval(self) -> None:
        """Score pane A's checkpoint on the dataset it was trained on (the table of `mypt eval`)."""
        from mypt_tui.app.screens.eval import open_eval

        path = self.loading_path["A"]
        if path is None:
            self.notify("pick a checkpoint first", title="Eval", severity="warning")
            return
        open_eval(self, path, self.root)

    @on(Button.Pressed, "#rescan")
    def action_rescan(self) -> None:
        self.rescan()

    @on(Checkbox.Changed, "#compare")
    def _compare_changed(self, event: Checkbox.Changed) -> None:
        self.set_class(event.value, "-compare")

    def action_toggle_compare(self) -> None:
        box = self.query_one("#compare", Checkbox)
        box.value = not box.value

    def action_toggle_settings(self) -> None:
        settings = self.query_one("#chat-settings")
        if settings.has_focus_within:  # a hidden widget keeps the focus otherwise, and q would quit
            self.query_one("#message", Input).focus()
        settings.toggle_class("-hidden")

    def on_key(self, event: events.Key) -> None:
        """Typing goes to the message box wherever the focus is (a button, a list): a bare `q`
        is text in Chat, never quit (ctrl+q quits)."""
        focused = self.focused
        if not event.is_printable or event.key == "space" or isinstance(focused, (Input, TextArea)):
            return
        box = self.query_one("#message", Input)
        box.focus()
        box.insert_text_at_cursor(event.character or "")
        event.stop()
        event.prevent_default()
