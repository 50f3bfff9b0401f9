"""Scoring one generated reply against the gold assistant turn: does it say what the gold says,
in the format? Pure functions of token ids, so they are tested without a model.

- exact match: the reply's content equals the gold content after trimming whitespace, and its
  tool calls equal the gold calls (name and arguments; think and cite blocks are not compared);
- format compliance: the reply closes with `</myPT_assistant>` within the token limit (the gold
  reply's length plus a margin), holds no tag that has no place in a reply (`<myPT_user>`,
  `<myPT_system>`, a second `<myPT_assistant>`, ...) and closes every think/cite/toolcall block;
- tool-call validity, where the gold turn calls a tool: the call is valid JSON with the right
  tool name and the right arguments.

`episode_turns` cuts a rendered episode into the turns to score: each assistant reply with the
conversation before it.

A base model (pretrained, never fine-tuned on chat) has never seen a tag, so asking it in the
chat format scores the format it was never taught. Its fairer form is raw: `raw_prompt` gives the
conversation so far as plain text, a message a line, and `score_raw` takes the first line of
what it writes as the reply (exact match as above; "format" then means it ended the line, or the
document, within the limit and wrote no tag; a tool call cannot be made in plain text).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Iterable, Sequence

from .episode import Message, ToolCall
from .render import parse_reply, parse_tool_call
from .tokenizer import Tokenizer, tag_name

_BLOCK_TAGS = {"think", "cite", "toolcall"}


# -- scoring one turn (pure) ---------------------------------------------------------------------

@dataclass(frozen=True)
class TurnScore:
    exact: bool
    formatted: bool
    closed: bool  # ended with </myPT_assistant> within the limit
    stray_tags: tuple[str, ...]  # tags that have no place in a reply, in order
    tool_call: bool | None  # the gold turn's call made right; None when the gold turn calls no tool
    problem: str | None  # why the turn is not a full pass (first reason), None when it is
    reply: str  # the generated reply as text (tags written out), without its closing tag
    tokens: int  # ids generated, the closing tag included

    @property
    def passed(self) -> bool:
        return self.problem is None


def score_reply(gold: Message, generated_ids: Iterable[int], tok: Tokenizer) -> TurnScore:
    """Score the ids a model generated after `<myPT_assistant>` against the gold assistant turn.

    `generated_ids` is what generation yielded: ending with the stop tag when the reply closed,
    else cut at the token limit.
    """
    ids = [int(i) for i in generated_ids]
    close_id, eot_id = tok.tag_id("/assistant"), tok.eot_id
    end = next((k for k, i in enumerate(ids) if i in (close_id, eot_id)), None)
    body = ids if end is None else ids[:end]
    closed = end is not None and ids[end] == close_id
    reply = parse_reply(body, tok)
    stray = tuple(reply.stray_tags)
    unbalanced = _unbalanced(body, tok)

    problems: list[str] = []
    if end is None:
        problems.append(f"no </myPT_assistant> within {len(ids)} tokens")
    elif not closed:
        problems.append("ended with <myPT_eot> instead of </myPT_assistant>")
    if stray:
        problems.append("stray tag " + ", ".join(dict.fromkeys(stray)))
    if unbalanced:
        problems.append(unbalanced)

    tool_ok: bool | None = None
    if gold.tool_calls:
        why = tool_call_problem(gold.tool_calls, reply.tool_calls)
        tool_ok = why is None
        if why:
            problems.append(why)
    calls = [parse_tool_call(t) for t in reply.tool_calls]
    same_calls = calls == list(gold.tool_calls)
    exact = same_calls and reply.content.strip() == gold.content.strip()
    if not same_calls and tool_ok is None:
        problems.append("made a tool call where the gold turn answers directly")
    elif not exact and same_calls:
        problems.append("content differs from the gold answer")
    return TurnScore(exact=exact, formatted=closed and not stray and unbalanced is None, closed=closed,
                     stray_tags=stray, tool_call=tool_ok, problem=problems[0] if problems else None,
                     reply=tok.decode(body), tokens=len(ids))


def tool_call_problem(gold: Sequence[ToolCall], generated: Sequence[str]) -> str | None:
    """Why the generated calls (raw JSON texts) do not make the gold calls, or None when they do."""
    for k, want in enumerate(gold):
        if k >= len(generated):
            return f"no tool call (expected {want.name})" if k == 0 else f"only {k} of {len(gold)} tool calls"
        got = parse_tool_call(generated[k])
        if isinstance(got, str):
            return got
        if got.name != want.name:
            return f"called tool {got.name!r}, expected {want.name!r}"
        if got.arguments != want.arguments:
            return f"tool arguments {_short(got.arguments)} differ from the gold {_short(want.arguments)}"
    if len(generated) > len(gold):
        return f"{len(generated)} tool calls, expected {len(gold)}"
    return None


def _short(obj: object, n: int = 60) -> str:
    s = json.dumps(obj, ensure_ascii=False)
    return s if len(s) <= n else s[:n - 3] + "..."


def _unbalanced(ids: Sequence[int], tok: Tokenizer) -> str | None:
    """A think/cite/toolcall block opened inside another, closed without opening, or left open."""
    open_block: str | None = None
    for i in ids:
        if not tok.is_tag(i):
            continue
        name = tag_name(tok.id_to_tag[i])
        if name in _BLOCK_TAGS:
            if open_block is not None:
                return f"<myPT_{name}> inside an open <myPT_{open_block}>"
            open_block = name
        elif name.startswith("/") and name[1:] in _BLOCK_TAGS:
            if open_block != name[1:]:
                return f"</myPT_{name[1:]}> without its opening tag"
            open_block = None
    return f"<myPT_{open_block}> never closed" if open_block else None


# -- turns of a rendered episode -----------------------------------------------------------------

@dataclass(frozen=True)
class Turn:
    prompt: list[int]  # the conversation so far, ending with the open <myPT_assistant>
    gold_ids: list[int]  # the gold reply after the opening tag, </myPT_assistant> included
    gold: Message


def episode_turns(ids: Sequence[int], tok: Tokenizer) -> list[Turn]:
    """Each complete assistant turn of a rendered episode, with the conversation before it."""
    ids = [int(i) for i in ids]
    open_id, close_id = tok.tag_id("assistant"), tok.tag_id("/assistant")
    turns = []
    k = 0
    while k < len(ids):
        if ids[k] != open_id:
            k += 1
            continue
        try:
            close = ids.index(close_id, k + 1)
        except ValueError:
            break  # a reply cut off (over-long episode): nothing complete to compare with
        gold_ids = ids[k + 1:close + 1]
        turns.append(Turn(ids[:k + 1], gold_ids, parse_reply(gold_ids, tok).as_message()))
        k = close + 1
    return turns


# -- raw prompts, for a base model -----------------------------------------------------------------

def raw_prompt(prompt: Sequence[int], tok: Tokenizer) -> list[int]:
    """The conversation before a turn as plain text: the user and assistant messages' text, a line
    each, then a newline (system prompts and tool blocks are left out: a base model knows no roles)."""
    lines: list[str] = []
    current: list[int] | None = None  # the message being read (None: outside user/assistant)
    hidden = False  # inside a think/cite/toolcall block: not said aloud
    for i in prompt:
        if not tok.is_tag(i):
            if current is not None and not hidden:
                current.append(int(i))
            continue
        name = tag_name(tok.id_to_tag[i])
        if name in ("user", "assistant"):
            current, hidden = [], False
        elif name in ("/user", "/assistant") and current is not None:
            lines.append(tok.decode(current).strip())
            current = None
        elif name.lstrip("/") in _BLOCK_TAGS:
            hidden = not name.startswith("/")
    return tok.encode("\n".join(line for line in lines if line) + "\n")


def score_raw(gold: Message, generated_ids: Iterable[int], tok: Tokenizer) -> TurnScore:
    """Score a base model's plain-text continuation of `raw_prompt`: its first line is the reply."""
    ids = [int(i) for i in generated_ids]
    ends = {tok.doc_sep_id, tok.eot_id}
    end = next((k for k, i in enumerate(ids) if i in ends), len(ids))
    text = tok.decode([i for i in ids[:end] if not tok.is_tag(i)])
    line, newline, _ = text.partition("\n")
    stray = tuple(tok.id_to_tag[i] for i in ids[:end] if tok.is_tag(i))
    closed = bool(newline) or end < len(ids)
    problems: list[str] = []
    if not closed:
        problems.append(f"no line end within {len(ids)} tokens")
    if stray:
        problems.append("stray tag " + ", ".join(dict.fromkeys(stray)))
    tool_ok = False if gold.tool_calls else None
    if gold.tool_calls:
        problems.append("a raw prompt cannot make the gold turn's tool call")
    exact = not gold.tool_calls and line.strip() == gold.content.strip()
    if not exact and not gold.tool_calls:
        problems.append("content differs from the gold answer")
    return TurnScore(exact=exact, formatted=closed and not stray, closed=closed, stray_tags=stray, tool_call=tool_ok,
                     problem=problems[0] if problems else None, reply=line, tokens=len(ids))
