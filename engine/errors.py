"""The one base of every error mypt words for its user.

A `MyptError`'s message is meant to be shown as it is, on one line where it can be: it names
the file, line, key or flag at fault and what to do. The CLI prints it after `error:` and exits
non-zero; the app shows it in a dialog. Anything else that escapes is a bug: the CLI and the app
write its traceback to a log file and say where.
"""

from __future__ import annotations

from typing import Any


class MyptError(Exception):
    """A problem with what the user gave (a file, a flag, a checkpoint), worded for them."""


def shown(value: Any, limit: int = 40) -> str:
    """A value quoted in a message: its repr, cut short (a hostile input may be megabytes long)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."
