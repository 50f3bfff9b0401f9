"""Checking values: one value against its key (from a file, from code, or typed as text in a
flag or a form field) and the rules between keys. Every message names the key, the value as
the user wrote it and what is allowed, so a mistake reads the same through every door.
"""

from __future__ import annotations

import difflib
import json
import math
from typing import Any, Iterable, Mapping

from .. import jsonio
from ..errors import MyptError
from ..layout import MAX_PARAMS
from .curriculum import check_curriculum, curriculum_text
from .schema import FIELDS, Field


class ConfigError(MyptError, ValueError):
    """A config problem, worded for the user: names the file (or flag), key, allowed values.

    `problems` holds one line per problem (str() joins them); `by_key` maps each key a problem
    is about to its message, so a form can mark the fields in question.
    """

    def __init__(self, problems: list[str], by_key: dict[str, str] | None = None):
        self.problems = list(problems)
        self.by_key = dict(by_key or {})
        super().__init__("\n".join(self.problems))


class Invalid(Exception):
    """One value is wrong; the text continues "<key> must be ..."."""


def too_large(f: Field, shown_value: str) -> Invalid:
    """A size past the key's ceiling (not part of its range as shown, but never allowed)."""
    return Invalid(f"must be at most {f.ceiling} (no model this trainer can hold is larger), got {shown_value}")


