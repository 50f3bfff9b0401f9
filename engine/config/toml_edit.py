"""Writing TOML: a resolved config as a commented file (`to_toml`, for a run folder), and the
user's own file edited in place with its comments, blank lines and key order kept (`edit_toml`,
`save_config_preserving`, for the Config screen).

tomlkit is imported where it is used: it takes a tenth of a second to import, and only
editing needs it (the CLI's `--help` and the app start without it).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping

from ..layout import TEMP_PREFIX
from .checks import ConfigError, parse_field
from .files import load_config, load_config_text
from .schema import FIELDS, GROUP_TITLES, GROUPS
from .train_config import TrainConfig


def _toml_value(value: Any) -> str:
    if isinstance(value, dict):  # a table key (curriculum, eval_sets, gold_selection...) inline; TOML has no null
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items() if v is not None) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a valid TOML basic string
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _toml_key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() and key.isascii() else json.dumps(key)


def to_toml(cfg: TrainConfig, header: str = "mypt training config (resolved: file, flags, defaults)") -> str:
    """Every key with its value, grouped under comment headings, each with what it does.

    Unset nullable keys appear as a comment saying what they resolve to. load_config on the
    result gives back an equal config (warmup_iters as steps).
    """
    lines = [f"# {line}" for line in header.splitlines()]
    for group_id, title in GROUPS:
        lines += ["", f"# --- {title} ---"]
        for f in FIELDS.values():
            if f.group != group_id:
                continue
            value = getattr(cfg, f.name)
            note = f.help
            if f.name == "warmup_iters" and cfg.warmup_fraction is not None:
                note = f"{cfg.warmup_fraction!r} x max_iters. {note}"
            if value is None:
                lines.append(f"# {f.name} is unset: {f.unset}. {f.help}")
            else:
                lines.append(f"{f.name} = {_toml_value(value)}  # {note}")
    return "\n".join(lines) + "\n"


def edit_toml(text: str, values: Mapping[str, Any]) -> str:
    """`text` with `values` set, keeping every comment, blank line and key order.

    A changed key keeps its place and its end-of-line comment; an unchanged value keeps its
    spelling (5e-5 stays 5e-5); None removes the key (unset: back to its default); a key not in
    the file goes after the last key of its group, or under a new group heading at the end.
    Values are not validated here (save_config_preserving does).
    """
    import tomlkit

    body = list(tomlkit.parse(text).body)
    added = _set_present_keys(body, values)
    return _assemble(body, added).as_string()


def _set_present_keys(body: list[tuple[Any, Any]], values: Mapping[str, Any]) -> dict[str, list[tuple[str, Any]]]:
    """Set (or remove, for None) in `body` the keys the file has; return the others by group."""
    import tomlkit
    from tomlkit.items import Table

    present = {k.key: i for i, (k, _) in enumerate(body) if k is not None}
    added: dict[str, list[tuple[str, Any]]] = {}
    for name, value in values.items():
        if name not in present:
            if value is not None:
                group = FIELDS[name].group if name in FIELDS else "metadata"
                added.setdefault(group, []).append((name, value))
            continue
        i = present[name]
        key, old = body[i]
        if value is None:
            body[i] = (None, None)
        elif isinstance(old, Table):  # a [section] becomes an inline table in its place
            body[i] = (tomlkit.key(name), _item(value))
        elif old.unwrap() != value or type(old.unwrap()) is not type(value):
            new = _item(value)
            new.trivia.indent = old.trivia.indent
            new.trivia.comment_ws = old.trivia.comment_ws
            new.trivia.comment = old.trivia.comment
            new.trivia.trail = old.trivia.trail
            body[i] = (key, new)
    return added


def _assemble(body: list[tuple[Any, Any]], added: Mapping[str, list[tuple[str, Any]]]) -> Any:
    """A document of `body` with each added key after the last key of its group in the file, or
    under a new group heading at the end (in group order)."""
    import tomlkit
    from tomlkit.items import Comment, Table, Trivia, Whitespace

    last_of_group: dict[str, int] = {}
    for i, (k, _) in enumerate(body):
        if k is not None and k.key in FIELDS:
            last_of_group[FIELDS[k.key].group] = i
    inserts = {last_of_group[g]: items for g, items in added.items() if g in last_of_group}
    out = tomlkit.document()
    sections = []  # [table] sections (eval_sets may be one) go last: a key after a header joins its table
    for i, (k, item) in enumerate(body):
        if item is None:
            continue
        if isinstance(item, Whitespace):  # fixed: tomlkit would otherwise add keys above blank lines
            item = Whitespace(item.s, fixed=True)
        if isinstance(item, Table):
            sections.append((k, item))
        elif k is None:
            out.add(item)
        else:
            out.add(k, item)
        for name, value in inserts.get(i, []):
            out.add(name, _new_item(name, value))
    order = [g for g, _ in GROUPS]
    for group in sorted((g for g in added if g not in last_of_group), key=order.index):
        if out.body:
            out.add(Whitespace("\n", fixed=True))
        out.add(Comment(Trivia(comment_ws="", comment=f"# --- {GROUP_TITLES[group]} ---", trail="\n")))
        for name, value in added[group]:
            out.add(name, _new_item(name, value))
    for k, item in sections:
        out.add(k, item)
    return out


def _item(value: Any) -> Any:
    """A tomlkit value; a table key's value is an inline table (configs stay flat key = value lines)."""
    import tomlkit

    if isinstance(value, dict):
        table = tomlkit.inline_table()
        for k, v in value.items():
            table[k] = _item(v)
        return table
    return tomlkit.item(value)


