"""The one base of every error mypt words for its user.

A `MyptError`'s message is meant to be shown as it is, on one line where it can be: it names
the file, line, key or flag at fault and what to do. The CLI prints it after `error:` and exits
non-zero; the app shows it in a dialog. Anything else that escapes is a bug: the CLI and the app
write its traceback to a log file and say where.
"""

from __future__ import annotations

import errno
from typing import Any


class MyptError(Exception):
    """A problem with what the user gave (a file, a flag, a checkpoint), worded for them."""


_OS_HINTS = {
    errno.ENOSPC: "the disk is full: free some space and run again",
    errno.EDQUOT: "the disk quota is used up: free some space and run again",
    errno.EFBIG: "the file is larger than this process may write (ulimit -f): raise the limit",
    errno.EROFS: "the folder is on a read-only file system: choose a writable one",
    errno.EACCES: "permission denied: choose a folder you may write, or fix its permissions",
    errno.EPERM: "operation not permitted: choose a folder you may write",
    errno.ENOENT: "no such file or folder",
}


def os_error_line(exc: OSError) -> str:
    """A system error as one line: the path, what happened, what to do."""
    where = exc.filename if exc.filename is not None else ""
    hint = _OS_HINTS.get(exc.errno or 0, exc.strerror or str(exc))
    return f"{where}: {hint}" if where else hint


def user_message(exc: BaseException) -> str | None:
    """The one line a user should read for an error they can act on (ours, or the system's);
    None for anything else, which is a bug."""
    if isinstance(exc, MyptError):
        return str(exc)
    if isinstance(exc, OSError):
        return os_error_line(exc)
    if isinstance(exc, MemoryError):
        return "out of memory: use a smaller batch_size or block_size (see Troubleshooting in the README)"
    return None
def shown(value: Any, limit: int = 40) -> str:
    """A value quoted in a message: its repr, cut short (a hostile input may be megabytes long)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."
