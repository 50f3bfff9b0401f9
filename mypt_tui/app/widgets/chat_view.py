"""The conversation view: one pane per checkpoint, a widget per turn, and the reply being
streamed, with thinking, citations, tool calls and tool results each drawn in their own style.

A reply is a list of segments `(kind, text)`; the generation worker builds it from
`engine.chat` updates (services/replies) and posts snapshots; the pane only draws them.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Static

from mypt_tui.present.fit import fit_parts
from mypt_tui.services.replies import Segment

STYLES = {
    "content": "",
    "think": "dim italic",
    "cite": "cyan",
    "toolcall": "yellow",
    "tool": "bold yellow",
    "result": "green",
    "tool-error": "bold red",
    "error": "bold red",
    "note": "dim",
    "stats": "dim",
}
LABELS = {"think": "thinking: ", "cite": "source: ", "toolcall": "tool call: "}


def render_segments(segments: tuple[Segment, ...] | list[Segment]) -> Text:
    """Segments as one Rich Text: blocks that are not reply text go on their own lines."""
    out = Text()
    for kind, text in segments:
        block = kind not in ("content",)
        if block and out.plain and not out.plain.endswith("\n"):
            out.append("\n")
        if kind in LABELS:
            out.append(LABELS[kind], style="bold " + STYLES[kind])
        out.append(text, style=STYLES.get(kind, ""))
        if block:
            out.append("\n")
    out.rstrip()
    return out


class ChatTurn(Static):
    """One turn: the user's message, an assistant reply (possibly still streaming) or a note."""

    DEFAULT_CSS = """
    ChatTurn { height: auto; padding: 0 1; margin-bottom: 1; }
    ChatTurn.user { background: $boost; border-left: thick $primary; }
    ChatTurn.assistant { border-left: thick $success; }
    ChatTurn.note { color: $text-muted; }
    ChatTurn.streaming { border-left: thick $warning; }
    """

    def __init__(self, role: str, text: str | Text = "", turn: int | None = None, **kw) -> None:
        super().__init__(text, classes=role, **kw)
        self.role = role
        self.turn = turn
        self.segments: tuple[Segment, ...] = ()

    def show(self, segments: tuple[Segment, ...], streaming: bool) -> None:
        self.segments = segments
        self.set_class(streaming, "streaming")
        self.update(render_segments(segments) if segments else Text("...", style="dim"))

    @property
    def plain(self) -> str:
        """The turn's text as shown (for tests and copy)."""
        return render_segments(self.segments).plain if self.segments else str(self.render())


class ChatPane(Vertical):
    """One checkpoint's side of the conversation: a title line and the scrolling turns."""

    DEFAULT_CSS = """
    ChatPane { width: 1fr; height: 1fr; border: round $primary-darken-2; }
    ChatPane #pane-title { height: 1; background: $panel; color: $text; padding: 0 1; }
    ChatPane VerticalScroll { height: 1fr; }
    """

    def __init__(self, pane: str, **kw) -> None:
        super().__init__(**kw)
        self.pane = pane
        self.title_parts: tuple[str, list[str]] = ("no checkpoint", [])

    def compose(self) -> ComposeResult:
        yield Static(f"{self.pane}: no checkpoint", id="pane-title")
        yield VerticalScroll(id="turns")

    def on_mount(self) -> None:
        self.turns.anchor()  # follow the newest text until the user scrolls up

    def set_title(self, name: str, details: list[str] = ()) -> None:
        """`A: name · details...`, fitted to the pane's width (the title is one line)."""
        self.title_parts = (name, list(details))
        self._fit_title()

    @property
    def title_text(self) -> str:
        return str(self.query_one("#pane-title", Static).render())

    def on_resize(self) -> None:
        self._fit_title()

    def _fit_title(self) -> None:
        title = self.query_one("#pane-title", Static)
        width = title.content_region.width or max(self.size.width - 4, 20)
        name, details = self.title_parts
        title.update(Text(fit_parts(f"{self.pane}: {name}", details, width)))

    @property
    def turns(self) -> VerticalScroll:
        return self.query_one("#turns", VerticalScroll)

    def add(self, turn: ChatTurn) -> ChatTurn:
        self.turns.mount(turn)
        return turn

    def reply_widget(self, turn: int) -> ChatTurn | None:
        for w in reversed(self.turns.children):
            if isinstance(w, ChatTurn) and w.turn == turn:
                return w
        return None

    def show_reply(self, turn: int, segments: tuple[Segment, ...], streaming: bool) -> None:
        w = self.reply_widget(turn)
        if w is None:
            return
        w.show(segments, streaming)

    def clear(self) -> None:
        self.turns.remove_children()

    def texts(self) -> list[tuple[str, str]]:
        """(role, text) of every turn shown, oldest first."""
        return [(w.role, w.plain) for w in self.turns.children if isinstance(w, ChatTurn)]