def _new_item(name: str, value: Any) -> Any:
    """A new key's value, with what the key does as its end-of-line comment."""
    item = _item(value)
    if name in FIELDS:
        item.trivia.comment_ws = "  "
        item.trivia.comment = f"# {FIELDS[name].help}"
    return item


def save_config_preserving(path: str | os.PathLike, values: Mapping[str, Any],
                           dest: str | os.PathLike | None = None) -> TrainConfig:
    """Set `values` (typed, or text as typed in a form; None = unset) in the TOML at `path`,
    keeping its comments and key order, and write it to `dest` ("save as") or back to `path`.

    `path` may be None or missing (a new file holding just `values`) or a MyPT .json
    (its explicit keys become the starting TOML). The result is validated as a whole before
    anything is written (ConfigError, nothing written), then written beside and renamed.
    Returns the saved config.
    """
    target = Path(dest if dest is not None else path)
    if target.suffix != ".toml":
        raise ConfigError([f"{target}: configs are saved as TOML: choose a name ending in .toml"])
    typed: dict[str, Any] = {}
    problems: list[str] = []
    by_key: dict[str, str] = {}
    for k, v in values.items():
        try:
            typed[k] = None if v is None else parse_field(k, v)
        except ConfigError as e:
            problems.append(f"{target}: {e}")
            by_key.update(e.by_key)
    if problems:
        raise ConfigError(problems, by_key)
    source = Path(path) if path is not None else None
    if source is None or not source.exists():
        base = "# mypt training config\n"
    elif source.suffix == ".json":
        base = _explicit_toml(load_config(source), f"converted from {source.name}")
    else:
        base = source.read_text(encoding="utf-8")
    text = edit_toml(base, typed)
    cfg = load_config_text(text, str(target), fmt="toml")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{TEMP_PREFIX}{target.name}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, target)
    return cfg


def _explicit_toml(cfg: TrainConfig, header: str) -> str:
    """Only the explicitly set keys of cfg, grouped with comments (to start an edit from)."""
    lines = [f"# {header}"]
    for group_id, title in GROUPS:
        keys = [f for f in FIELDS.values() if f.group == group_id and f.name in cfg.explicit]
        if not keys:
            continue
        lines += ["", f"# --- {title} ---"]
        for f in keys:
            value = getattr(cfg, f.name)
            if f.name == "warmup_iters" and cfg.warmup_fraction is not None:
                value = cfg.warmup_fraction  # keep "a fraction of max_iters" as written
            if value is not None:
                lines.append(f"{f.name} = {_toml_value(value)}  # {f.help}")
    return "\n".join(lines) + "\n"
