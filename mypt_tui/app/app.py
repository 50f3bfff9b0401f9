"""The terminal app: five screens (modes) over one engine. It only renders engine events and
calls engine functions; slow work runs in thread workers that post messages.

Leaving: q / ctrl+q / ctrl+c quit when nothing trains in the app; while a run trains in the app
they ask, stop it (a final checkpoint) and quit once it has stopped. A hang-up (the terminal or
the SSH connection went away) stops an in-app run the same way without asking. A detached run
is another process and keeps going either way.
"""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import threading
import time
from pathlib import Path
from typing import Callable, Iterable

from textual import events
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.reactive import var
from textual.screen import Screen

from engine.train.job import TrainRequest
from mypt_tui.app.capture import capture_warnings_and_logs
from mypt_tui.app.messages import Notice, Replying, ResumeRun
from mypt_tui.app.screens.chat import ChatScreen
from mypt_tui.app.screens.config import ConfigScreen
from mypt_tui.app.screens.data import DataScreen
from mypt_tui.app.screens.runs import RunsScreen
from mypt_tui.app.screens.train import TrainScreen
from mypt_tui.app.widgets.dialogs import Confirm, ErrorDialog
from mypt_tui.app.widgets.nav import SCREENS as SCREEN_KEYS
from mypt_tui.services.training import SessionState, TrainingSession

MAX_MESSAGES = 500  # lines of captured output / warnings kept for "Show messages"
HANG_UP_RUN_TIMEOUT = 600.0  # seconds an in-app run may take to stop and save after a hang-up
HANG_UP_GRACE = 5.0  # seconds the normal exit gets after that, before the process ends itself


