"""Pretraining on a token stream: every position trains, windows are drawn in a seeded order that
the audit records by shard and offset, a resume continues with the exact next batch, and chat SFT
continues from the pretrained base with its architecture and tokenizer."""

from __future__ import annotations

import json

import pytest

from engine.audit import read_audit
from engine.audit_verify import verify_run
from engine.checkpoint import load_checkpoint
from engine.config import TrainConfig
from engine.corpus import CorpusOptions, prepare_corpus
from engine.events import RunStart, Step
from engine.train.job import TrainError, TrainJob
from engine.train.loop import run_training
from helpers_data import prepared, varied


def tiny(**kw) -> TrainConfig:
    base = dict(n_layer=1, n_embd=32, n_head=2, block_size=32, dropout=0.0, learning_rate=3e-3, batch_size=4,
                max_iters=10, warmup_iters=1, eval_interval=5, eval_iters=2, save_every=5, device="cpu",
                precision="fp32", batching="pad", episode_min_tokens=1)
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("corpus")
    docs = [f"The {c} fox number {k} jumps over the lazy dog near the river bank." for k in range(60)
            for c in ("red", "brown")]
    (tmp / "in.jsonl").write_text("".join(json.dumps({"text": d}) + "\n" for d in docs))
    prepare_corpus(CorpusOptions(tmp / "in.jsonl", tmp / "stream", tokenization="char", val_split=0.1,
                                 tokens_per_shard=1000))
    return tmp / "stream"


def train(corpus, out, cfg=None, **kw):
    events = []
    result = run_training(TrainJob(config=cfg or tiny(), dataset=corpus, output=out, **kw), [events.append])
    return result, events


def test_every_position_trains_and_the_audit_names_windows_by_shard_and_offset(corpus, tmp_path):
    result, events = train(corpus, tmp_path / "run")
    assert result.reason == "completed"
    steps = [e for e in events if isinstance(e, Step)]
    assert all(s.supervised == 4 * 32 for s in steps)  # batch 4 x block 32: every target trained
    start = next(e for e in events if isinstance(e, RunStart))
    assert start.preflight["kind"] == "pretrain"
    recs = [r for r in read_audit(tmp_path / "run" / "audit.jsonl") if r["kind"] == "step"]
    first = recs[0]["micro_batches"][0]["episodes"]
    assert all(e.startswith("shard_") and ":" in e for e in first)
    offsets = {int(e.split(":")[1]) for r in recs for mb in r["micro_batches"] for e in mb["episodes"]
               if e.startswith("shard_00000.bin")}
    assert all(o % 32 == 0 for o in offsets)  # stride block_size inside the first shard
    assert verify_run(tmp_path / "run").ok


def test_the_same_seed_gives_the_same_windows_and_a_resume_the_exact_next_batch(corpus, tmp_path):
    _, straight = train(corpus, tmp_path / "a")
    seen = []
    run_training(TrainJob(config=tiny(), dataset=corpus, output=tmp_path / "b"), [seen.append],
                 should_stop=lambda: sum(isinstance(e, Step) for e in seen) >= 4)
    _, resumed = train(corpus, tmp_path / "b", resume=True)
    losses = {e.step: e.loss for e in straight if isinstance(e, Step)}
    again = {e.step: e.loss for e in seen + resumed if isinstance(e, Step)}
    assert again == losses
    assert [e.episodes for e in straight if isinstance(e, Step)] == \
        [e.episodes for e in seen + resumed if isinstance(e, Step) and e.step in losses][:10]


