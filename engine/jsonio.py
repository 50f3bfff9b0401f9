"""JSON from files and from models, read without ever crashing on what is in it.

Anything a user, a dataset or a model wrote may be broken or hostile: invalid JSON, or JSON
nested so deeply that Python's parser runs out of stack (a RecursionError, not a JSONDecodeError).
Both come back as a JsonError whose message names where and what.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .errors import MyptError


class JsonError(MyptError, ValueError):
    """Text that is not JSON we can read; the message names the file (and line) and why."""


def parse_json(text: str, where: str = "") -> Any:
    """The value of a JSON text; JsonError (naming `where`, line and column) when it is not one."""
    prefix = f"{where}: " if where else ""
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise JsonError(f"{prefix}invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}") from None
    except RecursionError:
        raise JsonError(f"{prefix}JSON nested too deeply") from None


def read_json(path: str | Path, what: str = "file") -> Any:
    """A JSON file's value: JsonError for a damaged one, OSError (with the path) when unreadable."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise JsonError(f"{path}: the {what} is not UTF-8 text (byte {e.start})") from None
    return parse_json(text, str(path))


def read_json_object(path: str | Path, what: str = "file") -> dict[str, Any]:
    """A JSON file that must hold an object {...}."""
    value = read_json(path, what)
    if not isinstance(value, dict):
        raise JsonError(f"{path}: the {what} must be a JSON object {{...}}, got {type(value).__name__}")
    return value
