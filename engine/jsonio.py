"""JSON from files and from models, read without ever crashing on what is in it.

Anything a user, a dataset or a model wrote may be broken or hostile: invalid JSON, JSON nested
so deeply that Python's parser runs out of stack (a RecursionError, not a JSONDecodeError), a
number too long for Python to convert (a plain ValueError), or a string holding half of a UTF-16
surrogate pair (valid to the parser, but no UTF-8 can encode it: the crash would come later, when
the text is written or hashed). All come back as a JsonError, or a JSONDecodeError with a place.
"""

from __future__ import annotations

import json
import re
import sys
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


_SURROGATE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")  # an escape that may stand for half a pair
_LONG_NUMBER = re.compile(r"\d{%d,}" % (sys.get_int_max_str_digits() + 1 if hasattr(sys, "get_int_max_str_digits")
                                          else 4301))


def lone_surrogate(value: Any) -> str | None:
    """The first string character of a parsed value (keys included) that UTF-8 cannot encode."""
    todo = [value]
    while todo:
        item = todo.pop()
        if isinstance(item, dict):
            todo.extend(item.keys())
            todo.extend(item.values())
        elif isinstance(item, list):
            todo.extend(item)
        elif isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as e:
                return item[e.start]
    return None


def loads(text: str | bytes, max_depth: int = MAX_DEPTH) -> Any:
    """json.loads that refuses JSON nested deeper than `max_depth` (JsonTooDeep, never a
    RecursionError), and raises json.JSONDecodeError, with the place, for invalid JSON, for a
    number too long to convert and for a lone surrogate (text that is not Unicode)."""
    if isinstance(text, (bytes, bytearray)):
        text = text.decode("utf-8-sig") if text[:3] == b"\xef\xbb\xbf" else text.decode("utf-8")
    try:
        value = json.loads(text)
    except RecursionError:
        raise JsonTooDeep(f"JSON nested more than {max_depth} deep") from None
    except json.JSONDecodeError:
        raise
    except ValueError:  # Python's limit on the digits of an int
        long = _LONG_NUMBER.search(text)
        raise json.JSONDecodeError("a number with too many digits", text, long.start() if long else 0) from None
    if depth(value) > max_depth:
        raise JsonTooDeep(f"JSON nested more than {max_depth} deep")
    if _SURROGATE.search(text):
        bad = lone_surrogate(value)
        if bad is not None:
            code = f"\\u{ord(bad):04x}"
            at = text.lower().find(code)
            raise json.JSONDecodeError(f"{code} is half of a surrogate pair, not valid Unicode", text, max(at, 0))
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
