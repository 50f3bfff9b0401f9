"""Errors as the user should read them, in the CLI and in the app's dialogs.

Ours (engine.errors.MyptError and its kind) carry a message written for the user and are shown
as they are. A system error (disk full, read-only folder, permission, file-size limit) is one line
naming the path and what to do. Anything else is a bug: its traceback goes to a log file whose
path the message gives, and the user never sees a traceback on the terminal.
"""

from __future__ import annotations

import errno
import os
import time
import traceback
from pathlib import Path

from engine.errors import MyptError


_OS_HINTS = {
    errno.ENOSPC: "the disk is full: free some space and run again",
    errno.EDQUOT: "the disk quota is used up: free some space and run again",
    errno.EFBIG: "the file is larger than this process may write (ulimit -f): raise the limit",
    errno.EROFS: "the folder is on a read-only file system: choose a writable one",
    errno.EACCES: "permission denied: choose a folder you may write, or fix its permissions",
    errno.EPERM: "operation not permitted: choose a folder you may write",
    errno.ENOENT: "no such file or folder",
}


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


def os_error_line(exc: OSError) -> str:
    """A system error as one line: the path, what happened, what to do."""
    where = exc.filename if exc.filename is not None else ""
    hint = _OS_HINTS.get(exc.errno or 0, exc.strerror or str(exc))
    return f"{where}: {hint}" if where else hint


def describe_error(exc: BaseException) -> str:
    """Any exception as one message: ours as written, a system error with its path, a bug with its log."""
    if isinstance(exc, MyptError):
        return str(exc)
    if isinstance(exc, OSError):
        return os_error_line(exc)
    if isinstance(exc, MemoryError):
        return "out of memory: use a smaller batch_size or block_size (see Troubleshooting in the README)"
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