def show(value: Any, limit: int = 60) -> str:
    """A value as the user wrote it (TOML/JSON spelling), cut short: a hostile file may hold
    a value megabytes long, and a message quotes it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
    elif isinstance(value, float):
        text = repr(value)
    elif isinstance(value, (list, dict)):
        text = json.dumps(value, ensure_ascii=False, default=str)[:limit + 1]
    elif isinstance(value, int) and value.bit_length() > 4 * limit:  # str() of it may be refused, or huge
        text = f"an integer of {value.bit_length()} bits"
    else:
        text = str(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def did_you_mean(key: str, candidates: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for the closest candidate, or "" when none is close (or the key is
    too long to be a typo of one: comparing it would cost seconds)."""
    if len(key) > 100:
        return ""
    close = difflib.get_close_matches(key.lower(), list(candidates), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _type_word(value: Any) -> str:
    return {bool: "a boolean", str: "a string", int: "an integer", float: "a number",
            list: "a list", dict: "a table"}.get(type(value), type(value).__name__)


# ---------------------------------------------------------------------------------------------
# One value
# ---------------------------------------------------------------------------------------------

def check_value(f: Field, value: Any) -> Any:
    """Check a value from a file or from code; return it normalised (int 5.0 -> 5)."""
    def bad(type_hint: bool = False) -> Invalid:
        hint = f" ({_type_word(value)})" if type_hint else ""
        return Invalid(f"must be {f.allowed}, got {show(value)}{hint}")

    if value is None:
        if f.nullable:
            return None
        raise bad()
    if f.kind == "curriculum":
        try:
            return check_curriculum(value)
        except ValueError as e:
            raise Invalid(str(e)) from None
    if f.kind == "choice" and isinstance(value, str):
        value = dict(f.aliases).get(value.lower(), value)
    if f.kind == "bool":
        if not isinstance(value, bool):
            raise bad(type_hint=True)
        return value
    if f.kind == "choice" and _is_switch(f):  # compile: true, false or "auto"; true/false held as booleans
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _TRUE + _FALSE:
            return value.lower() in _TRUE
    if f.kind == "table" and f.table is not None:
        try:
            return f.table(value)
        except ValueError as e:
            raise Invalid(str(e)) from None
    if f.kind in ("str", "choice"):
        if not isinstance(value, str):
            raise bad(type_hint=True)
        if f.kind == "choice" and value not in f.choices:
            close = difflib.get_close_matches(value.lower(), f.choices, n=1, cutoff=0.5)
            raise Invalid(f'{bad()} (did you mean "{close[0]}"?)') if close else bad()
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise bad(type_hint=True)
    if isinstance(value, float) and not math.isfinite(value):
        raise bad()
    if f.kind == "steps":
        if isinstance(value, float) and 0 <= value < 1:
            return value
        if value < 0 or (isinstance(value, float) and not value.is_integer()):
            raise bad()
        return int(value)
    if f.kind == "int":
        if isinstance(value, float) and not value.is_integer():
            raise bad(type_hint=True)
        value = int(value)
    else:
        value = float(value)
    if f.low is not None and (value < f.low or (f.low_open and value == f.low)):
        raise bad()
    if f.high is not None and (value > f.high or (f.high_open and value == f.high)):
        raise bad()
    if f.ceiling is not None and value > f.ceiling:
        raise too_large(f, show(value))
    return value


_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")


def _is_switch(f: Field) -> bool:
    """A choice between true, false and more settings ("auto"): true/false are held as booleans."""
    return "true" in f.choices and "false" in f.choices


def parse_text(f: Field, raw: str, allow_unset: bool = True) -> Any:
    """Parse a value typed by a user (flag or form field), then check it like a file value.

    A problem shows the text as typed ('0'), which is why parsing and checking go together.
    """
    text = raw.strip()
    if f.nullable and allow_unset and text.lower() in ("", "none", "null"):
        return None
    shown = Invalid(f"must be {f.allowed}, got {raw!r}")
    if f.kind == "curriculum":
        try:
            value = jsonio.loads(text)
        except ValueError as e:
            raise Invalid(f"must be JSON text of {f.allowed}: {e}") from None
        return check_value(f, value)
    if f.kind == "table":  # a table typed as text (a flag, a form field) is a JSON object
        try:
            return check_value(f, jsonio.parse_json(text))
        except jsonio.JsonError as e:
            raise Invalid(f"must be a JSON object (e.g. {{\"name\": \"value\"}}): {e}") from None
    if f.kind in ("str", "choice"):
        value: Any = raw if f.kind == "str" else text
    elif f.kind == "bool":
        if text.lower() in _TRUE:
            value = True
        elif text.lower() in _FALSE:
            value = False
        else:
            raise Invalid(f"must be true or false (or 1/0, yes/no, on/off), got {raw!r}")
    else:  # int, float, steps: "5", "5.0", "1e-4" (an int field takes a whole float such as 1e3)
        try:
            value = int(text)
        except ValueError:
            try:
                value = float(text)
            except ValueError:
                raise shown from None
            if f.kind == "int" and not value.is_integer():
                raise shown from None
    try:
        return check_value(f, value)
    except Invalid as e:
        if f.kind == "choice":
            raise
        if f.ceiling is not None and f.low is not None and value >= f.low:
            raise too_large(f, repr(raw)) from e
        raise shown from e


def coerce(f: Field, value: Any) -> Any:
    """A value as typed (text, for a non-text key) or as given (typed), checked."""
    if isinstance(value, str) and f.kind not in ("str", "choice"):
        return parse_text(f, value)
    return check_value(f, value)


# ---------------------------------------------------------------------------------------------
# One field at a time (flags, the Config form)
# ---------------------------------------------------------------------------------------------

def parse_field(name: str, raw: Any) -> Any:
    """The value of one field as typed (a string) or given (a typed value); ConfigError if bad.

    For a nullable key, "" / "none" / "null" mean unset (None).
    """
    f = FIELDS.get(name)
    if f is None:
        raise ConfigError([f"unknown key '{name}'{did_you_mean(name, FIELDS)}"], {name: "unknown key"})
    try:
        return coerce(f, raw)
    except Invalid as e:
        raise ConfigError([f"{name} {e}"], {name: f"{name} {e}"}) from None


def parse_flag(name: str, raw: str) -> Any:
    """The value of `--name RAW` on a command line: like parse_field, but unset is not a choice."""
    try:
        return parse_text(FIELDS[name], raw, allow_unset=False)
    except Invalid as e:
        raise ConfigError([f"--{name} {e}"], {name: str(e)}) from None


def field_error(name: str, raw_value: Any) -> str | None:
    """None if the value is allowed for the key on its own, else why not (for a form field)."""
    try:
        parse_field(name, raw_value)
    except ConfigError as e:
        return str(e)
    return None


def format_value(name: str, value: Any) -> str:
    """A value as text for a form field (the inverse of parse_field): true/false, "" for unset."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if FIELDS.get(name) is not None and FIELDS[name].kind == "curriculum":
        return curriculum_text(value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


# ---------------------------------------------------------------------------------------------
# A whole config: each key on its own, then the rules between keys
# ---------------------------------------------------------------------------------------------

def check_fields(values: Mapping[str, Any], where: Mapping[str, str]) -> dict[str, Any]:
    """Each value checked on its own, normalised; ConfigError lists every bad one.

    `where` prefixes a key's problem with where its value was read ("c.toml:3"); those keys
    come first, in the order they were read (a file's problems in line order).
    """
    clean: dict[str, Any] = {}
    problems: list[str] = []
    by_key: dict[str, str] = {}
    for name in [*where, *(k for k in values if k not in where)]:
        try:
            clean[name] = check_value(FIELDS[name], values[name])
        except Invalid as e:
            msg = f"{name} {e}"
            problems.append(f"{where[name]}: {msg}" if where.get(name) else msg)
            by_key[name] = msg
    if problems:
        raise ConfigError(problems, by_key)
    return clean


def warmup_steps(warmup_iters: int | float, max_iters: int) -> tuple[int, float | None]:
    """(steps, the fraction of max_iters it was given as, or None when given in steps)."""
    if isinstance(warmup_iters, float) and warmup_iters < 1:
        return round(warmup_iters * max_iters), warmup_iters
    return int(warmup_iters), None


def approx_params(values: Mapping[str, Any]) -> float:
    """Parameters of the model the values describe, roughly (12 L C^2 for the blocks, the token
    tables, the position table): enough to refuse one that could never be allocated. Unset
    vocab_size counts as GPT-2's."""
    n_layer, n_embd, block = values["n_layer"], values["n_embd"], values["block_size"]
    vocab = values["vocab_size"] or 50304
    return float(12 * n_layer * n_embd * n_embd + 2 * vocab * n_embd + block * n_embd)


def check_together(values: Mapping[str, Any], origins: Mapping[str, str]) -> None:
    """Rules between keys (warmup_iters in steps); ConfigError names every key involved, its
    value and its origin."""
    problems: list[str] = []
    by_key: dict[str, str] = {}

    def said(key: str) -> str:
        origin = origins.get(key)
        return f"{key} = {show(values[key])}" + (f" ({origin})" if origin else "")

    def problem(keys: tuple[str, ...], msg: str) -> None:
        problems.append(msg)
        for k in keys:
            by_key.setdefault(k, msg)

    if values["n_embd"] % values["n_head"]:
        problem(("n_embd", "n_head"), f"{said('n_embd')} must be divisible by {said('n_head')}")
    elif values["pos_encoding"] == "rope" and (values["n_embd"] // values["n_head"]) % 2:
        problem(("n_embd", "n_head", "pos_encoding"),
                f"pos_encoding \"rope\" needs an even head size, but n_embd / n_head = "
                f"{values['n_embd'] // values['n_head']}")
    params = approx_params(values)
    if params > MAX_PARAMS:
        keys = ("n_layer", "n_embd", "vocab_size", "block_size")
        problem(keys, f"{', '.join(said(k) for k in keys if values[k] is not None)} make a model of about "
                      f"{params:.1e} parameters, more than mypt can train ({MAX_PARAMS:.0e}): lower them")
    if values["warmup_iters"] > values["max_iters"]:
        problem(("warmup_iters", "max_iters"),
                f"{said('warmup_iters')} exceeds {said('max_iters')}: lower warmup_iters, or "
                f"give it as a fraction of max_iters (e.g. 0.03)")
    if values["min_lr"] is not None and values["min_lr"] > values["learning_rate"]:
        problem(("min_lr", "learning_rate"),
                f"{said('min_lr')} exceeds {said('learning_rate')}: the cosine decay ends at min_lr")
    if (values["pad_token_id"] is not None and values["vocab_size"] is not None
            and values["pad_token_id"] >= values["vocab_size"]):
        problem(("pad_token_id", "vocab_size"), f"{said('pad_token_id')} must be below {said('vocab_size')}")
    if problems:
        raise ConfigError(problems, by_key)
