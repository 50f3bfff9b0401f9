"""The trainer as a user relies on it: exact resume, accumulation, pack = pad, events, audit, stops."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import torch

from engine.audit import find_episode
from engine.audit_verify import verify_audit
from engine.batching import collate
from engine.checkpoint import load_model
from engine.dataset import open_dataset
from engine.events import Done, Eval, RunError, RunStart, Step
from engine.model import GPT, GPTConfig
from engine.runs import checkpoints_in, run_info
from engine.sampler import pack_rows
from engine.train.job import TrainError, TrainJob, TrainRequest, build_job
from engine.train.loop import run_training
from engine.train.setup import SupervisedLoss
from helpers_data import prepared, varied
from helpers_train import Recorder, tiny, train


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("data")
    prepared(tmp, varied(48), tokenization="char", val_split=0.25, seed=1)
    return tmp / "out"


def test_resume_after_10_of_20_steps_reproduces_the_losses_exactly(dataset, tmp_path):
    cfg = tiny(dropout=0.1)  # dropout draws random numbers: the RNG state must be restored too
    _, whole = train(dataset, tmp_path / "whole", cfg)
    first, part = train(dataset, tmp_path / "split", cfg, stop_at=10)
    assert first.reason == "stopped" and first.step == 10
    assert [p for p, _ in checkpoints_in(tmp_path / "split")] == [10]
    resumed, rest = train(dataset, tmp_path / "split", cfg, resume=True)
    assert resumed.reason == "completed" and resumed.step == 20
    assert sorted(rest.losses()) == list(range(11, 21))
    assert {**part.losses(), **rest.losses()} == whole.losses()  # identical floats, not approximately
    assert rest.of(RunStart)[0].resumed and rest.of(RunStart)[0].step == 10
    assert verify_audit(tmp_path / "split" / "audit.jsonl").ok


def test_accumulation_2_x_5_matches_batch_10(dataset, tmp_path):
    common = dict(batching="pad", max_iters=1, grad_clip=0.0, eval_interval=1000, save_every=1000, warmup_iters=0)
    _, big = train(dataset, tmp_path / "big", tiny(batch_size=10, gradient_accumulation_steps=1, **common))
    _, acc = train(dataset, tmp_path / "acc", tiny(batch_size=5, gradient_accumulation_steps=2, **common))
    (a,), (b,) = big.of(Step), acc.of(Step)
    assert a.episodes == b.episodes and a.supervised == b.supervised
    assert b.loss == pytest.approx(a.loss, rel=1e-5)
    assert b.grad_norm == pytest.approx(a.grad_norm, rel=1e-4)


def test_pack_and_pad_give_the_same_loss_on_the_same_episodes(dataset):
    split = open_dataset(dataset).split("train")
    torch.manual_seed(0)
    model = GPT(GPTConfig(n_layer=2, n_head=2, n_embd=32, block_size=256, vocab_size=128)).eval()
    loss = SupervisedLoss(model)
    episodes_ = np.arange(8)
    rows, _ = pack_rows(episodes_, 0, split.lengths, 256, 8)
    assert len(rows) < 8 and sorted(i for r in rows for i in r) == episodes_.tolist()
    pad = collate([[int(i)] for i in episodes_], split, block_size=256, batching="pad", pad_id=0)
    pack = collate(rows, split, block_size=256, batching="pack", pad_id=0)
    assert pad.supervised == pack.supervised > 0
    with torch.no_grad():
        assert loss(pack).item() == pytest.approx(loss(pad).item(), rel=1e-5)


def test_events_file_has_one_json_object_per_line(dataset, tmp_path):
    train(dataset, tmp_path / "run", tiny(max_iters=12, eval_interval=6))
    lines = [json.loads(line) for line in (tmp_path / "run" / "events.jsonl").read_text().splitlines()]
    assert lines[0]["type"] == "run_start" and lines[-1]["type"] == "done"
    assert all({"type", "step", "time"} <= set(line) for line in lines)
    steps = [line for line in lines if line["type"] == "step"]
    assert [s["step"] for s in steps] == list(range(1, 13))
    assert all(isinstance(s["loss"], float) and s["episodes"] for s in steps)
    assert [line["step"] for line in lines if line["type"] == "eval"] == [0, 6, 12]
    assert run_info(tmp_path / "run").status == "completed"


def test_loss_masking_is_announced_and_the_loss_goes_down(dataset, tmp_path):
    _, rec = train(dataset, tmp_path / "run", tiny(max_iters=40, eval_interval=20, save_every=1000))
    (start,) = rec.of(RunStart)
    assert start.notes[0].startswith("Using loss masking (assistant-only training)")
    evals = rec.of(Eval)
    assert evals[-1].val_loss < evals[0].val_loss - 1.0


def test_audit_of_a_run_verifies_and_finds_every_episode(dataset, tmp_path):
    train(dataset, tmp_path / "run", tiny(max_iters=12, batch_size=4, batching="pad"))  # 36 episodes: 9 steps an epoch
    audit = tmp_path / "run" / "audit.jsonl"
    report = verify_audit(audit)
    assert report.ok and report.epochs_checked == 1 and report.steps == 12
    for episode_id in open_dataset(dataset).split("train").ids:
        in_epoch0 = [h for h in find_episode(audit, episode_id) if h.epoch == 0]
        assert len(in_epoch0) == 1 and 1 <= in_epoch0[0].step <= 9


def test_stopping_midway_saves_a_loadable_checkpoint(dataset, tmp_path):
    result, rec = train(dataset, tmp_path / "run", tiny(save_every=100), stop_at=5)
    assert result.reason == "stopped" and result.final_checkpoint.name == "step_000005"
    assert rec.of(Done)[0].reason == "stopped"
    model, ckpt = load_model(result.final_checkpoint)
    assert ckpt.meta["step"] == 5 and isinstance(model, GPT)
    assert run_info(tmp_path / "run").status == "stopped"


def test_a_nan_loss_stops_and_keeps_the_last_good_checkpoint(dataset, tmp_path, monkeypatch):
    real = SupervisedLoss.forward
    calls = {"n": 0}

    def poisoned(self, b):
        calls["n"] += 1
        out = real(self, b)
        return out * float("nan") if calls["n"] > 7 else out

    monkeypatch.setattr(SupervisedLoss, "forward", poisoned)
    result, rec = train(dataset, tmp_path / "run", tiny(save_every=5, eval_interval=1000))
    assert result.reason == "failed" and result.step == 7
    (err,) = rec.of(RunError)
    assert err.message.startswith("loss became nan at step 8: stopping. The last good checkpoint is ")
    assert err.last_checkpoint.endswith("step_000005")
    assert [p for p, _ in checkpoints_in(tmp_path / "run")] == [5]
    assert run_info(tmp_path / "run").status == "failed"


def test_an_existing_run_is_not_overwritten_without_asking(dataset, tmp_path):
    train(dataset, tmp_path / "run", tiny(max_iters=2, eval_interval=1000))
    with pytest.raises(TrainError, match="already holds a run: continue it with --resume"):
        train(dataset, tmp_path / "run", tiny(max_iters=2))
    with pytest.raises(TrainError, match="no checkpoint"):  # a job that cannot start...
        train(dataset, tmp_path / "run", tiny(max_iters=3), overwrite=True, init="missing")
    assert checkpoints_in(tmp_path / "run")  # ...leaves the old run as it was
    result, _ = train(dataset, tmp_path / "run", tiny(max_iters=3, eval_interval=1000), overwrite=True)
    assert result.step == 3


def test_a_precision_the_device_lacks_leaves_the_old_run_under_overwrite(dataset, tmp_path):
    train(dataset, tmp_path / "run", tiny(max_iters=2, eval_interval=1000))
    with pytest.raises(TrainError, match="fp16"):  # fp16 needs a CUDA GPU; the config asks for the CPU
        train(dataset, tmp_path / "run", tiny(max_iters=2, precision="fp16"), overwrite=True)
    assert [p for p, _ in checkpoints_in(tmp_path / "run")] == [2]


def test_continuing_a_checkpoint_takes_its_architecture_and_refuses_contradictions(dataset, tmp_path):
    base, _ = train(dataset, tmp_path / "base", tiny(max_iters=2, eval_interval=1000))
    cfg = dataclasses.replace(tiny(max_iters=2, eval_interval=1000), explicit={"n_layer"}, n_layer=3)
    with pytest.raises(TrainError, match="n_layer"):
        train(dataset, tmp_path / "more", cfg, init=str(base.final_checkpoint))
    result, rec = train(dataset, tmp_path / "more2", tiny(max_iters=2, eval_interval=1000, dropout=0.2),
                        init=str(base.final_checkpoint))
    assert rec.of(RunStart)[0].init == str(base.final_checkpoint)
    assert rec.of(RunStart)[0].model["dropout"] == 0.2  # dropout is the fine-tune's choice
    shorter = dataclasses.replace(tiny(max_iters=2, eval_interval=1000), explicit={"block_size"}, block_size=64)
    result, rec = train(dataset, tmp_path / "more3", shorter, init=str(base.final_checkpoint))
    assert result.reason == "completed"  # a shorter context than the checkpoint's is allowed (the OOM advice)
    assert math.isfinite(rec.of(Step)[-1].loss)


def test_tokenization_must_match_the_dataset(dataset, tmp_path):
    with pytest.raises(TrainError, match="--tokenization gpt2 but the dataset"):
        train(dataset, tmp_path / "run", tiny(), tokenization="gpt2")


class ClosingRecorder(Recorder):
    def __init__(self, stop_at: int | None = None):
        super().__init__(stop_at)
        self.closed = 0

    def close(self) -> None:
        self.closed += 1


def test_an_unexpected_failure_is_recorded_and_every_output_closed(dataset, tmp_path, monkeypatch):
    real = SupervisedLoss.forward
    calls = {"n": 0}

    def failing(self, b):
        calls["n"] += 1
        if calls["n"] > 3:
            raise RuntimeError("disk on fire")
        return real(self, b)

    monkeypatch.setattr(SupervisedLoss, "forward", failing)
    rec = ClosingRecorder()
    with pytest.raises(RuntimeError, match="disk on fire"):
        run_training(TrainJob(config=tiny(save_every=2, eval_interval=1000), dataset=dataset, output=tmp_path / "run"),
                     [rec])
    (err,) = rec.of(RunError)
    assert err.step == 4 and err.message == "RuntimeError: disk on fire"
    assert err.last_checkpoint.endswith("step_000002")
    assert rec.closed == 1  # the caller's sinks are closed with the run's own files, once
    assert json.loads((tmp_path / "run" / "events.jsonl").read_text().splitlines()[-1])["type"] == "error"
    assert run_info(tmp_path / "run").status == "failed"
    assert verify_audit(tmp_path / "run" / "audit.jsonl").ok


def test_every_ending_closes_the_sinks_once(dataset, tmp_path):
    for name, stop_at in (("done", None), ("stopped", 2)):
        rec = ClosingRecorder(stop_at)
        run_training(TrainJob(config=tiny(max_iters=4, eval_interval=1000), dataset=dataset, output=tmp_path / name),
                     [rec], should_stop=rec.should_stop)
        assert rec.closed == 1 and rec.of(Done)


def test_continuing_a_checkpoint_records_its_architecture_as_the_runs_config(dataset, tmp_path):
    base, _ = train(dataset, tmp_path / "base", tiny(max_iters=2, eval_interval=1000))
    unset = tiny(max_iters=2, eval_interval=1000, n_layer=3, n_embd=64)  # not explicit: the checkpoint's win
    result, rec = train(dataset, tmp_path / "more", unset, init=str(base.final_checkpoint))
    config = rec.of(RunStart)[0].config
    assert (config["n_layer"], config["n_embd"], config["vocab_size"]) == (2, 32, 128)
    assert "n_layer = 2 " in (tmp_path / "more" / "config.toml").read_text()
    job = build_job(TrainRequest(output=str(tmp_path / "more"), resume=True, overrides={"max_iters": 4}))
    assert (job.config.n_layer, job.config.n_embd) == (2, 32)  # --resume reads config.toml
    assert run_training(job).step == 4