def test_chat_sft_continues_from_the_pretrained_base(corpus, tmp_path):
    base, _ = train(corpus, tmp_path / "base", tiny(n_layer=2))
    prepared(tmp_path, varied(24), name="chat", tokenization="char", val_split=0.2, seed=2)
    result, events = train(tmp_path / "chat", tmp_path / "sft", tiny(batching="pack", max_iters=4),
                           init=str(base.final_checkpoint))
    start = next(e for e in events if isinstance(e, RunStart))
    assert result.reason == "completed" and start.init == str(base.final_checkpoint)
    assert start.model["n_layer"] == 2 and start.preflight["kind"] == "sft"  # the base's architecture
    # the base is asked in plain text (generate, chat, eval); the SFT model in the chat format
    assert load_checkpoint(base.final_checkpoint).base_model and not load_checkpoint(result.final_checkpoint).base_model
    prepared(tmp_path, varied(24), name="chat_gpt2", tokenization="gpt2", val_split=0.2, seed=2)
    with pytest.raises(TrainError, match="tokeniz"):
        train(tmp_path / "chat_gpt2", tmp_path / "sft2", tiny(batching="pack"), init=str(base.final_checkpoint))


def test_a_stream_too_short_for_one_window_is_refused(corpus, tmp_path):
    with pytest.raises(TrainError, match="fewer than one window"):
        train(corpus, tmp_path / "run", tiny(block_size=100_000, n_layer=1))


def test_a_mypt_base_config_trains_on_a_token_stream_scaled_down_by_flags(corpus, tmp_path, monkeypatch):
    """A config with the keys of MyPT's configs/base/*.json (written for this test): its 750M
    architecture overridden by flags, its token-stream eval sets scored at every eval."""
    from engine.events import Eval
    from engine.train.job import TrainRequest, build_job

    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "general").symlink_to(corpus)
    config = {"name": "GPT-750M-1024-Unified", "description": "From-scratch training.", "batch_size": 12,
              "block_size": 1024, "vocab_size": 50304, "n_embd": 1280, "n_head": 20, "n_layer": 32, "dropout": 0.1,
              "bias": False, "tie_weights": True, "learning_rate": 1.5e-4, "max_iters": 600000,
              "eval_interval": 2000, "eval_iters": 200, "warmup_iters": 30000, "grad_clip": 1.0,
              "weight_decay": 0.1, "use_amp": True, "amp_dtype": "bf16", "eval_sets": {"general": "data/general"},
              "eval_seed": 1337, "log_file": "logs/train/unified_eval.jsonl"}
    (tmp_path / "base.json").write_text(json.dumps(config, indent=2))
    small = {"n_layer": 1, "n_embd": 32, "n_head": 2, "block_size": 32, "vocab_size": None, "batch_size": 2,
             "max_iters": 2, "eval_interval": 2, "eval_iters": 1, "warmup_iters": 0, "device": "cpu",
             "precision": "fp32"}
    job = build_job(TrainRequest(output="base_run", dataset=str(corpus), config="base.json", init="scratch",
                                 overrides=small))
    events = []
    result = run_training(job, [events.append])
    assert result.reason == "completed" and result.step == 2
    evals = [e for e in events if isinstance(e, Eval)]
    assert evals and all(list(e.sets) == ["val", "general"] for e in evals)
    assert (tmp_path / "logs" / "train" / "unified_eval.jsonl").exists()


def test_a_pretrained_base_is_a_base_model_and_its_chat_fine_tune_is_not(corpus, tmp_path):
    """Generation continues a base model's prompt as plain text; the pre-flight says what trains."""
    from engine.checkpoint import load_checkpoint

    base, events = train(corpus, tmp_path / "base", tiny(max_iters=2, eval_interval=2, save_every=2))
    start = next(e for e in events if isinstance(e, RunStart))
    assert start.notes[0].startswith("Pretraining: every position")
    assert load_checkpoint(base.final_checkpoint).base_model
    prepared(tmp_path, varied(24), name="chat", tokenization="char", val_split=0.2, seed=2)
    sft, _ = train(tmp_path / "chat", tmp_path / "sft", tiny(batching="pack", max_iters=2, eval_interval=2,
                                                            save_every=2), init=str(base.final_checkpoint))
    assert not load_checkpoint(sft.final_checkpoint).base_model
