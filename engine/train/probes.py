"""Generation probes while training: greedy replies on a fixed sample of each eval set's episodes
(and on MyPT's eval prompts), scored exactly as `mypt eval` scores them.

Loss alone misses a model that stops closing its replies or starts echoing the question; a few
greedy replies at each eval catch it. They cost decoding time, so the rounds are bounded by a
share of the run's time (`probe_budget`, 10% by default): the first round measures what a round
costs, and a later round that would lift the probes' share of the run's projected time above
the budget (keeping room for a round at the final eval) is skipped, and reported. Probe replies
use the same scoring loop as `mypt eval` (engine.eval.score_episodes): the same prompts, token
limit and scorer, so the two agree.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Iterable

import numpy as np

from ..config import TrainConfig
from ..episode import Message
from ..eval import DEFAULT_MARGIN, EvalSource, Metrics, TurnResult, score_episodes
from ..events import Probe
from ..generate import SamplingConfig, default_stop_ids, generate
from ..model import GPT
from ..scoring import TurnScore, score_reply
from ..tokenizer import Tokenizer


@dataclass(frozen=True)
class PromptProbe:
    """One prompt of MyPT's eval prompts file, encoded; `gold` is its expected output (None: not scored)."""

    name: str
    prompt: list[int]
    gold: Message | None
    gold_tokens: int  # the expected reply's tokens with its closing tag


def probe_sample(split: EvalSource, n: int, seed: int) -> list[int]:
    """n episodes of a split chosen with eval_seed: the same seed, the same episodes, every eval."""
    return [int(i) for i in np.random.RandomState(seed).permutation(len(split))[:n]]


def counts(results: Iterable[TurnScore]) -> dict:
    """The counts and rates of scored turns, as Probe events carry them."""
    m = Metrics()
    for s in results:
        m.add_turn(s)
    return {"turns": m.turns, "exact": m.exact, "formatted": m.formatted, "tool_turns": m.tool_turns,
            "tool_valid": m.tool_valid, "exact_match": m.exact_match, "format_compliance": m.format_compliance,
            "tool_call_validity": m.tool_call_validity}


def summary(results: list[TurnResult]) -> dict:
    """A set's probe scores: overall counts and rates, and the same per skill family."""
    families = sorted({t.family for t in results})
    return {**counts(t.score for t in results),
            "families": {f: counts(t.score for t in results if t.family == f) for f in families}}


def reply_record(set_name: str, t: TurnResult) -> dict:
    s = t.score
    return {"set": set_name, "episode": t.episode, "turn": t.turn, "family": t.family, "gold": t.gold,
            "reply": s.reply, "exact": s.exact, "formatted": s.formatted, "problem": s.problem}


class Probes:
    """The probe rounds of one run; `round()` is called after every eval on rank 0."""

    def __init__(self, tok: Tokenizer, cfg: TrainConfig, sources: list[tuple[str, EvalSource]],
                 prompts: list[PromptProbe]) -> None:
        self.tok, self.cfg, self.prompts = tok, cfg, prompts
        self.samples = [(name, split, probe_sample(split, cfg.probe_episodes, cfg.eval_seed))
                        for name, split in sources]
        self.clock = time.time()  # the run's time starts here (just before its first step)
        self.spent = 0.0
        self.last: float | None = None  # what the last round took: the forecast of the next
        self.evals = 0

    @property
    def active(self) -> bool:
        return self.cfg.probe_interval > 0 and bool(self.samples or self.prompts)

    def round(self, model: GPT, step: int, final: bool = False, eta: float | None = None,
              untrained: bool = False) -> Probe | None:
        """Probe if this eval is due (every probe_interval evals from the first, and the last) and the
        budget allows; None when not due, a Probe with `skipped` when the budget says no.

        The budget: the probes' time, counting this round and one more kept for the final eval,
        must stay within probe_budget x the run's projected length (its time so far plus `eta`,
        the trainer's estimate of the rest). A round is forecast to cost what the last one did;
        the first round always runs (it is what measures the cost). `untrained`: the step 0 of a
        run from scratch, whose random weights run every reply to its token limit and say nothing
        (a continued checkpoint's step 0 is probed: it is the baseline forgetting is measured from)."""
        if not self.active:
            return None
        self.evals += 1
        if (self.evals - 1) % self.cfg.probe_interval and not final:
            return None
        budget = self.cfg.probe_budget
        elapsed = time.time() - self.clock
        if untrained:
            return Probe(step=step, budget=budget, skipped="untrained weights (a run from scratch): "
                                                           "the first round comes at the next eval")
        if self.last is not None:
            reserve = 0.0 if final else self.last
            need = self.spent + self.last + reserve
            projected = elapsed + (eta if eta is not None else elapsed) + self.last + reserve
            if need > budget * projected:
                return Probe(step=step, spent=self.spent, share=self.spent / max(elapsed, 1e-9), budget=budget,
                             skipped=f"probes took {self.spent:.1f} s of the run's {elapsed:.0f} s; another round "
                                     f"(about {self.last:.1f} s) would pass probe_budget = {budget:g}")
        t0 = time.time()
        sets, replies = {}, []
        for name, split, indices in self.samples:
            results = score_episodes(model, self.tok, split, indices, DEFAULT_MARGIN,
                                     max_new_tokens=self.cfg.eval_max_new_tokens)
            sets[name] = summary(results)
            replies += [reply_record(name, t) for t in results]
        if self.prompts:
            scored, prompt_replies = self._prompts(model)
            sets["prompts"] = {**counts(scored), "families": {}}
            replies += prompt_replies
        seconds = time.time() - t0
        self.spent += seconds
        self.last = seconds
        return Probe(step=step, sets=sets, replies=replies, seconds=seconds, spent=self.spent,
                     share=self.spent / max(time.time() - self.clock, 1e-9), budget=budget)

    def _prompts(self, model: GPT) -> tuple[list[TurnScore], list[dict]]:
        """MyPT's prompts, greedily; those with an expected output are scored."""
        stops = default_stop_ids(self.tok)
        cap = self.cfg.eval_max_new_tokens
        scored, replies = [], []
        for p in self.prompts:
            limit = min(p.gold_tokens + DEFAULT_MARGIN, cap) if p.gold is not None else cap
            out = list(generate(model, p.prompt, SamplingConfig(temperature=0.0, repetition_penalty=1.0,
                                                                max_new_tokens=limit), stop_ids=stops))
            s = score_reply(p.gold or Message("assistant", ""), out, self.tok)
            if p.gold is not None:
                scored.append(s)
            replies.append({"set": "prompts", "episode": p.name, "turn": 1, "family": "prompts",
                            "gold": p.gold.content if p.gold is not None else None, "reply": s.reply,
                            "exact": s.exact if p.gold is not None else None, "formatted": s.formatted,
                            "problem": s.problem if p.gold is not None else None})
        return scored, replies
