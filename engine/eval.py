"""Scoring a checkpoint on held-out episodes: does it say what the gold says, in the format?

For every assistant turn of an episode the model continues the conversation so far (the gold
history, rendered exactly as in training, ending with an open `<myPT_assistant>`) greedily, and
the reply is scored against the gold turn (exact match, format compliance and tool-call
validity: the rules are in engine.scoring).

The conversation so far is cut from the prepared episode's own tokens (everything up to and
including the turn's opening tag): the renderer made those tokens, so this is the same sequence
`render_prompt` gives for the gold history, with the system text the dataset was prepared with.
Teacher-forced masked loss and next-token accuracy over the same episodes complete the picture
(the numbers the trainer's eval reports). Everything is aggregated per skill family
(`meta.family` of each episode) and overall.

A base model (`Checkpoint.base_model`: pretrained, never fine-tuned on chat) is asked in plain
text instead (`raw`: engine.scoring's raw_prompt and score_raw): the user's question as a line of
text, its first line back as the reply. The teacher-forced loss stays on the chat rendering (what
SFT trains), so a base model's loss there says how far it is from the chat format.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Protocol

import numpy as np
import torch
import torch.nn.functional as F

from .batching import collate
from .errors import MyptError
from .generate import SamplingConfig, default_stop_ids, generate
from .model import GPT
from .sampler import pack_rows
from .scoring import TurnScore, episode_turns, raw_prompt, score_raw, score_reply
from .tokenizer import Tokenizer

DEFAULT_MARGIN = 16  # tokens a reply may run past the gold reply's length before it counts as unclosed
ALL = "overall"


class EvalCancelled(MyptError):
    """should_stop() asked the eval to stop."""


class EvalSource(Protocol):
    """What the eval reads from a split (engine.dataset.EpisodeSplit has all of it)."""

    lengths: np.ndarray
    ids: list[str]
    families: list[str]

    def __len__(self) -> int: ...

    def episode(self, i: int) -> tuple[np.ndarray, np.ndarray]: ...


# -- aggregates ----------------------------------------------------------------------------------

@dataclass
class Metrics:
    """Counts for one family (or overall); the rates are derived from them."""

    episodes: int = 0
    turns: int = 0
    exact: int = 0
    formatted: int = 0
    tool_turns: int = 0
    tool_valid: int = 0
    loss_sum: float = 0.0  # teacher-forced cross-entropy summed over supervised tokens
    tokens: int = 0  # supervised tokens scored teacher-forced
    correct: int = 0  # of them, predicted exactly (argmax)

    @property
    def exact_match(self) -> float | None:
        return self.exact / self.turns if self.turns else None

    @property
    def format_compliance(self) -> float | None:
        return self.formatted / self.turns if self.turns else None

    @property
    def tool_call_validity(self) -> float | None:
        return self.tool_valid / self.tool_turns if self.tool_turns else None

    @property
    def val_loss(self) -> float | None:
        return self.loss_sum / self.tokens if self.tokens else None

    @property
    def token_accuracy(self) -> float | None:
        return self.correct / self.tokens if self.tokens else None

    def add_turn(self, s: TurnScore) -> None:
        self.turns += 1
        self.exact += s.exact
        self.formatted += s.formatted
        if s.tool_call is not None:
            self.tool_turns += 1
            self.tool_valid += s.tool_call

    def to_dict(self) -> dict:
        """The --json form: counts, and rates as fractions in [0, 1] (null when nothing to rate)."""
        return {"episodes": self.episodes, "turns": self.turns, "exact_match": self.exact_match,
                "format_compliance": self.format_compliance, "tool_turns": self.tool_turns,
                "tool_call_validity": self.tool_call_validity, "val_loss": self.val_loss,
                "token_accuracy": self.token_accuracy, "supervised_tokens": self.tokens,
                "exact_turns": self.exact, "formatted_turns": self.formatted, "valid_tool_turns": self.tool_valid}


METRICS = ("exact_match", "format_compliance", "tool_call_validity", "val_loss", "token_accuracy")


@dataclass
class TurnResult:
    episode: str  # episode id
    index: int  # episode index in the split
    turn: int  # 1-based assistant turn of the episode
    family: str
    gold: str  # the gold reply as text (tags written out), without its closing tag
    score: TurnScore

    def to_dict(self) -> dict:
        s = asdict(self.score)
        s["stray_tags"] = list(self.score.stray_tags)
        return {"episode": self.episode, "index": self.index, "turn": self.turn, "family": self.family,
                "gold": self.gold, **s}


@dataclass
class EvalReport:
    checkpoint: str
    step: int | None
    dataset: str
    split: str
    episode_ids: list[str]
    families: dict[str, Metrics]  # sorted by family name
    overall: Metrics
    turns: list[TurnResult] = field(repr=False)
    seconds: float = 0.0
    raw: bool = False  # asked in plain text (a base model), not in the chat format

    @property
    def prompts(self) -> str:
        return "raw" if self.raw else "chat"

    def failures(self) -> list[TurnResult]:
        return [t for t in self.turns if not t.score.passed]

    def rows(self) -> list[tuple[str, Metrics]]:
        """(family, metrics) per family, then ("overall", ...)."""
        return [*self.families.items(), (ALL, self.overall)]

    def to_dict(self, failures: int = 0) -> dict:
        out = {"checkpoint": self.checkpoint, "step": self.step, "prompts": self.prompts,
               "seconds": round(self.seconds, 3),
               "overall": self.overall.to_dict(),
               "families": {k: m.to_dict() for k, m in self.families.items()}}
        if failures:
            out["failures"] = [t.to_dict() for t in self.failures()[:failures]]
        return out


def difference(a: EvalReport, b: EvalReport) -> dict[str, dict[str, float | None]]:
    """b minus a for every metric, per family and overall (None where either side has no value)."""
    out: dict[str, dict[str, float | None]] = {}
    for name, ma in a.rows():
        mb = b.overall if name == ALL else b.families.get(name)
        if mb is None:
            continue
        out[name] = {k: (None if getattr(ma, k) is None or getattr(mb, k) is None
                         else getattr(mb, k) - getattr(ma, k)) for k in METRICS}
    return out


@dataclass(frozen=True)
class EvalProgress:
    phase: str  # "loss" (teacher-forced pass) or "generate"
    done: int  # batches (loss) or episodes (generate) finished
    total: int
    turns: int = 0  # generated turns so far
    exact: int = 0  # of them, exact matches


@dataclass
class EvalOptions:
    split: str = "val"
    limit: int | None = None  # the first N episodes of the split
    margin: int = DEFAULT_MARGIN
    batch_size: int = 8  # rows per teacher-forced batch


# -- running it ----------------------------------------------------------------------------------

def evaluate(model: GPT, tok: Tokenizer, split: EvalSource, options: EvalOptions = EvalOptions(), *,
             checkpoint: str = "", step: int | None = None, dataset: str = "",
             on_progress: Callable[[EvalProgress], None] | None = None,
             should_stop: Callable[[], bool] | None = None, raw: bool = False) -> EvalReport:
    """Score `model` on the first `options.limit` episodes of `split` (all by default); `raw`
    asks it in plain text (a base model).

    Raises EvalCancelled when `should_stop()` turns true (checked every batch and every token).
    """
    t0 = time.time()
    stop = should_stop or (lambda: False)
    report = (lambda p: on_progress(p)) if on_progress else (lambda p: None)
    n = len(split) if options.limit is None else min(options.limit, len(split))
    families = [split.families[i] for i in range(n)]
    per_family: dict[str, Metrics] = {f: Metrics() for f in sorted(set(families))}
    overall = Metrics(episodes=n)
    for f in families:
        per_family[f].episodes += 1

    was_training = model.training
    model.eval()
    try:
        _teacher_forced(model, tok, split, n, options.batch_size, families, per_family, overall, report, stop)

        def scored(done: int, turns: list[TurnResult]) -> None:
            for t in turns:
                per_family[t.family].add_turn(t.score)
                overall.add_turn(t.score)
            report(EvalProgress("generate", done, n, overall.turns, overall.exact))

        results = score_episodes(model, tok, split, range(n), options.margin, should_stop=stop, on_episode=scored,
                                 raw=raw)
    finally:
        model.train(was_training)
    return EvalReport(checkpoint=checkpoint, step=step, dataset=dataset, split=options.split,
                      episode_ids=[split.ids[i] for i in range(n)], families=per_family, overall=overall,
                      turns=results, seconds=time.time() - t0, raw=raw)


def score_episodes(model: GPT, tok: Tokenizer, split: EvalSource, indices: Iterable[int], margin: int = DEFAULT_MARGIN,
                   max_new_tokens: int | None = None, should_stop: Callable[[], bool] | None = None,
                   on_episode: Callable[[int, list[TurnResult]], None] | None = None,
                   raw: bool = False) -> list[TurnResult]:
    """Greedy replies to every assistant turn of the given episodes, each scored against its gold
    turn: the one scoring loop of `mypt eval` and of the trainer's probes, so that the two agree.

    A reply may take the gold reply's length plus `margin` tokens (and at most `max_new_tokens`).
    `raw`: each turn asked as plain text and scored on the reply's first line (a base model).
    Raises EvalCancelled when `should_stop()` turns true.
    """
    stop = should_stop or (lambda: False)
    stops = default_stop_ids(tok, raw)
    results: list[TurnResult] = []
    for done, i in enumerate(indices, 1):
        ids, _ = split.episode(i)
        turns = []
        for k, turn in enumerate(episode_turns(ids, tok), 1):
            limit = len(turn.gold_ids) + margin
            sampling = SamplingConfig(temperature=0.0, repetition_penalty=1.0,
                                      max_new_tokens=limit if max_new_tokens is None else min(limit, max_new_tokens))
            prompt = raw_prompt(turn.prompt, tok) if raw else turn.prompt
            out = list(generate(model, prompt, sampling, stop_ids=stops, should_stop=stop))
            if stop():
                raise EvalCancelled("eval stopped")
            score = score_raw(turn.gold, out, tok) if raw else score_reply(turn.gold, out, tok)
            turns.append(TurnResult(split.ids[i], i, k, split.families[i], tok.decode(turn.gold_ids[:-1]), score))
        results += turns
        if on_episode is not None:
            on_episode(done, turns)
    return results


@torch.inference_mode()
def _teacher_forced(model: GPT, tok: Tokenizer, split: EvalSource, n: int, batch_size: int, families: list[str],
                    per_family: dict[str, Metrics], overall: Metrics, report: Callable[[EvalProgress], None],
                    stop: Callable[[], bool]) -> None:
    """Masked loss and next-token accuracy per episode, packed like the trainer's eval."""
    block = model.config.block_size
    device = model.transformer.wte.weight.device
    order = np.arange(n)
    batches: list[list[list[int]]] = []
    pos = 0
    while pos < n:
        rows, pos = pack_rows(order, pos, split.lengths, block, batch_size)
        batches.append(rows)
    loss_ep = np.zeros(n)
    tokens_ep = np.zeros(n, dtype=np.int64)
    correct_ep = np.zeros(n, dtype=np.int64)
    for done, rows in enumerate(batches, 1):
        if stop():
            raise EvalCancelled("eval stopped")
        b = collate(rows, split, block_size=block, batching="pack", pad_id=tok.pad_id).to(device)
        owner = np.full(b.x.shape, -1, dtype=np.int64)  # episode index of each position
        seg = b.segment_ids.cpu().numpy()
        for r, row in enumerate(rows):
            for k, i in enumerate(row, 1):
                owner[r][seg[r] == k] = i
        h = model.hidden(b.x, segment_ids=b.segment_ids, position_ids=b.position_ids)
        logits = model.head(h[b.mask]).float()
        targets = b.y[b.mask]
        ce = F.cross_entropy(logits, targets, reduction="none").cpu().numpy().astype(np.float64)
        hit = (logits.argmax(-1) == targets).cpu().numpy()
        who = owner[b.mask.cpu().numpy()]
        loss_ep += np.bincount(who, weights=ce, minlength=n)
        tokens_ep += np.bincount(who, minlength=n)
        correct_ep += np.bincount(who, weights=hit, minlength=n).astype(np.int64)
        report(EvalProgress("loss", done, len(batches)))
    for i in range(n):
        for m in (per_family[families[i]], overall):
            m.loss_sum += float(loss_ep[i])
            m.tokens += int(tokens_ep[i])
            m.correct += int(correct_ep[i])