class MyptApp(App):
    CSS_PATH = "app.tcss"
    TITLE = "mypt"
    SCREENS = {"train": TrainScreen, "runs": RunsScreen, "chat": ChatScreen, "data": DataScreen,
               "config": ConfigScreen}
    MODES = {mode: mode for mode in SCREENS}
    DEFAULT_MODE = "train"
    BINDINGS = [
        *(Binding(key, f"switch_mode('{mode}')", title) for key, mode, title in SCREEN_KEYS),
        Binding("q", "quit", "Quit", key_display="q/^c"),  # not priority: typing q in a field types q
        Binding("ctrl+q", "quit", "Quit", priority=True, show=False),
        Binding("ctrl+c", "quit", "Stop and quit", priority=True, show=False),
    ]

    # What trains, for the top bar of every screen. A var, not a reactive: a reactive on the App
    # repaints the whole screen on each change (a few times a second while a run trains).
    run_badge: var[str] = var("")

    def __init__(self, *, checkpoints: str | Path = "checkpoints", train_request: TrainRequest | None = None,
                 autostart: bool = False, mode: str = "train") -> None:
        self.DEFAULT_MODE = mode  # the screen to open on (mypt chat opens on Chat); read by App.__init__
        super().__init__()
        self.checkpoints_root = Path(checkpoints)
        self.training = TrainingSession()  # what trains; every screen asks it, not each other
        self.train_request = train_request  # `mypt train FLAGS` opened the app: the form shows it
        self.autostart = autostart
        self.messages: collections.deque[str] = collections.deque(maxlen=MAX_MESSAGES)
        self._quit_when_idle = False
        self.replying = False  # a chat reply streams (quitting asks first)
        self._last_notice: dict[str, float] = {}
        self._restore_capture: Callable[[], None] = lambda: None

    @property
    def train_screen(self) -> TrainScreen:
        return self.get_screen("train")  # type: ignore[return-value]

    def on_mount(self) -> None:
        self.begin_capture_print(self, stdout=True, stderr=True)
        self._restore_capture = capture_warnings_and_logs(self)
        try:
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self.hang_up)
        except (NotImplementedError, RuntimeError, ValueError, AttributeError):
            pass  # not the main thread (tests), or no SIGHUP on this platform

    def on_unmount(self) -> None:
        self._restore_capture()

    # -- leaving ---------------------------------------------------------------------------------

    async def action_quit(self) -> None:
        session = self.training
        if not session.training:
            if isinstance(self.screen, Confirm):
                return
            if self.replying:
                self.push_screen(Confirm("A reply is being written", "Chat is still writing a reply. Stop it "
                                         "and quit?", yes="Quit", no="Keep chatting"),
                                 lambda yes: self._leave() if yes else None)
                return
            self._leave()
            return
        if session.state == SessionState.STOPPING:
            self._quit_when_idle = True
            self.notify("stopping: the app quits once the final checkpoint is saved")
            return
        if isinstance(self.screen, Confirm):
            return
        monitor = self.train_screen.monitor
        step = monitor.step
        where = f" (step {step.step}/{monitor.max_iters})" if step is not None else ""

        def answer(yes: bool | None) -> None:
            if yes:
                self.stop_training_then_quit()

        self.push_screen(Confirm(
            "Training is running",
            f"{session.run_dir}{where} trains inside this app. Stop it after this step, save a final "
            "checkpoint, and quit?\n(A run started with \"Run detached\" keeps going without the app.)",
            yes="Stop and quit", no="Keep training"), answer)

    def _leave(self) -> None:
        session = self.training
        if session.state == SessionState.DETACHED and session.detached is not None:
            self.notify(f"the detached run (pid {session.detached.pid}) keeps going")
        self.exit()

    def on_replying(self, message: Replying) -> None:
        self.replying = message.busy

    def stop_training_then_quit(self) -> None:
        self._quit_when_idle = True
        self.training.request_stop()
        self.notify("stopping: a final checkpoint is saved, then the app quits")

    def training_ended(self) -> None:
        """The Train screen's worker finished (any way): quit now if quitting was asked for."""
        if self._quit_when_idle:
            self.exit()

    def hang_up(self) -> None:
        """SIGHUP: the terminal is gone. Stop an in-app run (final checkpoint) and leave.

        Textual's shutdown writes to the terminal, and with the terminal gone its writer thread
        has died: the shutdown then waits forever and the process outlives the connection. So a
        watchdog ends the process once the run has saved its checkpoint and the exit had a moment.
        """
        self.training.request_stop()
        threading.Thread(target=self._end_after_hang_up, name="mypt-hang-up", daemon=True).start()
        self.exit()

    def _end_after_hang_up(self) -> None:
        self.training.wait_ended(HANG_UP_RUN_TIMEOUT)
        time.sleep(HANG_UP_GRACE)
        self.end_process()

    def end_process(self) -> None:
        """End the process now (after a hang-up, when the normal exit is stuck on the gone terminal)."""
        os._exit(0)

    # -- the Runs screen's "Resume" --------------------------------------------------------------

    async def on_resume_run(self, message: ResumeRun) -> None:
        """Fill the Train form to continue a run from its latest checkpoint, and show it (once the
        Train screen is mounted: its first mount fills the form with the default job)."""
        await self.switch_mode("train")
        self.train_screen.fill_for_resume(message.run_dir)

    # -- output, warnings and logs from any thread -----------------------------------------------

    def on_print(self, event: events.Print) -> None:
        text = event.text.rstrip()
        if text:
            self.messages.append(text)
            if event.stderr:
                self._notify_once(text, "warning")

    def on_notice(self, message: Notice) -> None:
        self.messages.append(message.text)
        self._notify_once(message.text, message.severity)

    def _notify_once(self, text: str, severity: str) -> None:
        """Notify, but not the same text again within a minute (a warning in a loop is one toast)."""
        now = time.monotonic()
        if now - self._last_notice.get(text, -1e9) < 60:
            return
        self._last_notice[text] = now
        self.notify(text[:500], severity=severity, timeout=8)  # type: ignore[arg-type]

    def action_show_messages(self) -> None:
        text = "\n".join(self.messages) or "(nothing yet)"
        self.push_screen(ErrorDialog("Messages: warnings and output captured while the app runs", text))

    # -- the command palette ---------------------------------------------------------------------

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for key, mode, title in SCREEN_KEYS:
            yield SystemCommand(f"{title} screen", f"Show the {title} screen ({key.upper()})",
                                lambda mode=mode: self.switch_mode(mode))
        yield SystemCommand("Start training", "Start the run in the Train form inside the app (ctrl+r)",
                            lambda: self._on_train("action_start"))
        yield SystemCommand("Run detached", "Start the Train form's run as a background process that "
                            "survives the app and the connection (ctrl+g)", lambda: self._on_train("action_detach"))
        yield SystemCommand("Copy the train command", "Copy the Train form's run as `mypt train --no-ui ...`, "
                            "to run it headless in a shell", lambda: self._on_train("action_copy_command"))
        yield SystemCommand("Stop training", "Stop the run after this step; a final checkpoint is saved (ctrl+t)",
                            lambda: self._on_train("action_stop"))
        yield SystemCommand("Runs: refresh", "Show the Runs screen and rescan the checkpoints folder",
                            self._refresh_runs)
        yield SystemCommand("Show messages", "Warnings and output captured while the app runs",
                            self.action_show_messages)

    async def _refresh_runs(self) -> None:
        await self.switch_mode("runs")
        self.get_screen("runs").scan()

    def _on_train(self, action: str) -> None:
        self.switch_mode("train")
        getattr(self.train_screen, action)()


def run_app(train_request: TrainRequest | None = None, autostart: bool = False,
            checkpoints: str | Path = "checkpoints", mode: str = "train",
            configure: Callable[[MyptApp], None] = lambda app: None) -> int:
    """Run the app in this terminal, opening on `mode` (`configure` sets it up first); its exit code."""
    app = MyptApp(checkpoints=checkpoints, train_request=train_request, autostart=autostart, mode=mode)
    configure(app)
    app.run()
    return int(app.return_code or 0)
