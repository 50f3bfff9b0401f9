"""Text from datasets and models, made safe to show on a terminal.

Episode text and model output are data, not terminal commands: an escape sequence in them could
retitle the window, clear the screen or worse. Control characters (other than newline and tab)
are shown as visible escapes (`\\x1b`) instead of being sent to the terminal.
"""

from __future__ import annotations

import re

_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """`text` with every control character except newline and tab written as `\\xNN`."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
