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


MAX_DEPTH = 64  # arrays and objects inside each other: far above any real episode, config or tool call


class JsonError(MyptError, ValueError):
    """Text that is not JSON we can read; the message names the file (and line) and why."""


class JsonTooDeep(JsonError):
    """Valid JSON nested deeper than MAX_DEPTH (hostile, or a bug): later code could not walk it."""


def depth(value: Any) -> int:
    """How deeply arrays and objects nest in a parsed value (walked without recursion)."""
    deepest, todo = 0, [(value, 1)]
    while todo:
        item, level = todo.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, level)
            todo.extend((child, level + 1) for child in item)
    return deepest


def loads(text: str | bytes, max_depth: int = MAX_DEPTH) -> Any:
    """json.loads that refuses JSON nested deeper than `max_depth`: JsonTooDeep, never a
    RecursionError. Invalid JSON raises json.JSONDecodeError as json.loads does."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise JsonTooDeep(f"JSON nested more than {max_depth} deep") from None
    if depth(value) > max_depth:
        raise JsonTooDeep(f"JSON nested more than {max_depth} deep")
    return value


def parse_json(text: str, where: str = "") -> Any:
    """The value of a JSON text; JsonError (naming `where`, line and column) when it is not one."""
    prefix = f"{where}: " if where else ""
    try:
        return loads(text)
    except json.JSONDecodeError as e:
        raise JsonError(f"{prefix}invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}") from None
    except JsonTooDeep as e:
        raise JsonTooDeep(f"{prefix}{e}") from None


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
