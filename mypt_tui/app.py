"""The terminal app: five screens (modes) over one engine. It only renders engine events and
calls engine functions; slow work runs in thread workers that post messages."""

from __future__ import annotations

from textual.app import App
from textual.binding import Binding

from mypt_tui.screens.chat import ChatScreen
from mypt_tui.screens.config import ConfigScreen
from mypt_tui.screens.data import DataScreen
from mypt_tui.screens.runs import RunsScreen
from mypt_tui.screens.train import TrainScreen

SCREEN_KEYS = (("f1", "train", "Train"), ("f2", "runs", "Runs"), ("f3", "chat", "Chat"),
               ("f4", "data", "Data"), ("f5", "config", "Config"))


class MyptApp(App):
    CSS_PATH = "app.tcss"
    TITLE = "mypt"
    MODES = {"train": TrainScreen, "runs": RunsScreen, "chat": ChatScreen, "data": DataScreen,
             "config": ConfigScreen}
    DEFAULT_MODE = "train"
    BINDINGS = [
        *(Binding(key, f"switch_mode('{mode}')", title) for key, mode, title in SCREEN_KEYS),
        Binding("ctrl+q", "quit", "Quit"),
    ]
