"""Evaluation during training: fixed batches, so that every evaluation of a run measures the same
tokens and the curve moves only because the model does."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..batching import collate
from ..config import TrainConfig
from ..dataset import EpisodeSplit
from ..device import autocast
from ..events import Eval, RunWarning
from ..model import GPT
from ..sampler import Eligibility, pack_rows

OVERFIT_GAP = 1.0  # the guide: val loss above train loss by more than 1.0 means overfitting


class EvalSet:
    """A fixed set of batches (the first `eval_iters` batches of a split in file order)."""

    def __init__(self, split: EpisodeSplit, elig: Eligibility, cfg: TrainConfig, pad_id: int) -> None:
        self.split, self.cfg, self.pad_id = split, cfg, pad_id
        self.rows: list[list[list[int]]] = []
        pos = 0
        for _ in range(cfg.eval_iters):
            if pos >= len(elig.eligible):
                break
            if cfg.batching == "pad":
                rows = [[int(i)] for i in elig.eligible[pos:pos + cfg.batch_size]]
                pos += len(rows)
            else:
                rows, pos = pack_rows(elig.eligible, pos, split.lengths, cfg.block_size, cfg.batch_size)
            self.rows.append(rows)

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


@dataclass
class EvalSets:
    """What a run evaluates on: a fixed train subset (never the training stream) and val, when there is one."""

    train: EvalSet
    val: EvalSet | None

    def evaluate(self, model: GPT, device: torch.device, dtype: torch.dtype | None, step: int) -> Eval:
        """Train and val loss at `step`; the model is back in training mode afterwards."""
        model.eval()
        train_loss, _, _ = self.train.evaluate(model, device, dtype)
        val_loss = val_acc = None
        n_val = 0
        if self.val is not None:
            val_loss, val_acc, n_val = self.val.evaluate(model, device, dtype)
        model.train()
        return Eval(step=step, val_loss=val_loss, train_loss=train_loss, val_accuracy=val_acc, val_tokens=n_val)


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
