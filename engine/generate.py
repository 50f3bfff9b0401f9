"""Sampling from a GPT: KV-cached decoding that yields token ids as they come.

The prompt is run once (prefill) into a KV cache, then each step feeds only the newest token.
`use_cache=False` is the reference path: the whole context is re-run every step; both paths
see exactly the same window of tokens, so greedy decoding gives the same ids either way.

The context window: a prompt longer than the model's block is trimmed from the front, keeping
room for the reply; when prompt + reply fill the block, the oldest quarter of the window is
dropped and the rest re-run (positions restart at 0, as they would for that text alone).
"""

from __future__ import annotations

import codecs
import math
from dataclasses import dataclass, replace
from typing import Callable, Iterable, Iterator

import torch
import torch.nn.functional as F

from .errors import MyptError
from .model import GPT
from .tokenizer import Tokenizer


class GenerateError(MyptError, ValueError):
    """Generation cannot go on (a model whose output is not a number)."""


@dataclass(frozen=True)
class SamplingConfig:
    temperature: float = 0.8  # 0 = greedy (always the most likely token)
    top_k: int | None = None  # keep only the k most likely tokens
    top_p: float | None = None  # keep the smallest set of tokens whose probability reaches p
    repetition_penalty: float = 1.0  # > 1 makes tokens already in the context less likely
    max_new_tokens: int = 256
    seed: int | None = None  # the same seed, model and prompt give the same reply

    def __post_init__(self) -> None:
        for name in ("temperature", "top_p", "repetition_penalty"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if self.top_k is not None and self.top_k < 1:
            raise ValueError(f"top_k must be >= 1 (or unset), got {self.top_k}")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1] (or unset), got {self.top_p}")
        if self.repetition_penalty <= 0:
            raise ValueError(f"repetition_penalty must be > 0, got {self.repetition_penalty}")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.seed is not None and not -2**63 <= self.seed < 2**64:
            raise ValueError(f"seed must fit in 64 bits, got {self.seed}")


# MyPT's generator settings, so its users find the same behaviour under the same names.
PRESETS: dict[str, SamplingConfig] = {
    "chat": SamplingConfig(temperature=0.8, top_k=50, top_p=0.95, repetition_penalty=1.1),
    "creative": SamplingConfig(temperature=1.0, top_k=100, top_p=0.95, repetition_penalty=1.2),
    "factual": SamplingConfig(temperature=0.3, top_k=10, top_p=0.8, repetition_penalty=1.0),
    "code": SamplingConfig(temperature=0.2, top_k=40, top_p=0.95, repetition_penalty=1.0),
    "deterministic": SamplingConfig(temperature=0.0, repetition_penalty=1.0),
}


def preset(name: str, **overrides) -> SamplingConfig:
    """A preset by name, with some fields replaced (`preset("chat", seed=1)`)."""
    try:
        base = PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}: choose {', '.join(PRESETS)}") from None
    return replace(base, **overrides)


def default_stop_ids(tok: Tokenizer, raw: bool = False) -> frozenset[int]:
    """A reply ends at `</myPT_assistant>` or `<myPT_eot>`; a raw continuation (a base model asked
    in plain text) also where the document ends (gpt2: `<|endoftext|>`)."""
    return frozenset({tok.tag_id("/assistant"), tok.tag_id("eot"), *([tok.doc_sep_id] if raw else [])})


