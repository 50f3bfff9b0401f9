"""The comments a config file writes beside its keys (`learning_rate = 1e-3  # From scratch: ...`).

The Config screen shows a key's own comment in place of the guide's generic note: the guide's
notes are for its 750M fine-tune, and beside the demo's values they contradict the file
("Lower LR for fine-tuning" beside a from-scratch learning rate of 1e-3).
"""

from __future__ import annotations

import tomlkit
from tomlkit.exceptions import TOMLKitError


def key_comments(text: str) -> dict[str, str]:
    """Top-level key -> the comment at the end of its line (without the `#`); {} for a file that
    is not TOML (a MyPT .json has no comments)."""
    try:
        doc = tomlkit.parse(text)
    except (TOMLKitError, ValueError):
        return {}
    out = {}
    for key in doc:
        comment = getattr(getattr(doc.item(key), "trivia", None), "comment", "")
        if comment:
            out[key] = comment.lstrip("#").strip()
    return out
