"""Episodes: read the three input schemas (MyPT gold, OpenAI chat, ShareGPT) into one type.

An input is a JSONL file (one episode a line), a `.json` file (one episode, or a list of
them), or a folder of such files (read in sorted path order). Reading never stops at a bad
episode: it yields an `EpisodeError` that says `file:line: reason`, and the caller decides
whether to skip it or fail (`--strict`). Where it was read (`Source`) and why, as a category
(`SkipReason`), are data: nothing downstream reads them back out of the message text.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Union

from . import jsonio
from .errors import shown
from .layout import SkipReason as SkipReason  # the skip categories, part of the dataset format
from .walk import files_under

INPUT_SUFFIXES = (".jsonl", ".json")


@dataclass(frozen=True)
class Source:
    """Where an episode was read: the file's label and a line (JSON lines), an item (a .json list)
    or neither (a .json file of one episode). Printed as `file:line`, `file#item` or `file`."""

    file: str
    line: int | None = None
    item: int | None = None

    def __str__(self) -> str:
        if self.line is not None:
            return f"{self.file}:{self.line}"
        if self.item is not None:
            return f"{self.file}#{self.item}"
        return self.file


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: dict[str, Any]

    def to_json(self) -> str:
        """The text inside `<myPT_toolcall>`: `{"name": ..., "arguments": {...}}`."""
        return json.dumps({"name": self.name, "arguments": self.arguments}, ensure_ascii=False)


@dataclass(frozen=True)
class Message:
    """One turn. role is user, assistant, toolresult or assistant_context.

    user: `context` is retrieved text shown with the question (<myPT_user_context>).
    assistant: `think` (<myPT_think>), `cite` (<myPT_cite>) and `tool_calls` (<myPT_toolcall>).
    toolresult: `content` is the tool's output (JSON text), `name` the tool that produced it.
    """

    role: str
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    name: str | None = None
    context: str | None = None
    think: str | None = None
    cite: str | None = None


@dataclass(frozen=True)
class Episode:
    id: str
    messages: tuple[Message, ...]
    system: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    source: Source = Source("")  # where it was read

    @property
    def sha256(self) -> str:
        """Content hash of the conversation (not of the raw line: the same talk in two schemas
        hashes the same, which is how train/val overlap is found)."""
        return content_hash(self.system, self.messages)

    @property
    def family(self) -> str:
        """The skill family from metadata (`meta.family`, `meta.skill` or `meta.category`)."""
        for key in ("family", "skill", "category", "task"):
            if isinstance(self.meta.get(key), str):
                return self.meta[key]
        return "all"


@dataclass(frozen=True)
class EpisodeError:
    """An episode that cannot be used: where, why in words (what users read), why as a category."""

    source: Source
    reason: str
    category: SkipReason

    def __str__(self) -> str:
        return f"{self.source}: {self.reason}"


class BadEpisode(ValueError):
    """Raised inside parsing with its category; turned into an EpisodeError with the episode's source."""

    def __init__(self, category: SkipReason, reason: str) -> None:
        super().__init__(reason)
        self.category = category

    def at(self, source: Source) -> EpisodeError:
        return EpisodeError(source, str(self), self.category)


