"""Errors as the user should read them, in the CLI and in the app's dialogs.

Ours (engine.errors.MyptError and its kind) carry a message written for the user and are shown
as they are. A system error (disk full, read-only folder, permission, file-size limit) is one line
naming the path and what to do. Anything else is a bug: its traceback goes to a log file whose
path the message gives, and the user never sees a traceback on the terminal.
"""

from __future__ import annotations

import os
import time
import traceback
from pathlib import Path

from engine.errors import user_message


def log_dir() -> Path:
    """Where tracebacks of unexpected errors go: $MYPT_LOG_DIR, else $XDG_STATE_HOME/mypt, else
    ~/.local/state/mypt."""
    if os.environ.get("MYPT_LOG_DIR"):
        return Path(os.environ["MYPT_LOG_DIR"])
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "mypt"


def write_crash_log(exc: BaseException) -> Path | None:
    """The traceback of an unexpected error, in a new file under log_dir(); None if it cannot be written."""
    folder = log_dir()
    path = folder / f"error-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)), encoding="utf-8")
    except OSError:
        return None
    return path


def describe_error(exc: BaseException) -> str:
    """Any exception as one message: ours as written, a system error with its path, a bug with its log."""
    message = user_message(exc)
    if message is not None:
        return message
    log = write_crash_log(exc)
    where = f"the traceback is in {log}" if log else "no traceback could be written"
    return f"unexpected {type(exc).__name__}: {exc} (a bug in mypt; {where})"


def resume_hint(run_dir: Path | None) -> str:
    """How to continue a run that ended early, if it has something to continue from."""
    from engine.runs import latest_checkpoint

    if run_dir is None or latest_checkpoint(run_dir, resumable=True) is None:
        return ""
    return (f"\n\nNothing already checkpointed is lost. Continue with\n"
            f"  mypt train --resume --output {run_dir}\n(or Runs, F2: select the run, Resume).")
