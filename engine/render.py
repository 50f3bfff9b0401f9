"""The one conversation renderer: episode -> token ids + loss mask, and chat prompts for generation.

Data preparation, training, `generate`, chat, eval and the tool loop all build sequences here,
so the model is always asked in exactly the format it was trained on.

Layout (no separators between blocks):
    <myPT_system>S</myPT_system>
    <myPT_user>[<myPT_user_context>C</myPT_user_context>]U</myPT_user>
    <myPT_assistant_context>C</myPT_assistant_context>
    <myPT_assistant>[<myPT_think>T</myPT_think>]A[<myPT_cite>R</myPT_cite>][<myPT_toolcall>{json}</myPT_toolcall>]</myPT_assistant>
    <myPT_toolresult>{json}</myPT_toolresult>
    <myPT_eot>
Loss mask: 1 on every token inside an assistant block after its opening tag, the closing
`</myPT_assistant>` included, and on the final `<myPT_eot>` when the last turn is the
assistant's; 0 everywhere else.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from . import jsonio
from .episode import Episode, Message, ToolCall
from .tokenizer import Tokenizer, tag_name


@dataclass(frozen=True)
class SystemPrompt:
    """Which system text an episode gets: its own, else `default`; `enabled=False` drops it."""

    default: str | None = None
    enabled: bool = True

    def pick(self, own: str | None) -> str | None:
        if not self.enabled:
            return None
        return own if own is not None else self.default


@dataclass
class Rendered:
    ids: np.ndarray  # uint32
    mask: np.ndarray  # uint8, 1 where the token is trained

    @property
    def supervised(self) -> int:
        return int(self.mask.sum())


class _Builder:
    def __init__(self, tok: Tokenizer) -> None:
        self.tok = tok
        self.ids: list[int] = []
        self.mask: list[int] = []

    def tag(self, name: str, m: int = 0) -> None:
        self.ids.append(self.tok.tag_id(name))
        self.mask.append(m)

    def text(self, s: str, m: int = 0) -> None:
        t = self.tok.encode(s)
        self.ids += t
        self.mask += [m] * len(t)

    def block(self, name: str, s: str, m: int = 0) -> None:
        """`<name>s</name>`; with m=1 the opening tag is trained too (nested blocks of a reply)."""
        self.tag(name, m)
        self.text(s, m)
        self.tag("/" + name, m)


def _system(b: _Builder, system: str | None) -> None:
    if system is not None:
        b.block("system", system)


def _message(b: _Builder, msg: Message) -> None:
    if msg.role == "user":
        b.tag("user")
        if msg.context is not None:
            b.block("user_context", msg.context)
        b.text(msg.content)
        b.tag("/user")
    elif msg.role == "assistant":
        b.tag("assistant", 0)
        _reply_body(b, msg)
        b.tag("/assistant", 1)
    elif msg.role == "toolresult":
        b.block("toolresult", msg.content)
    elif msg.role == "assistant_context":
        b.block("assistant_context", msg.content)
    else:
        raise ValueError(f"cannot render role {msg.role!r}")


def _reply_body(b: _Builder, msg: Message) -> None:
    if msg.think is not None:
        b.block("think", msg.think, 1)
    b.text(msg.content, 1)
    if msg.cite is not None:
        b.block("cite", msg.cite, 1)
    for call in msg.tool_calls:
        b.block("toolcall", call.to_json(), 1)


def render_episode(ep: Episode, tok: Tokenizer, system: SystemPrompt = SystemPrompt()) -> Rendered:
    """The training sequence of an episode and its loss mask."""
    b = _Builder(tok)
    _system(b, system.pick(ep.system))
    for msg in ep.messages:
        _message(b, msg)
    b.tag("eot", 1 if ep.messages[-1].role == "assistant" else 0)
    return Rendered(np.asarray(b.ids, dtype=np.uint32), np.asarray(b.mask, dtype=np.uint8))


def render_prompt(messages: Sequence[Message], tok: Tokenizer, system: str | None = None) -> list[int]:
    """The conversation so far, ending with an open `<myPT_assistant>` for the model to continue."""
    b = _Builder(tok)
    _system(b, system)
    for msg in messages:
        _message(b, msg)
    b.tag("assistant")
    return b.ids


def render_turns(messages: Sequence[Message], tok: Tokenizer) -> list[list[int]]:
    """Each message's own ids (no system block): what chat trims, oldest first, to fit the context."""
    out = []
    for msg in messages:
        b = _Builder(tok)
        _message(b, msg)
        out.append(b.ids)
    return out


