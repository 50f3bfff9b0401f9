"""A chat with a checkpoint: multi-turn history, streaming replies and the tool loop.

One session serves the app's Chat screen and `mypt chat --no-ui` alike. The conversation is
kept as `Message`s and rendered with the training renderer every turn, so the model is asked
in exactly the format it was trained on. `send()` yields updates as they happen:

- `TokenText`: a piece of the reply (`part` says where: content, think, cite or toolcall);
- `ToolCalled` / `ToolAnswered`: a tool call the model made and the result fed back;
- `ContextTrimmed`: the oldest turns were left out so the prompt fits the model's context;
- `ReplyDone`: the turn is over (why, how many tokens, how fast), always last.

The tool loop: when a reply ends with a tool call, the call is run by the registry, its
result is appended as a toolresult turn, and the assistant is asked again, for at most
`max_tool_rounds` calls in a row.

A base model (pretrained, never fine-tuned on chat: `Checkpoint.base_model`) has never seen a
chat tag, so its session is `raw`: each message is continued as plain text, alone (a base model
has no turns to remember), until the document ends or max_new_tokens; the system prompt is not
used. This is what `mypt generate --raw` does, and what makes "base vs SFT" a fair comparison.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Union

from .episode import Message
from .generate import SamplingConfig, StreamDecoder, default_stop_ids, fit_prompt, generate
from .model import GPT
from .render import parse_reply, parse_tool_call, render_prompt, render_turns
from .tokenizer import Tokenizer, tag_name
from .tools import ToolRegistry, default_tools

MAX_TOOL_ROUNDS = 4
_PARTS = {"think": "think", "cite": "cite", "toolcall": "toolcall"}


@dataclass(frozen=True)
class TokenText:
    """Decoded reply text, in order; `part` is content, think, cite or toolcall."""

    text: str
    part: str = "content"


@dataclass(frozen=True)
class ToolCalled:
    """The model called a tool; `error` says why a call could not be read (then it is not run)."""

    name: str | None
    arguments: dict[str, Any]
    raw: str
    error: str | None = None


@dataclass(frozen=True)
class ToolAnswered:
    """The result fed back to the model (`content` is the toolresult JSON text)."""

    name: str
    content: str
    ok: bool


@dataclass(frozen=True)
class ContextTrimmed:
    """The prompt did not fit: the oldest `dropped` messages were left out of it (they stay in
    the history), and when the newest turn alone was still too long, its first `cut` tokens
    (the system prompt is kept unless it takes half the budget itself)."""

    dropped: int
    prompt_tokens: int
    block_size: int
    cut: int = 0

    def __str__(self) -> str:
        parts = []
        if self.dropped:
            parts.append(f"the oldest {self.dropped} messages were left out of the prompt" if self.dropped > 1
                         else "the oldest message was left out of the prompt")
        if self.cut:
            parts.append(f"the first {self.cut} tokens of the newest turn were cut")
        return f"context: {' and '.join(parts)} to fit the model's {self.block_size} tokens"


@dataclass(frozen=True)
class ReplyDone:
    """The turn is over. reason: closed (the model ended its reply), max_tokens, stopped
    (should_stop), or tool_rounds (it kept calling tools past max_tool_rounds)."""

    reason: str
    tokens: int  # generated, every round together
    seconds: float
    prompt_tokens: int  # of the last round
    rounds: int  # generation rounds: 1 + the tool calls answered
    message: Message  # the last assistant message

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        why = {"closed": "", "max_tokens": ", stopped at max tokens", "stopped": ", stopped",
               "tool_rounds": f", stopped after {self.rounds - 1} tool calls"}.get(self.reason, "")
        return f"{self.tokens} tokens in {self.seconds:.2f} s ({self.tokens_per_s:.1f} tokens/s){why}"


ChatUpdate = Union[TokenText, ToolCalled, ToolAnswered, ContextTrimmed, ReplyDone]


class ChatSession:
    """A conversation with one model. Not thread-safe: one `send` at a time (the app runs it
    in a worker thread and changes settings only between turns)."""

    def __init__(self, model: GPT, tok: Tokenizer, *, system: str | None = None,
                 sampling: SamplingConfig = SamplingConfig(), tools: ToolRegistry | None = None,
                 max_tool_rounds: int = MAX_TOOL_ROUNDS, use_cache: bool = True, raw: bool = False) -> None:
        self.model = model
        self.tok = tok
        self.system = system or None
        self.sampling = sampling
        self.tools = default_tools() if tools is None else tools
        self.max_tool_rounds = max_tool_rounds
        self.use_cache = use_cache
        self.raw = raw  # continue each message as plain text (a base model), not as a user turn
        self.stop_ids = default_stop_ids(tok, raw)
        self.messages: list[Message] = []
        self._lengths: list[int] = []  # rendered length of each message (cached)
        self.checkpoint: Any = None  # the engine.checkpoint.Checkpoint, when loaded from one

    @classmethod
    def from_checkpoint(cls, name_or_path: str | Path, *, device: str = "cpu",
                        root: str | Path = "checkpoints", **kw) -> "ChatSession":
        """Load a checkpoint (a name under root, a path, a run folder) and start a session (raw
        for a base model unless `raw` says otherwise)."""
        from .checkpoint import load_model
        from .tokenizer import from_state

        model, ckpt = load_model(name_or_path, device=device, root=root)
        kw.setdefault("raw", ckpt.base_model)
        session = cls(model, from_state(ckpt.tokenizer_state), **kw)
        session.checkpoint = ckpt
        return session

    @property
    def block_size(self) -> int:
        return self.model.config.block_size

    def clear(self) -> None:
        """Forget the conversation (the system prompt and settings stay)."""
        self.messages.clear()
        self._lengths.clear()

    def prompt(self, newest: int | None = None) -> tuple[list[int], ContextTrimmed | None]:
        """The prompt for the next reply, and how it was trimmed (None: it fits whole).

        Whole exchanges (a user message and what followed it) are dropped oldest first; the
        system prompt and the newest turn (from message `newest` on) are always kept.
        """
        msgs = self.messages
        newest = len(msgs) - 1 if newest is None else newest
        for m in msgs[len(self._lengths):]:
            self._lengths.append(len(render_turns([m], self.tok)[0]))
        system_len = len(render_prompt([], self.tok, self.system)) - 1
        budget = self.block_size - min(self.sampling.max_new_tokens, self.block_size // 2)
        need = system_len + sum(self._lengths) + 1
        first = 0
        while need > budget and first < newest:
            nxt = next((i for i in range(first + 1, newest + 1) if msgs[i].role == "user"), newest)
            need -= sum(self._lengths[first:nxt])
            first = nxt
        ids = render_prompt(msgs[first:], self.tok, self.system)
        cut = max(0, len(ids) - budget)
        if cut:  # the newest turn alone is too long: cut its front, keep the system block if it fits
            keep = system_len if system_len < budget // 2 else 0
            ids = ids[:keep] + ids[keep + cut:]
        if first == 0 and cut == 0:
            return ids, None
        return ids, ContextTrimmed(first, len(ids), self.block_size, cut)

    def send(self, user_text: str, should_stop: Callable[[], bool] | None = None) -> Iterator[ChatUpdate]:
        """Add a user turn and stream the assistant's answer (tool calls run in between)."""
        if not user_text.strip():
            raise ValueError("the message is empty")
        if self.raw:
            yield from self._continue(user_text, should_stop)
            return
        self.messages.append(Message("user", user_text))
        newest = len(self.messages) - 1
        try:
            yield from self._answer(newest, should_stop)
        finally:
            if len(self.messages) == newest + 1:  # failed or abandoned before any reply: forget the turn
                self.messages.pop()
                del self._lengths[newest:]

    def _answer(self, newest: int, should_stop: Callable[[], bool] | None) -> Iterator[ChatUpdate]:
        started = time.perf_counter()
        total, rounds, last_trim = 0, 0, None
        while True:
            rounds += 1
            ids, trimmed = self.prompt(newest)
            if trimmed is not None and trimmed != last_trim:
                last_trim = trimmed
                yield trimmed
            reply_ids: list[int] = []
            yield from self._stream(ids, reply_ids, should_stop)
            total += len(reply_ids)
            reply = parse_reply(reply_ids, self.tok)
            message = reply.as_message()
            self.messages.append(message)
            reason = self._ended(reply.closed, len(reply_ids))
            answered = 0
            if reason != "stopped" and reply.tool_calls:
                if rounds > self.max_tool_rounds:
                    reason = "tool_rounds"
                else:
                    for update in self._run_tools(reply.tool_calls):
                        answered += isinstance(update, ToolAnswered)
                        yield update
            if not answered or (should_stop is not None and should_stop()):
                if answered:
                    reason = "stopped"
                break
        yield ReplyDone(reason, total, time.perf_counter() - started, len(ids), rounds, message)

    def _continue(self, text: str, should_stop: Callable[[], bool] | None) -> Iterator[ChatUpdate]:
        """A raw session's reply: the text continued as plain text (the newest part kept to fit)."""
        started = time.perf_counter()
        ids = self.tok.encode(text)
        kept = fit_prompt(ids, self.block_size, self.sampling.max_new_tokens)
        if len(kept) < len(ids):
            yield ContextTrimmed(0, len(kept), self.block_size, cut=len(ids) - len(kept))
        out: list[int] = []
        pieces: list[str] = []
        for update in self._stream(kept, out, should_stop):
            pieces.append(update.text)
            yield update
        yield ReplyDone(self._ended(bool(out) and out[-1] in self.stop_ids, len(out)), len(out),
                        time.perf_counter() - started, len(kept), 1, Message("assistant", "".join(pieces)))

    def _ended(self, closed: bool, generated: int) -> str:
        """Why a reply ended: "closed" (its own end), "max_tokens", or "stopped" (asked to)."""
        if closed:
            return "closed"
        return "max_tokens" if generated >= self.sampling.max_new_tokens else "stopped"

    def _stream(self, ids: list[int], out: list[int], should_stop: Callable[[], bool] | None) -> Iterator[TokenText]:
        """Generate one assistant block, yielding its text by part; the ids go into `out`."""
        tok = self.tok
        decoder = StreamDecoder(tok)
        part = "content"
        for token in generate(self.model, ids, self.sampling, stop_ids=self.stop_ids,
                              use_cache=self.use_cache, should_stop=should_stop):
            out.append(token)
            if token in self.stop_ids:
                break
            if tok.is_tag(token):
                tail = decoder.flush()
                if tail:
                    yield TokenText(tail, part)
                decoder = StreamDecoder(tok)
                name = tag_name(tok.id_to_tag[token])
                part = _PARTS.get(name, "content" if name.startswith("/") else part)
                continue
            piece = decoder.feed(token)
            if piece:
                yield TokenText(piece, part)
        tail = decoder.flush()
        if tail:
            yield TokenText(tail, part)

    def _run_tools(self, raw_calls: list[str]) -> Iterator[ToolCalled | ToolAnswered]:
        for raw in raw_calls:
            call = parse_tool_call(raw)
            if isinstance(call, str):
                yield ToolCalled(None, {}, raw, error=call)
                continue
            yield ToolCalled(call.name, dict(call.arguments), raw)
            result = self.tools.call(call.name, call.arguments)
            self.messages.append(Message("toolresult", result.content, name=call.name))
            yield ToolAnswered(call.name, result.content, result.ok)
