"""While the app runs, warnings and log records from any thread become notifications.

Anything printed to the real terminal from a thread (torch warnings, log handlers made before
the app started) would be written over the screen; these hooks route it to the app instead.
"""

from __future__ import annotations

import logging
import warnings
from typing import Callable

from textual.app import App

from mypt_tui.app.messages import Notice


class _LogHandler(logging.Handler):
    def __init__(self, app: App) -> None:
        super().__init__(logging.WARNING)
        self.app = app

    def emit(self, record: logging.LogRecord) -> None:
        self.app.post_message(Notice(f"{record.name}: {record.getMessage()}",
                                     "error" if record.levelno >= logging.ERROR else "warning"))


def _to_stream(handler: logging.Handler) -> bool:
    return isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler)


def capture_warnings_and_logs(app: App) -> Callable[[], None]:
    """While the app runs, Python warnings and log records (from any thread, torch's included)
    become notifications instead of text written over the screen. Returns the undo."""
    ours = _LogHandler(app)
    root = logging.getLogger()
    # Handlers that write to a stream hold the real stderr from before the app started (torch
    # configures its loggers so, with propagate off): every such handler is swapped for ours.
    saved: list[tuple[logging.Logger, list[logging.Handler]]] = [(root, root.handlers[:])]
    root.handlers[:] = [ours]
    for logger in list(logging.Logger.manager.loggerDict.values()):
        if isinstance(logger, logging.Logger) and any(_to_stream(h) for h in logger.handlers):
            saved.append((logger, logger.handlers[:]))
            kept = [h for h in logger.handlers if not _to_stream(h)]
            logger.handlers[:] = kept + ([ours] if not logger.propagate else [])
    saved_showwarning = warnings.showwarning

    def showwarning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
        app.post_message(Notice(f"{category.__name__}: {message}"))

    warnings.showwarning = showwarning

    def restore() -> None:
        warnings.showwarning = saved_showwarning
        for logger, handlers in saved:
            logger.handlers[:] = handlers

    return restore


