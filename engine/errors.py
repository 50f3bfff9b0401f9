"""The one base of every error mypt words for its user.

A `MyptError`'s message is meant to be shown as it is, on one line where it can be: it names
the file, line, key or flag at fault and what to do. The CLI prints it after `error:` and exits
non-zero; the app shows it in a dialog. Anything else that escapes is a bug: the CLI and the app
write its traceback to a log file and say where.
"""

from __future__ import annotations


class MyptError(Exception):
    """A problem with what the user gave (a file, a flag, a checkpoint), worded for them."""
