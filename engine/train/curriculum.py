"""A curriculum at run time: every phase's dataset opened and checked before step 0, and which phase
trains a given step.

Phase k trains the steps after its start (the steps done before it: 0, then each previous phase's
until_iter) up to its own until_iter. The learning-rate schedule runs on over the whole run; at a
switch the sampler starts the new phase's epoch 0 (seeded by epoch_seed as any run), the audit
records the phase's eligible set, and evaluation moves to the phase's validation split (as MyPT's
does). A resume continues in the phase its checkpoint was in, with the exact next batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..config import TrainConfig
from ..config.curriculum import phase_starts
from ..sampler import Eligibility
from .data import Data, eligible, open_data
from .job import TrainError


@dataclass(frozen=True)
class Phase:
    index: int
    name: str
    start: int  # optimizer steps done before it begins
    until: int | None  # the step it ends at (None: the end of the run)
    description: str
    data: Data
    elig: Eligibility

    def summary(self) -> dict:
        """What the pre-flight report and the events say of it."""
        return {"phase": self.index + 1, "name": self.name, "dataset": str(self.data.path), "start": self.start,
                "until": self.until, "eligible": int(len(self.elig.eligible)), "description": self.description}


def open_phases(cfg: TrainConfig, first: Data, first_elig: Eligibility) -> list[Phase]:
    """The curriculum's phases, each dataset opened and its eligible episodes counted; [] without one.
    The first phase is the run's dataset (already open). Every phase must share its tokenizer."""
    if cfg.curriculum is None:
        return []
    phases = []
    for k, (p, start) in enumerate(zip(cfg.curriculum["phases"], phase_starts(cfg.curriculum))):
        where = f"curriculum phase {k + 1} ({p['name']!r})"
        if k == 0:
            data, elig = first, first_elig
        else:
            data = open_data(Path(p["dataset_dir"]), cfg, role=f"{where} dataset_dir")
            if not data.tok.same_as(first.tok.state()):
                raise TrainError(f"{where}: {data.path} was prepared with another tokenizer ({data.tok.kind}, "
                                 f"vocabulary {data.tok.model_vocab_size}) than {first.path} ({first.tok.kind}, "
                                 f"vocabulary {first.tok.model_vocab_size}): every phase must share one")
            try:
                elig = eligible(data, cfg)
            except TrainError as e:
                raise TrainError(f"{where}: {e}") from None
        phases.append(Phase(k, p["name"], start, p["until_iter"], p["description"], data, elig))
    return phases


def phase_of_step(phases: list[Phase], step: int) -> int:
    """The phase that trains optimizer step `step` (1-based): the last one that began before it."""
    k = 0
    for phase in phases:
        if phase.start < step:
            k = phase.index
    return k


def unreached(phases: list[Phase], max_iters: int) -> list[Phase]:
    """Phases that begin only after max_iters: they would never train."""
    return [p for p in phases if p.start >= max_iters]
