"""A tiny training setup shared by the trainer's tests: the config, an event recorder that can
stop a run at a step, and a run of it."""

from __future__ import annotations

from engine.config import TrainConfig
from engine.events import Step
from engine.train.job import TrainJob
from engine.train.loop import run_training


def tiny(**kw) -> TrainConfig:
    """2 layers x 32, block 96, packed batches of 4, 20 steps: seconds on a CPU."""
    base = dict(n_layer=2, n_embd=32, n_head=2, block_size=96, dropout=0.0, learning_rate=3e-3, batch_size=4,
                max_iters=20, warmup_iters=2, eval_interval=10, eval_iters=2, save_every=10, grad_clip=1.0,
                device="cpu", precision="fp32", batching="pack", episode_min_tokens=4, log_interval=5)
    base.update(kw)
    return TrainConfig(**base)


class Recorder:
    """The run's events; `should_stop` ends the run once step `stop_at` is done."""

    def __init__(self, stop_at: int | None = None):
        self.events = []
        self.stop_at = stop_at

    def __call__(self, ev):
        self.events.append(ev)

    def should_stop(self) -> bool:
        return self.stop_at is not None and any(isinstance(e, Step) and e.step >= self.stop_at for e in self.events)

    def of(self, kind):
        return [e for e in self.events if isinstance(e, kind)]

    def steps(self) -> list[Step]:
        return self.of(Step)

    def losses(self) -> dict[int, float]:
        return {e.step: e.loss for e in self.steps()}


def train(dataset, out, cfg, stop_at=None, **job):
    rec = Recorder(stop_at)
    result = run_training(TrainJob(config=cfg, dataset=dataset, output=out, **job), [rec], should_stop=rec.should_stop)
    return result, rec