def fit_prompt(prompt_ids: list[int], block_size: int, max_new_tokens: int) -> list[int]:
    """The prompt's tail that leaves room for the reply (at most half the block is reserved)."""
    keep = block_size - min(max_new_tokens, block_size // 2)
    return prompt_ids[-keep:] if len(prompt_ids) > keep else prompt_ids


def next_token(logits: torch.Tensor, sampling: SamplingConfig, generator: torch.Generator | None = None,
               seen: torch.Tensor | None = None) -> int:
    """Pick the next id from the last position's logits (V,): penalty, temperature, top-k, top-p."""
    logits = logits.float()
    if seen is not None and sampling.repetition_penalty != 1.0:
        p = sampling.repetition_penalty  # CTRL's rule: shrink positive logits, grow negative ones
        logits = torch.where(seen, torch.where(logits > 0, logits / p, logits * p), logits)
    if sampling.temperature == 0:
        return int(torch.argmax(logits))
    # shifted so the largest is 0 first: a tiny temperature then sends the rest to -inf, never to nan
    logits = (logits - logits.max()) / sampling.temperature
    if sampling.top_k is not None and sampling.top_k < logits.numel():
        kth = torch.topk(logits, sampling.top_k).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if sampling.top_p is not None and sampling.top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True)
        probs = F.softmax(sorted_logits, dim=-1)
        drop = probs.cumsum(-1) - probs >= sampling.top_p  # mass before this token already reaches p
        logits = logits.masked_fill(torch.zeros_like(drop).scatter(0, order, drop), float("-inf"))
    probs = F.softmax(logits, dim=-1)
    return int(torch.multinomial(probs, 1, generator=generator))


def generate(model: GPT, prompt_ids: Iterable[int], sampling: SamplingConfig, *,
             stop_ids: frozenset[int] | set[int] = frozenset(), use_cache: bool = True,
             should_stop: Callable[[], bool] | None = None) -> Iterator[int]:
    """Yield up to `max_new_tokens` ids; a stop id is yielded last (the reply closed).

    `should_stop()` is checked before every step (a UI's stop button). The repetition penalty
    spares the stop ids: earlier replies closing in the prompt must not make this one run on.
    """
    prompt = [int(i) for i in prompt_ids]
    if not prompt:
        raise ValueError("the prompt is empty: give the model at least one token to continue")
    vocab = model.config.vocab_size
    bad = [i for i in prompt if not 0 <= i < vocab]
    if bad:
        raise ValueError(f"prompt token id {bad[0]} is outside the model's vocabulary of {vocab} "
                         "(was the prompt encoded with another tokenizer?)")
    block = model.config.block_size
    ctx = fit_prompt(prompt, block, sampling.max_new_tokens)
    keep_on_slide = block - block // 4
    device = model.transformer.wte.weight.device
    generator = torch.Generator(device=device)
    if sampling.seed is not None:
        generator.manual_seed(sampling.seed)
    else:
        generator.seed()
    seen = torch.zeros(vocab, dtype=torch.bool, device=device)
    seen[torch.tensor(ctx, device=device)] = True
    seen[torch.tensor([i for i in stop_ids if 0 <= i < vocab], dtype=torch.long, device=device)] = False
    cache = model.new_cache() if use_cache else None
    was_training = model.training
    model.eval()
    try:
        for _ in range(sampling.max_new_tokens):
            if should_stop is not None and should_stop():
                return
            if len(ctx) > block:  # the window is full: drop its oldest part and re-run the rest
                ctx = ctx[-keep_on_slide:]
                if cache is not None:
                    cache.reset()
            with torch.inference_mode():
                new = ctx if cache is None else ctx[cache.pos:]  # with a cache: only what it lacks
                idx = torch.tensor([new], dtype=torch.long, device=device)
                h = model.hidden(idx, kv_cache=cache)[0, -1]
                logits = model.head(h)
                if torch.isnan(logits).any():
                    raise GenerateError("the model's output is not a number (nan): its weights are damaged, "
                                        "or it was saved from a run whose loss became nan")
                token = next_token(logits, sampling, generator, seen)
                if token not in stop_ids:
                    seen[token] = True
            yield token
            if token in stop_ids:
                return
            ctx.append(token)
    finally:
        model.train(was_training)


class StreamDecoder:
    """Ids to text as they arrive; a UTF-8 character split across tokens waits for its last byte."""

    def __init__(self, tok: Tokenizer) -> None:
        self.tok = tok
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(self, token_id: int) -> str:
        return self._utf8.decode(self.tok.token_bytes(int(token_id)))

    def flush(self) -> str:
        """What is left at the end (an unfinished character becomes U+FFFD)."""
        return self._utf8.decode(b"", final=True)