def content_hash(system: str | None, messages: tuple[Message, ...]) -> str:
    canon = {"system": system, "messages": [
        {k: v for k, v in (("role", m.role), ("content", m.content), ("name", m.name), ("context", m.context),
                           ("think", m.think), ("cite", m.cite),
                           ("tool_calls", [{"name": c.name, "arguments": c.arguments} for c in m.tool_calls] or None))
         if v is not None} for m in messages]}
    raw = json.dumps(canon, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()


# -- reading files -----------------------------------------------------------------------------

def input_files(path: str | Path) -> list[Path]:
    """The files an input names: itself, or every .jsonl/.json under a folder, sorted."""
    p = Path(path)
    if p.is_dir():
        files = files_under(p, lambda f: f.suffix in INPUT_SUFFIXES)
        if not files:
            raise FileNotFoundError(f"{p}: folder has no .jsonl or .json files")
        return files
    if not p.exists():
        raise FileNotFoundError(f"{p}: no such file or folder")
    return [p]


def read_episodes(path: str | Path) -> Iterator[Union[Episode, EpisodeError]]:
    """Every episode of an input, in order, or an EpisodeError in its place. Streams JSONL."""
    root = Path(path)
    try:
        files = input_files(root)
    except FileNotFoundError as e:
        yield EpisodeError(Source(str(root)), str(e).split(": ", 1)[-1], SkipReason.OTHER)
        return
    for f in files:
        label = f.relative_to(root).as_posix() if root.is_dir() else f.name
        yield from _read_file(f, label)


def _read_file(f: Path, label: str) -> Iterator[Union[Episode, EpisodeError]]:
    if f.suffix == ".json":
        whole = _read_json_file(f, label)
        if whole is not None:
            yield from whole
            return
    with open(f, "rb") as fh:  # JSON lines (also a .json file that holds several lines)
        for lineno, raw in enumerate(fh, 1):
            if raw.strip():
                yield parse_line(raw, Source(label, lineno))


def _read_json_file(f: Path, label: str) -> list[Union[Episode, EpisodeError]] | None:
    """A .json file holding one episode or a list of them; None when it is JSON lines."""
    try:
        # -sig: a BOM is not part of the JSON; each item's depth is checked on its own below
        obj = jsonio.loads(f.read_bytes().decode("utf-8-sig"), max_depth=sys.maxsize)
    except UnicodeDecodeError as e:
        return [EpisodeError(Source(label, 1), f"not valid UTF-8 (byte {e.start + 1})", SkipReason.NOT_UTF8)]
    except jsonio.JsonTooDeep:
        return [EpisodeError(Source(label), f"JSON nested more than {jsonio.MAX_DEPTH} deep", SkipReason.TOO_DEEP)]
    except json.JSONDecodeError as e:
        if e.msg == "Extra data":
            return None
        return [EpisodeError(Source(label, e.lineno), f"invalid JSON: {e.msg} (column {e.colno})",
                             SkipReason.INVALID_JSON)]
    items = obj if isinstance(obj, list) else [obj]
    out: list[Union[Episode, EpisodeError]] = []
    for i, item in enumerate(items, 1):
        source = Source(label, item=i) if isinstance(obj, list) else Source(label)
        try:
            if jsonio.depth(item) > jsonio.MAX_DEPTH:  # one deep item costs only itself
                raise BadEpisode(SkipReason.TOO_DEEP, f"JSON nested more than {jsonio.MAX_DEPTH} deep")
            out.append(parse_episode(item, source))
        except BadEpisode as e:
            out.append(e.at(source))
    return out


def parse_line(raw: bytes, source: Source) -> Union[Episode, EpisodeError]:
    """One JSON line (not blank) -> its episode or why not; also what prepare's workers parse."""
    try:
        text = raw.decode("utf-8-sig" if source.line == 1 else "utf-8")  # a BOM may open the file
    except UnicodeDecodeError as e:
        return EpisodeError(source, f"not valid UTF-8 (byte {e.start + 1} of the line)", SkipReason.NOT_UTF8)
    try:
        obj = jsonio.loads(text.rstrip("\r\n"))  # a cut-off line reports its own column
    except jsonio.JsonTooDeep as e:
        return EpisodeError(source, str(e), SkipReason.TOO_DEEP)
    except json.JSONDecodeError as e:
        return EpisodeError(source, f"invalid JSON: {e.msg} (column {e.colno})", SkipReason.INVALID_JSON)
    try:
        return parse_episode(obj, source)
    except BadEpisode as e:
        return e.at(source)


# -- the three schemas -------------------------------------------------------------------------

def parse_episode(obj: Any, source: Source | str) -> Episode:
    """One episode object in any of the three schemas -> Episode (raises BadEpisode). A plain
    string source is a label of its own (for callers that do not read a file)."""
    if isinstance(source, str):
        source = Source(source)
    if not isinstance(obj, dict):
        raise BadEpisode(SkipReason.NOT_OBJECT, f"expected a JSON object, got {type(obj).__name__}")
    if "conversations" in obj:
        system, messages = _sharegpt(obj["conversations"])
    elif "messages" in obj:
        system, messages = _messages(obj["messages"], obj.get("system"))
    else:
        raise BadEpisode(SkipReason.NO_MESSAGES, 'no "messages" (MyPT gold / OpenAI) or "conversations" (ShareGPT) key')
    _check_conversation(messages)
    meta = obj.get("meta") or obj.get("metadata") or {}
    if not isinstance(meta, dict):
        raise BadEpisode(SkipReason.INVALID_META, '"meta" must be an object')
    ep_id = obj.get("episode_id", obj.get("id"))
    if ep_id is not None and (not isinstance(ep_id, (str, int)) or isinstance(ep_id, bool) or str(ep_id) == ""):
        raise BadEpisode(SkipReason.INVALID_ID, '"episode_id" must be a non-empty string or integer')
    return Episode(id=str(ep_id) if ep_id is not None else str(source), messages=tuple(messages),
                   system=system, meta=meta, source=source)


MYPT_OPENAI_ROLES = ("system", "user", "assistant", "assistant_toolcall", "toolresult", "tool",
                     "assistant_context")


def _messages(raw: Any, top_system: Any) -> tuple[str | None, list[Message]]:
    """MyPT gold and OpenAI chat share the `messages` list; their roles are read together."""
    if not isinstance(raw, list) or not raw:
        raise BadEpisode(SkipReason.NO_MESSAGES, '"messages" must be a non-empty list')
    system = _opt_text(top_system, '"system"')
    messages: list[Message] = []
    for i, m in enumerate(raw, 1):
        where = f"message {i}"
        if not isinstance(m, dict):
            raise BadEpisode(SkipReason.MALFORMED_MESSAGE, f"{where} is not an object")
        role = m.get("role")
        if role not in MYPT_OPENAI_ROLES:
            raise BadEpisode(SkipReason.UNKNOWN_ROLE,
                             f"{where}: unknown role {shown(role)} (expected one of {', '.join(MYPT_OPENAI_ROLES)})")
        where = f"{where} ({role})"
        if role == "system":
            if messages or system is not None:
                raise BadEpisode(SkipReason.MISPLACED_SYSTEM,
                                 f"{where}: a system message must come first and only once")
            system = _text(m.get("content"), where)
        elif role == "user":
            messages.append(Message("user", _text(m.get("content"), where),
                                    context=_opt_text(m.get("context"), f"{where} context")))
        elif role == "assistant":
            calls = tuple(_openai_call(c, f"{where} tool call {j}") for j, c in enumerate(_calls(m, where), 1))
            if "name" in m and "arguments" in m and not calls:
                calls = (_call(m.get("name"), m.get("arguments"), where),)
            content = m.get("content")
            messages.append(Message(
                "assistant", _text(content, where) if not calls or content else "", tool_calls=calls,
                think=_opt_text(m.get("think"), f"{where} think"), cite=_opt_text(m.get("cite"), f"{where} cite")))
            if m.get("context") is not None:
                raise BadEpisode(SkipReason.MISPLACED_CONTEXT,
                                 f"{where}: context belongs to a user message or an assistant_context turn")
        elif role == "assistant_toolcall":
            call = _call(m.get("name"), m.get("arguments"), where)
            content = m.get("content")
            messages.append(Message("assistant", _text(content, where) if content else "", tool_calls=(call,),
                                    think=_opt_text(m.get("think"), f"{where} think")))
        elif role in ("toolresult", "tool"):
            messages.append(Message("toolresult", _result_text(m.get("content"), where),
                                    name=_opt_text(m.get("name"), f"{where} name")))
        else:  # assistant_context
            messages.append(Message("assistant_context", _text(m.get("content"), where)))
    return system, messages


SHAREGPT_ROLES = ("system", "human", "gpt", "function_call", "observation")


def _sharegpt(raw: Any) -> tuple[str | None, list[Message]]:
    if not isinstance(raw, list) or not raw:
        raise BadEpisode(SkipReason.NO_MESSAGES, '"conversations" must be a non-empty list')
    system = None
    messages: list[Message] = []
    for i, m in enumerate(raw, 1):
        where = f"turn {i}"
        if not isinstance(m, dict):
            raise BadEpisode(SkipReason.MALFORMED_MESSAGE, f"{where} is not an object")
        who = m.get("from")
        if who not in SHAREGPT_ROLES:
            raise BadEpisode(SkipReason.UNKNOWN_ROLE,
                             f"{where}: unknown role {shown(who)} (expected one of {', '.join(SHAREGPT_ROLES)})")
        where = f"{where} ({who})"
        value = m.get("value")
        if who == "system":
            if messages or system is not None:
                raise BadEpisode(SkipReason.MISPLACED_SYSTEM, f"{where}: a system turn must come first and only once")
            system = _text(value, where)
        elif who == "human":
            messages.append(Message("user", _text(value, where)))
        elif who == "gpt":
            messages.append(Message("assistant", _text(value, where)))
        elif who == "function_call":
            text = _text(value, where)
            try:
                call = jsonio.loads(text)
            except jsonio.JsonTooDeep as e:
                raise BadEpisode(SkipReason.TOO_DEEP, f"{where}: tool call: {e}") from None
            except json.JSONDecodeError as e:
                raise BadEpisode(SkipReason.TOOL_CALL_JSON, f"{where}: invalid tool-call JSON: {e.msg}") from None
            if not isinstance(call, dict):
                raise BadEpisode(SkipReason.TOOL_CALL, f"{where}: a tool call must be a JSON object")
            tool_call = _call(call.get("name"), call.get("arguments", {}), where)
            messages.append(Message("assistant", tool_calls=(tool_call,)))
        else:  # observation
            messages.append(Message("toolresult", _result_text(value, where)))
    return system, messages


def _calls(m: dict, where: str) -> list:
    """An OpenAI assistant message's `tool_calls`: absent or null is none, anything but a list is wrong."""
    calls = m.get("tool_calls")
    if calls is None:
        return []
    if not isinstance(calls, list):
        raise BadEpisode(SkipReason.TOOL_CALL, f'{where}: "tool_calls" must be a list, got {type(calls).__name__}')
    return calls


def _openai_call(c: Any, where: str) -> ToolCall:
    if not isinstance(c, dict):
        raise BadEpisode(SkipReason.TOOL_CALL, f"{where} is not an object")
    fn = c.get("function", c)
    if not isinstance(fn, dict):
        raise BadEpisode(SkipReason.TOOL_CALL, f'{where}: "function" must be an object')
    return _call(fn.get("name"), fn.get("arguments", {}), where)


def _call(name: Any, arguments: Any, where: str) -> ToolCall:
    if not isinstance(name, str) or not name.strip():
        raise BadEpisode(SkipReason.TOOL_CALL, f"{where}: a tool call needs a non-empty \"name\"")
    if isinstance(arguments, str):
        try:
            arguments = jsonio.loads(arguments) if arguments.strip() else {}
        except jsonio.JsonTooDeep as e:
            raise BadEpisode(SkipReason.TOO_DEEP, f"{where}: tool-call arguments: {e}") from None
        except json.JSONDecodeError as e:
            raise BadEpisode(SkipReason.TOOL_CALL_JSON,
                             f"{where}: invalid tool-call arguments JSON: {e.msg} (column {e.colno})") from None
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict):
        raise BadEpisode(SkipReason.TOOL_CALL, f"{where}: tool-call arguments must be a JSON object")
    return ToolCall(name.strip(), arguments)


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise BadEpisode(SkipReason.CONTENT_NOT_STRING,
                         f"{where}: content must be a string, got {type(value).__name__}")
    if not value.strip():
        raise BadEpisode(SkipReason.EMPTY_CONTENT, f"{where}: empty content")
    return value


def _opt_text(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadEpisode(SkipReason.FIELD_NOT_STRING, f"{where} must be a string")
    return value if value.strip() else None


def _result_text(value: Any, where: str) -> str:
    """A tool result is JSON text; an object or list given inline is written as JSON."""
    if isinstance(value, (dict, list, int, float)) and not isinstance(value, bool):
        return json.dumps(value, ensure_ascii=False)
    return _text(value, where)


def _check_conversation(messages: list[Message]) -> None:
    if not any(m.role == "assistant" for m in messages):
        raise BadEpisode(SkipReason.NO_ASSISTANT, "no assistant turn (nothing to train on)")