def evaluate_checkpoint(model_name: str | Path, dataset: str | Path, options: EvalOptions = EvalOptions(), *,
                        device: str = "cpu", root: str | Path = "checkpoints",
                        on_progress: Callable[[EvalProgress], None] | None = None,
                        should_stop: Callable[[], bool] | None = None, raw: bool | None = None) -> EvalReport:
    """Load a checkpoint and a prepared dataset, check they share a tokenizer, and evaluate
    (`raw` None: in plain text when the checkpoint is a base model, else in the chat format).

    Raises CheckpointError, DatasetError (ValueError) or KeyError with a message for the user.
    """
    from .checkpoint import check_tokenizer, load_model
    from .dataset import open_dataset

    ds = open_dataset(dataset)
    split = ds.split(options.split)
    if split is None:
        raise ValueError(f"{dataset}: the {options.split} split is empty"
                         + (" (prepare with --val_split or --val_file to hold episodes out)"
                            if options.split == "val" else ""))
    model, ckpt = load_model(model_name, device=device, root=root)
    check_tokenizer(ckpt, ds.tokenizer_state, dataset)
    return evaluate(model, ds.tokenizer(), split, options, checkpoint=str(ckpt.path), step=ckpt.step,
                    dataset=str(dataset), on_progress=on_progress, should_stop=should_stop,
                    raw=ckpt.base_model if raw is None else raw)
