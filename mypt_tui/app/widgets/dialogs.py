"""Modal dialogs: a yes/no question and an error message (a failed job never closes the app)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Static

DIALOG_CSS = """
{cls} {{ align: center middle; }}
{cls} > Vertical {{ width: 72; max-width: 100%; height: auto; max-height: 90%; border: thick $primary;
                    background: $surface; padding: 0 1; }}
{cls} .dialog-title {{ text-style: bold; margin-bottom: 1; }}
{cls} VerticalScroll {{ height: auto; max-height: 14; }}
{cls} Horizontal {{ height: auto; align: right middle; margin-top: 1; }}
{cls} Button {{ margin-left: 1; }}
"""


class Confirm(ModalScreen[bool]):
    """A question with a yes and a no button; dismisses with True for yes."""

    DEFAULT_CSS = DIALOG_CSS.format(cls="Confirm")
    BINDINGS = [Binding("escape", "answer(False)", "Cancel"), Binding("y", "answer(True)", "Yes", show=False)]

    def __init__(self, title: str, message: str, yes: str = "Yes", no: str = "Cancel") -> None:
        super().__init__()
        self.title_text, self.message, self.yes, self.no = title, message, yes, no

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(self.title_text, classes="dialog-title")
            yield Static(self.message, markup=False)
            with Horizontal():
                yield Button(self.no, id="no")
                yield Button(self.yes, id="yes", variant="warning")

    def on_mount(self) -> None:
        self.query_one("#yes", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class ErrorDialog(ModalScreen[None]):
    """An error message with the details the user needs to act on it."""

    DEFAULT_CSS = DIALOG_CSS.format(cls="ErrorDialog") + """
    ErrorDialog > Vertical { border: thick $error; }
    """
    BINDINGS = [Binding("escape,enter", "close", "Close")]

    def __init__(self, title: str, message: str) -> None:
        super().__init__()
        self.title_text, self.message = title, message

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(self.title_text, classes="dialog-title")
            with VerticalScroll():
                yield Static(self.message, markup=False)
            with Horizontal():
                yield Button("OK", id="ok", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#ok", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(None)

    def action_close(self) -> None:
        self.dismiss(None)
