"""The top bar: the five screens with their keys (click or press F1-F5), and what is training.

It replaces the Header on a screen so the footer has room for the screen's own keys in 80
columns; a screen that shows it re-binds F1-F5 with `show=False` (`NAV_BINDINGS`), as the bar
already shows them.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.events import Click
from textual.widgets import Static

SCREENS = (("f1", "train", "Train"), ("f2", "runs", "Runs"), ("f3", "chat", "Chat"), ("f4", "data", "Data"),
           ("f5", "config", "Config"))

NAV_BINDINGS = [Binding(key, f"app.switch_mode('{mode}')", title, show=False) for key, mode, title in SCREENS]


class NavTab(Static):
    def __init__(self, key: str, mode: str, title: str) -> None:
        super().__init__(f"{key.upper()} {title}", id=f"nav-{mode}", classes="nav-tab")
        self.mode = mode

    async def on_click(self, event: Click) -> None:
        event.stop()
        self.app.switch_mode(self.mode)


class NavBar(Horizontal):
    DEFAULT_CSS = """
    NavBar { height: 1; dock: top; background: $panel; }
    NavBar .nav-tab { width: auto; padding: 0 1; color: $text-muted; }
    NavBar .nav-tab:hover { background: $boost; }
    NavBar .nav-tab.-active { background: $primary; color: $text; text-style: bold; }
    NavBar #nav-badge { width: 1fr; content-align: right middle; padding: 0 1; color: $text-muted; }
    """

    def __init__(self, active: str | None = None) -> None:
        super().__init__()
        self.active = active  # the mode of the screen this bar sits on (each screen has its own bar)

    def compose(self) -> ComposeResult:
        for key, mode, title in SCREENS:
            yield NavTab(key, mode, title)
        yield Static("", id="nav-badge")

    def on_mount(self) -> None:
        # The screen's mode never changes, so the highlight is set once (not on every switch).
        active = self.active or type(self.screen).__name__.lower().removesuffix("screen")
        for tab in self.query(NavTab):
            tab.set_class(tab.mode == active, "-active")
        if hasattr(self.app, "run_badge"):
            self.watch(self.app, "run_badge", self._badge_changed)

    def _badge_changed(self, text: str) -> None:
        self.query_one("#nav-badge", Static).update(text, layout=False)  # one line of fixed size
