"""The audit is anchored: a real run verifies, and every way of rewriting its audit is caught
(appended, cut, emptied, edited, reordered with the chain recomputed), while a resume, a stop and
a continued run still verify."""

from __future__ import annotations

import json
import shutil

import pytest

from engine.audit import digest
from engine.audit_verify import verify_run
from engine.config import TrainConfig
from engine.train.job import TrainJob
from engine.train.loop import run_training
from helpers_data import prepared, varied


def tiny(**kw) -> TrainConfig:
    base = dict(n_layer=1, n_embd=16, n_head=2, block_size=96, dropout=0.0, learning_rate=3e-3, batch_size=4,
                max_iters=12, warmup_iters=2, eval_interval=6, eval_iters=1, save_every=4, device="cpu",
                precision="fp32", batching="pack", episode_min_tokens=4)
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def honest(tmp_path_factory):
    """A finished run, stopped at step 5 and resumed to its end on the way (to anchor across a resume)."""
    tmp = tmp_path_factory.mktemp("anchors")
    prepared(tmp, varied(40), tokenization="char", val_split=0.2, seed=3)
    run = tmp / "run"
    seen: list = []
    run_training(TrainJob(config=tiny(), dataset=tmp / "out", output=run), [seen.append],
                 should_stop=lambda: sum(type(e).__name__ == "Step" for e in seen) >= 5)
    run_training(TrainJob(config=tiny(), dataset=tmp / "out", output=run, resume=True))
    return run


def copy_of(run, tmp_path):
    dest = tmp_path / "copy"
    shutil.copytree(run, dest)
    return dest


def records(run) -> list[dict]:
    return [json.loads(line) for line in (run / "audit.jsonl").read_text().splitlines()]


def write(run, recs: list[dict], rechain: bool = False) -> None:
    prev = "0" * 64
    out = []
    for rec in recs:
        if rechain:
            rec = {**rec, "prev": prev}
            rec["hash"] = digest(rec)
            prev = rec["hash"]
        out.append(json.dumps(rec))
    (run / "audit.jsonl").write_text("".join(line + "\n" for line in out))


def test_an_honest_run_with_a_stop_and_a_resume_verifies(honest):
    rep = verify_run(honest)
    assert rep.ok, rep.errors
    assert rep.anchors_checked >= 4 and rep.steps == 12


def test_a_forged_record_appended_with_a_valid_hash_is_caught(honest, tmp_path):
    run = copy_of(honest, tmp_path)
    recs = records(run)
    forged = {**recs[-1], "step": 13, "prev": recs[-1]["hash"]}
    forged["hash"] = digest(forged)
    write(run, recs + [forged])
    rep = verify_run(run)
    assert any("added after the end" in e for e in rep.errors), rep.errors


def test_a_chain_recomputed_after_reordering_episodes_is_caught(honest, tmp_path):
    run = copy_of(honest, tmp_path)
    recs = records(run)
    step = next(r for r in recs if r["kind"] == "step" and len(r["micro_batches"][0]["episodes"]) > 1)
    step["micro_batches"][0]["episodes"].reverse()
    write(run, recs, rechain=True)
    errors = verify_run(run).errors
    assert any("is not the one it anchored" in e for e in errors), errors
    assert any("differ from the step event" in e for e in errors), errors


@pytest.mark.parametrize("keep", [0, 5])
def test_a_cut_tail_or_an_emptied_file_is_caught(honest, tmp_path, keep):
    run = copy_of(honest, tmp_path)
    write(run, records(run)[:keep])
    errors = verify_run(run).errors
    assert any("records were removed" in e for e in errors), errors
    assert any("steps missing from the audit" in e for e in errors), errors


def test_a_missing_start_record_is_caught(honest, tmp_path):
    run = copy_of(honest, tmp_path)
    write(run, records(run)[1:], rechain=True)
    assert "line 1: the first record must be the run's start record" in verify_run(run).errors
