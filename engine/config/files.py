"""Reading config files: TOML (mypt's format, flat, groups are comments; the table keys such as
eval_sets may be an inline table or a [section]) and MyPT's JSON (its
`comment*` keys, renamed keys, use_amp/amp_dtype, keys mypt does not implement). Every problem
names the file and the line of the key.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Mapping

import tomli

from .. import jsonio
from ..errors import shown
from .checks import ConfigError, Invalid, did_you_mean, show
from .schema import FIELDS
from .train_config import TrainConfig, build

# MyPT JSON spellings that mean one of our keys.
_MYPT_RENAMED = {"grad_accum_steps": "gradient_accumulation_steps"}
_AMP_DTYPES = {"bf16": "bf16", "bfloat16": "bf16", "fp16": "fp16", "float16": "fp16",
               "fp32": "fp32", "float32": "fp32"}


def resolve_config_path(path: str | os.PathLike) -> Path:
    """The file to read for `path`. A `.json` path that does not exist falls back to the `.toml`
    of the same name, so the guide's `--config configs/sft1/..._phase3a.json` works as written."""
    p = Path(path)
    if not p.exists() and p.suffix == ".json" and p.with_suffix(".toml").exists():
        return p.with_suffix(".toml")
    return p


def load_config(path: str | os.PathLike) -> TrainConfig:
    """Load a TOML (mypt) or JSON (MyPT) config; raise ConfigError naming file, line and key."""
    p = resolve_config_path(path)
    if p.suffix not in (".toml", ".json"):
        raise ConfigError([f"{path}: a config file must end in .toml (mypt) or .json (MyPT)"])
    try:
        text = p.read_text(encoding="utf-8-sig")  # -sig: a BOM some editors write is not part of the text
    except FileNotFoundError:
        raise ConfigError([f"{path}: config file not found"]) from None
    except UnicodeDecodeError as e:
        line = p.read_bytes()[:e.start].count(b"\n") + 1
        raise ConfigError([f"{path}:{line}: not UTF-8 text (at byte offset {e.start})"]) from None
    except OSError as e:
        raise ConfigError([f"{path}: cannot read config file: {e.strerror or e}"]) from None
    return load_config_text(text, str(p), fmt=p.suffix[1:])


def load_config_text(text: str, source: str, fmt: str = "toml") -> TrainConfig:
    """Parse and validate config text; `source` names it in messages (a path, or "form")."""
    renamed: dict[str, str] = {}  # key -> origin, for keys spelled differently in the file
    if fmt == "toml":
        raw = _read_toml(text, source)
    elif fmt == "json":
        raw, renamed = _read_json(text, source)
    else:
        raise ValueError(f"unknown config format {fmt!r}")
    origins = {key: _at(text, key, fmt, source) for key in raw}
    origins.update(renamed)
    return build(raw, origins, where=origins)


def _key_line(text: str, key: str, fmt: str) -> int | None:
    """1-based line where `key` is set in the text, if it can be found."""
    if len(key) > 100:  # no config key is this long: look for it as it is (a pattern of it would be slow)
        at = text.find(key)
        return None if at < 0 else text.count("\n", 0, at) + 1
    k = re.escape(key)
    if fmt == "toml":
        pattern = rf"^[ \t]*(?:(?:{k}|\"{k}\"|'{k}')[ \t]*[=.]|\[[ \t]*{k}[ \t]*[\].])"
    else:
        pattern = rf"\"{k}\"\s*:"
    m = re.search(pattern, text, flags=re.MULTILINE)
    return None if m is None else text.count("\n", 0, m.start()) + 1


def _at(text: str, key: str, fmt: str, source: str) -> str:
    """Where the key is set, "source:line", or the source alone when the line cannot be found."""
    line = _key_line(text, key, fmt)
    return f"{source}:{line}" if line else source


def _read_toml(text: str, source: str) -> dict[str, Any]:
    try:
        data = tomli.loads(text)
    except RecursionError:  # tomli's own limit on nesting, raised as a RecursionError
        raise ConfigError([f"{source}:{_deep_line(text)}: invalid TOML: arrays or tables nested too deeply"]) from None
    except tomli.TOMLDecodeError as e:
        line = getattr(e, "lineno", None)
        msg = getattr(e, "msg", None) or str(e)
        col = getattr(e, "colno", None)
        at = f":{line}:{col}" if line and col else (f":{line}" if line else "")
        raise ConfigError([f"{source}{at}: invalid TOML: {msg}"]) from None
    problems: list[str] = []
    by_key: dict[str, str] = {}
    out: dict[str, Any] = {}
    for key, value in data.items():
        at = _at(text, key, "toml", source)
        if isinstance(value, dict) and not (key in FIELDS and FIELDS[key].kind in ("curriculum", "table")):
            problems.append(f"{at}: [{key}] is a table, but mypt configs are flat: write the "
                            f"keys at top level (group headings are comments)")
        elif key not in FIELDS:
            if key in ("use_amp", "amp_dtype"):
                hint = ' (MyPT\'s use_amp/amp_dtype: write precision = "bf16", "fp16" or "fp32")'
            elif key in _MYPT_RENAMED:
                hint = f" (did you mean '{_MYPT_RENAMED[key]}'?)"
            else:
                hint = did_you_mean(key, FIELDS)
            msg = f"unknown key {shown(key, 60)}{hint}"
            problems.append(f"{at}: {msg}")
            by_key[key] = msg
        else:
            out[key] = value
    if problems:
        raise ConfigError(problems, by_key)
    return out


