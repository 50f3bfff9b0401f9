"""Evaluation during training: fixed samples, so that every evaluation of a run measures the same
tokens and the curves move only because the model does.

Each eval set is scored on a sample chosen once, with `eval_seed`: the episodes of a prepared
dataset's split in a seeded order, packed into `eval_iters` batches (the whole split when it
fits), or, for a MyPT token-stream dataset (pretraining shards, no loss mask), `eval_iters`
batches of windows at seeded positions. The run's own val split is the set named "val"; a fixed
train subset gives the train loss and accuracy the guards and the saturation detector compare.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Union

import numpy as np
import torch

from ..batching import collate
from ..config import TrainConfig
from ..dataset import EpisodeSplit
from ..device import autocast
from ..events import Eval, RunWarning
from ..model import GPT
from ..sampler import Eligibility, pack_rows

OVERFIT_GAP = 1.0  # the guide: val loss above train loss by more than 1.0 means overfitting
_HEAD_CHUNK = 8192  # positions whose logits are computed at once (a 50k vocabulary: 1.6 GB in fp32)


def seeded_order(eligible: np.ndarray, seed: int) -> np.ndarray:
    """The eligible episodes in the order eval_seed gives them (the same seed, the same order)."""
    return np.asarray(eligible)[np.random.RandomState(seed).permutation(len(eligible))]


class EvalSet:
    """A fixed set of batches from a split: its eligible episodes in `eval_seed` order, packed
    (or one a row) into at most `eval_iters` batches."""

    kind = "episodes"

    def __init__(self, split: EpisodeSplit, elig: Eligibility, cfg: TrainConfig, pad_id: int) -> None:
        self.split, self.cfg, self.pad_id = split, cfg, pad_id
        self.rows: list[list[list[int]]] = []
        order = seeded_order(elig.eligible, cfg.eval_seed)
        pos = 0
        for _ in range(cfg.eval_iters):
            if pos >= len(order):
                break
            if cfg.batching == "pad":
                rows = [[int(i)] for i in order[pos:pos + cfg.batch_size]]
                pos += len(rows)
            else:
                rows, pos = pack_rows(order, pos, split.lengths, cfg.block_size, cfg.batch_size)
            self.rows.append(rows)

    @property
    def episodes(self) -> list[int]:
        """The episodes the sample holds, in the order they are scored."""
        return [i for rows in self.rows for row in rows for i in row]

    @torch.no_grad()
    def evaluate(self, model: GPT, device: torch.device, dtype: torch.dtype | None) -> tuple[float, float, int]:
        """(mean loss over supervised tokens, masked next-token accuracy, supervised tokens)."""
        loss_sum, correct, n = 0.0, 0, 0
        for rows in self.rows:
            b = collate(rows, self.split, block_size=self.cfg.block_size, batching=self.cfg.batching,
                        pad_id=self.pad_id, use_loss_mask=self.cfg.use_loss_mask,
                        reset_positions=self.cfg.segment_position_reset).to(device)
            with autocast(device, dtype):
                h = model.hidden(b.x, segment_ids=b.segment_ids, position_ids=b.position_ids)
                logits = model.head(h[b.mask]).float()
            targets = b.y[b.mask]
            loss_sum += torch.nn.functional.cross_entropy(logits, targets, reduction="sum").item()
            correct += int((logits.argmax(-1) == targets).sum())
            n += int(targets.numel())
        return (loss_sum / n if n else float("nan")), (correct / n if n else 0.0), n


class TokenWindows:
    """A MyPT token-stream dataset (pretraining shards of uint32 tokens, no mask): `eval_iters`
    batches of `batch_size` windows of block_size + 1 tokens at positions eval_seed picks; every
    next token is scored (the loss MyPT reports for such sets)."""

    kind = "tokens"

    def __init__(self, shards: list[np.ndarray], cfg: TrainConfig) -> None:
        self.cfg = cfg
        span = cfg.block_size + 1
        usable = [s for s in shards if len(s) >= span]
        rng = np.random.RandomState(cfg.eval_seed)
        self.windows: list[np.ndarray] = []
        for _ in range(cfg.eval_iters * cfg.batch_size if usable else 0):
            shard = usable[rng.randint(len(usable))]
            start = rng.randint(len(shard) - span + 1)
            self.windows.append(np.asarray(shard[start:start + span], dtype=np.int64))

    @torch.no_grad()
    def evaluate(self, model: GPT, device: torch.device, dtype: torch.dtype | None) -> tuple[float, float, int]:
        loss_sum, correct, n = 0.0, 0, 0
        for k in range(0, len(self.windows), self.cfg.batch_size):
            w = torch.from_numpy(np.stack(self.windows[k:k + self.cfg.batch_size])).to(device)
            x, y = w[:, :-1], w[:, 1:].reshape(-1)
            with autocast(device, dtype):
                h = model.hidden(x).reshape(-1, model.config.n_embd)
            for a in range(0, len(y), _HEAD_CHUNK):
                with autocast(device, dtype):
                    logits = model.head(h[a:a + _HEAD_CHUNK]).float()
                t = y[a:a + _HEAD_CHUNK]
                loss_sum += torch.nn.functional.cross_entropy(logits, t, reduction="sum").item()
                correct += int((logits.argmax(-1) == t).sum())
                n += int(t.numel())
        return (loss_sum / n if n else float("nan")), (correct / n if n else 0.0), n


Scorer = Union[EvalSet, TokenWindows]


@dataclass
class NamedSet:
    """One eval set of the run: "val" (its own split) or a key of eval_sets."""

    name: str
    path: str
    split: str  # the split scored: "val", else "train" for a dataset without one
    scorer: Scorer
    episodes: EpisodeSplit | None = None  # what probes draw from (None for a token stream)

    @property
    def kind(self) -> str:
        return self.scorer.kind


@dataclass
class EvalSets:
    """What a run evaluates on: a fixed train subset (never the training stream) and the eval
    sets, "val" first when the run has a val split."""

    train: EvalSet
    sets: list[NamedSet] = field(default_factory=list)
    probes: Any = None  # engine.train.probes.Probes over these sets (built with them)

    @property
    def val(self) -> NamedSet | None:
        return next((s for s in self.sets if s.name == "val"), None)

    def evaluate(self, model: GPT, device: torch.device, dtype: torch.dtype | None, step: int) -> Eval:
        """Every set's loss and accuracy at `step`; the model is back in training mode afterwards."""
        t0 = time.time()
        model.eval()
        try:
            train_loss, train_acc, _ = self.train.evaluate(model, device, dtype)
            scores = {}
            for s in self.sets:
                loss, acc, n = s.scorer.evaluate(model, device, dtype)
                scores[s.name] = {"loss": loss, "token_accuracy": acc if n else None, "tokens": n,
                                  "kind": s.kind, "split": s.split, "path": s.path}
        finally:
            model.train()
        val = scores.get("val")
        return Eval(step=step, val_loss=val["loss"] if val else None, train_loss=train_loss,
                    val_accuracy=val["token_accuracy"] if val else None, val_tokens=val["tokens"] if val else 0,
                    train_accuracy=train_acc, sets=scores, seconds=time.time() - t0)


def overfitting(ev: Eval) -> RunWarning | None:
    """The guide's overfitting warning, when val loss has pulled away from train loss."""
    if ev.val_loss is not None and ev.val_loss - ev.train_loss > OVERFIT_GAP:  # a NaN gap warns of nothing
        return RunWarning(step=ev.step, code="overfitting", message=(
            f"val loss {ev.val_loss:.3f} exceeds train loss {ev.train_loss:.3f} by more than {OVERFIT_GAP}: "
            "overfitting; stop early, raise dropout or weight_decay, or add data"))
    return None


def metrics_of(ev: Eval) -> dict:
    """The eval numbers a checkpoint records."""
    return {"train_loss": ev.train_loss, "val_loss": ev.val_loss, "val_accuracy": ev.val_accuracy}