# -- reading a reply back ----------------------------------------------------------------------

REPLY_TAGS = {"think", "/think", "cite", "/cite", "toolcall", "/toolcall"}


@dataclass
class Reply:
    """A generated assistant turn, split into its parts."""

    content: str = ""
    think: str | None = None
    cite: str | None = None
    tool_calls: list[str] = field(default_factory=list)  # the raw JSON text of each call
    closed: bool = False  # ended with </myPT_assistant> (or <myPT_eot>)
    stray_tags: list[str] = field(default_factory=list)  # tags that have no place in a reply

    def as_message(self) -> Message:
        calls = tuple(c for c in (parse_tool_call(t) for t in self.tool_calls) if isinstance(c, ToolCall))
        return Message("assistant", self.content, tool_calls=calls, think=self.think, cite=self.cite)


def parse_reply(ids: Iterable[int], tok: Tokenizer) -> Reply:
    """Split the ids generated after `<myPT_assistant>` into content, think, cite and tool calls."""
    reply = Reply()
    parts: dict[str, list[int]] = {"content": []}
    where = "content"
    for i in ids:
        i = int(i)
        if not tok.is_tag(i):
            parts.setdefault(where, []).append(i)
            continue
        name = tag_name(tok.id_to_tag[i])
        if name in ("/assistant", "eot"):
            reply.closed = True
            break
        if name in ("think", "cite", "toolcall"):
            where = name if name != "toolcall" else f"toolcall{len(reply.tool_calls)}"
            parts[where] = []
            if name == "toolcall":
                reply.tool_calls.append("")
        elif name in ("/think", "/cite", "/toolcall"):
            where = "content"
        else:
            reply.stray_tags.append(tok.id_to_tag[i])
    reply.content = tok.decode(parts["content"])
    if "think" in parts:
        reply.think = tok.decode(parts["think"])
    if "cite" in parts:
        reply.cite = tok.decode(parts["cite"])
    reply.tool_calls = [tok.decode(parts.get(f"toolcall{k}", [])) for k in range(len(reply.tool_calls))]
    return reply


def parse_tool_call(text: str) -> ToolCall | str:
    """A tool call's JSON -> ToolCall, or a message saying why it is not a valid call.

    Accepts `{"name": N, "arguments": {...}}` and MyPT's flat `{"name": N, "param": value}`.
    """
    try:
        obj = jsonio.loads(text)
    except json.JSONDecodeError as e:
        return f"tool call is not valid JSON: {e.msg}"
    except jsonio.JsonTooDeep:
        return f"tool call is JSON nested too deeply (more than {jsonio.MAX_DEPTH} levels)"
    if not isinstance(obj, dict):
        return "tool call must be a JSON object"
    name = obj.get("name")
    if not isinstance(name, str) or not name:
        return 'tool call has no "name"'
    args = obj["arguments"] if "arguments" in obj else {k: v for k, v in obj.items() if k != "name"}
    if isinstance(args, str):
        try:
            args = jsonio.loads(args)
        except json.JSONDecodeError as e:
            return f"tool-call arguments are not valid JSON: {e.msg}"
        except jsonio.JsonTooDeep:
            return f"tool-call arguments are JSON nested too deeply (more than {jsonio.MAX_DEPTH} levels)"
    if not isinstance(args, dict):
        return "tool-call arguments must be a JSON object"
    return ToolCall(name, args)