def _read_json(text: str, source: str) -> tuple[dict[str, Any], dict[str, str]]:
    """MyPT's JSON: `comment*` keys are comments; use_amp/amp_dtype become precision.

    Returns (key -> value, key -> origin for the keys spelled differently in the file).
    """
    try:
        data = jsonio.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError([f"{source}:{e.lineno}:{e.colno}: invalid JSON: {e.msg}"]) from None
    except jsonio.JsonTooDeep as e:
        raise ConfigError([f"{source}:{_deep_line(text, jsonio.MAX_DEPTH)}: invalid JSON: {e}"]) from None
    if not isinstance(data, dict):
        raise ConfigError([f"{source}: a JSON config must be an object {{...}} of keys"])
    problems: list[str] = []
    by_key: dict[str, str] = {}
    out: dict[str, Any] = {}
    renamed: dict[str, str] = {}

    def at(key: str) -> str:
        return _at(text, key, "json", source)

    amp: dict[str, Any] = {}
    for key, value in data.items():
        if key.startswith("comment"):
            continue
        if key in ("use_amp", "amp_dtype"):
            amp[key] = value
            continue
        if key == "save_dtype" and value is None:
            continue  # MyPT's "the model's dtype": fp32 weights here, the default
        target = _MYPT_RENAMED.get(key, key)
        if target != key and target in data:
            problems.append(f"{at(key)}: give {target} or MyPT's {key}, not both")
            continue
        if target in FIELDS:
            out[target] = value
            if target != key:
                renamed[target] = f"{at(key)} ({key})"
        else:
            msg = f"unknown key {shown(key, 60)}{did_you_mean(key, [*FIELDS, *_MYPT_RENAMED, 'use_amp', 'amp_dtype'])}"
            problems.append(f"{at(key)}: {msg}")
            by_key[key] = msg
    if amp:
        amp_at = at("use_amp" if "use_amp" in amp else "amp_dtype")
        if "precision" in out:
            problems.append(f"{amp_at}: give precision or MyPT's use_amp/amp_dtype, not both")
        else:
            try:
                out["precision"] = _precision_from_amp(amp)
                renamed["precision"] = f"{amp_at} (use_amp/amp_dtype)"
            except Invalid as e:
                problems.append(f"{at(next(iter(amp)))}: {e}")
    if problems:
        raise ConfigError(problems, by_key)
    return out, renamed


def _deep_line(text: str, limit: int = 400) -> int:
    """The line where arrays and tables (outside strings and comments) first nest more than
    `limit` deep: where to look in a file tomli refused for its nesting."""
    depth, quote, escaped, comment, line = 0, "", False, False, 1
    for ch in text:
        if ch == "\n":
            line, comment = line + 1, False
        elif comment:
            continue
        elif quote:
            if escaped:
                escaped = False
            elif ch == "\\" and quote == '"':
                escaped = True
            elif ch == quote:
                quote = ""
        elif ch in "\"'#":
            quote, comment = (ch, False) if ch != "#" else ("", True)
        elif ch in "[{":
            depth += 1
            if depth > limit:
                return line
        elif ch in "]}":
            depth -= 1
    return 1


def _precision_from_amp(amp: Mapping[str, Any]) -> str:
    """MyPT's use_amp + amp_dtype as our precision.

    use_amp false -> "fp32"; use_amp true with amp_dtype -> that dtype; use_amp true alone ->
    "auto"; amp_dtype alone -> that dtype.
    """
    use_amp = amp.get("use_amp")
    if use_amp is not None and not isinstance(use_amp, bool):
        raise Invalid(f"use_amp must be true or false, got {show(use_amp)}")
    dtype = amp.get("amp_dtype")
    if dtype is not None and (not isinstance(dtype, str) or dtype.lower() not in _AMP_DTYPES):
        raise Invalid(f'amp_dtype must be one of "bf16", "fp16", "fp32", got {show(dtype)}')
    if use_amp is False:
        return "fp32"
    if dtype is None:
        return "auto"
    return _AMP_DTYPES[dtype.lower()]
