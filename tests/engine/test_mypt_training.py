"""The keys of MyPT's SFT pipeline change training the way they say: activation checkpointing, NEFTune,
frozen layers, weighted masks, save_dtype, segment_position_reset, log_file, name/description."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from engine.audit import read_audit
from engine.batching import collate
from engine.checkpoint import load_checkpoint, load_train_state, save_checkpoint
from engine.config import ConfigError, TrainConfig
from engine.dataset import open_dataset
from engine.events import RunStart, RunWarning, Step
from engine.model import GPT, GPTConfig
from engine.runs import checkpoints_in
from engine.sizing import model_report
from engine.train.job import TrainError, TrainJob
from engine.train.loop import run_training
from helpers_data import prepared, tool_episode, varied


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("data")
    prepared(tmp, varied(40), tokenization="char", val_split=0.25, seed=1)
    return tmp / "out"


def tiny(**kw) -> TrainConfig:
    base = dict(n_layer=2, n_embd=32, n_head=2, block_size=96, dropout=0.0, learning_rate=3e-3, batch_size=4,
                max_iters=4, warmup_iters=1, eval_interval=4, eval_iters=1, save_every=4, device="cpu",
                precision="fp32", batching="pack", episode_min_tokens=4)
    base.update(kw)
    return TrainConfig(**base)


class Rec(list):
    def __call__(self, ev):
        self.append(ev)

    def of(self, kind):
        return [e for e in self if isinstance(e, kind)]


def train(dataset, out, cfg, **job):
    rec = Rec()
    result = run_training(TrainJob(config=cfg, dataset=dataset, output=out, **job), [rec])
    return result, rec


def model(seed=0, **kw) -> GPT:
    torch.manual_seed(seed)
    return GPT(GPTConfig(**{**dict(n_layer=3, n_head=2, n_embd=32, block_size=32, vocab_size=64, dropout=0.1), **kw}))


# -- activation checkpointing ------------------------------------------------------------------

@pytest.mark.parametrize("variant", [dict(), dict(pos_encoding="rope", mlp_type="swiglu", norm_type="rmsnorm")])
def test_activation_checkpointing_gives_the_same_loss_and_gradients(variant):
    x = torch.randint(0, 64, (3, 32))
    seg = torch.tensor([[1] * 10 + [2] * 22, [1] * 32, [1] * 5 + [2] * 20 + [0] * 7])
    grads = []
    for ckpt in (False, True):
        m = model(**variant).train()  # dropout on: the recomputed block must draw the same masks
        m.checkpointing = ckpt
        torch.manual_seed(7)
        loss = m.supervised_loss(x, x.roll(-1, 1), seg > 0, segment_ids=seg)
        loss.backward()
        grads.append((loss.detach(), {n: p.grad.clone() for n, p in m.named_parameters()}))
    (l0, g0), (l1, g1) = grads
    assert torch.equal(l0, l1)
    for name in g0:
        torch.testing.assert_close(g1[name], g0[name], rtol=1e-6, atol=1e-7, msg=name)


def test_the_memory_estimate_accounts_for_checkpointing():
    cfg = GPTConfig(n_layer=32, n_head=20, n_embd=1280, block_size=4096, vocab_size=50304)
    off, on = model_report(cfg, 3)["activations_bytes"], model_report(cfg, 3, checkpointing=True)["activations_bytes"]
    assert on < off / 10 and model_report(cfg, 3, checkpointing=True)["checkpointing"]


# -- NEFTune -----------------------------------------------------------------------------------

def test_neftune_changes_the_loss_in_training_mode_only():
    x = torch.randint(0, 64, (2, 32))
    mask = torch.ones_like(x, dtype=torch.bool)
    m = model(dropout=0.0)
    losses = {}
    for alpha in (0.0, 5.0):
        m.neftune_alpha = alpha
        m.train()
        torch.manual_seed(3)
        losses["train", alpha] = m.supervised_loss(x, x, mask).item()
        m.eval()
        losses["eval", alpha] = m.supervised_loss(x, x, mask).item()
    assert losses["train", 5.0] != losses["train", 0.0]
    assert losses["eval", 5.0] == losses["eval", 0.0] == losses["train", 0.0]


def test_neftune_noise_has_the_bound_alpha_over_sqrt_length_times_width():
    m = model(dropout=0.0).train()
    m.neftune_alpha = 8.0
    x = torch.randint(0, 64, (4, 32))
    embedded = []
    m.transformer.drop.register_forward_hook(lambda mod, inp, out: embedded.append(inp[0]))
    with torch.no_grad():
        m.hidden(x)
        noise = embedded[0] - (m.transformer.wte(x) + m.transformer.wpe(torch.arange(32)))
    bound = 8.0 / (32 * 32) ** 0.5  # T = 32 positions, n_embd = 32
    assert 0.9 * bound < noise.abs().max() <= bound + 1e-6


# -- freezing ----------------------------------------------------------------------------------

def test_frozen_layers_and_embeddings_are_bit_identical_after_steps_and_have_no_optimizer_state(dataset, tmp_path):
    tok = open_dataset(dataset).tokenizer_state
    torch.manual_seed(0)
    start = GPT(GPTConfig(n_layer=3, n_head=2, n_embd=32, block_size=96, vocab_size=128, bias=False))
    save_checkpoint(tmp_path / "start", start, tokenizer_state=tok, step=0)
    arch = ("n_layer", "n_embd", "n_head")  # from the checkpoint
    cfg = TrainConfig(**{k: v for k, v in tiny(freeze_layers=2, freeze_embeddings=True).to_dict().items()
                         if k not in arch})
    result, rec = train(dataset, tmp_path / "run", cfg, init=str(tmp_path / "start"))
    assert result.reason == "completed"
    last = checkpoints_in(tmp_path / "run")[-1][1]
    before, after = start.state_dict(), load_file(str(last / "model.safetensors"))
    frozen = [k for k in before if k.startswith(("transformer.h.0.", "transformer.h.1.", "transformer.wte",
                                                 "transformer.wpe"))]
    assert len(frozen) == 2 * 6 + 2 and all(torch.equal(after[k], before[k]) for k in frozen)
    assert not torch.equal(after["transformer.h.2.attn.c_attn.weight"], before["transformer.h.2.attn.c_attn.weight"])
    trainable = [n for n, _ in start.named_parameters() if n not in frozen]
    state = load_train_state(last)["optimizer"]
    assert len(state["state"]) == sum(len(g["params"]) for g in state["param_groups"]) == len(trainable)
    assert any("frozen: blocks 0-1, the embeddings" in n for n in rec.of(RunStart)[0].notes)


def test_freezing_more_layers_than_the_model_has_is_refused(dataset, tmp_path):
    with pytest.raises(TrainError, match="freeze_layers = 3 exceeds the model's 2 layers"):
        train(dataset, tmp_path / "run", tiny(freeze_layers=3))
    assert not (tmp_path / "run").exists()


def test_freezing_tied_embeddings_warns_that_the_output_layer_freezes_too(dataset, tmp_path):
    _, rec = train(dataset, tmp_path / "run", tiny(freeze_embeddings=True, tie_weights=True, max_iters=1))
    assert any("output layer is the embedding matrix" in w.message for w in rec.of(RunWarning))


# -- weighted masks ----------------------------------------------------------------------------

def test_weighted_masks_make_the_step_loss_the_weighted_mean(tmp_path):
    prepared(tmp_path, [tool_episode(f"t{i}", i + 2, 7) for i in range(8)], tokenization="char",
             weighted_mask=True, val_split=0.0)
    ds = open_dataset(tmp_path / "out")
    split = ds.split("train")
    tok = ds.tokenizer()
    start = GPT(GPTConfig(n_layer=2, n_head=2, n_embd=32, block_size=128, vocab_size=tok.model_vocab_size))
    save_checkpoint(tmp_path / "start", start, tokenizer_state=ds.tokenizer_state, step=0)
    cfg = TrainConfig(batch_size=8, block_size=128, max_iters=1, warmup_iters=0, eval_interval=1, eval_iters=1,
                      device="cpu", precision="fp32", batching="pack", epoch_shuffle=False, episode_min_tokens=2,
                      dropout=0.0)
    _, rec = train(tmp_path / "out", tmp_path / "run", cfg, init=str(tmp_path / "start"))
    # the expected loss, by hand: every trained target's cross-entropy times its weight, over the weights
    num = den = 0.0
    with torch.no_grad():
        for i in range(len(split)):
            ids, mask = (torch.tensor(np.asarray(a, dtype=np.int64)) for a in split.episode(i))
            w = torch.tensor(np.asarray(split.weights_of(i)))[1:]
            ce = torch.nn.functional.cross_entropy(start(ids[None, :-1])[0], ids[1:], reduction="none")
            num += float((ce * w)[mask[1:] == 1].sum())
            den += float(w[mask[1:] == 1].sum())
    assert den > float(split.supervised.sum()) - len(split)  # some weights are 2.0
    assert rec.of(Step)[0].loss == pytest.approx(num / den, rel=1e-5)
    audit = [r for r in read_audit(tmp_path / "run" / "audit.jsonl") if r["kind"] == "step"]
    assert audit[0]["micro_batches"][0]["weighted"] == pytest.approx(den, rel=1e-5)


# -- save_dtype, segment_position_reset, logs, name ---------------------------------------------

def test_save_dtype_writes_checkpoints_in_that_dtype(dataset, tmp_path):
    train(dataset, tmp_path / "run", tiny(save_dtype="bf16", max_iters=2, save_every=2))
    ckpt = checkpoints_in(tmp_path / "run")[-1][1]
    weights = load_file(str(ckpt / "model.safetensors"))
    assert {v.dtype for v in weights.values()} == {torch.bfloat16}
    assert load_checkpoint(ckpt).meta["weights_dtype"] == "bf16"


def test_segment_position_reset_false_counts_positions_across_the_row(dataset):
    split = open_dataset(dataset).split("train")
    kw = dict(block_size=256, batching="pack", pad_id=0)
    reset = collate([[0, 1, 2]], split, **kw)
    absolute = collate([[0, 1, 2]], split, **kw, reset_positions=False)
    n0 = int(split.lengths[0]) - 1
    assert reset.position_ids[0, n0].item() == 0 and absolute.position_ids[0, n0].item() == n0
    assert torch.equal(absolute.segment_ids, reset.segment_ids)  # attention still stays inside each episode


def test_log_file_is_myPTs_jsonl_log_beside_the_events(dataset, tmp_path):
    cfg = tiny(log_file="logs/train/phase.jsonl", name="Phase 1: Format Lock", description="Teaches the tags.")
    _, rec = train(dataset, tmp_path / "run", cfg)
    lines = [json.loads(x) for x in open("logs/train/phase.jsonl", encoding="utf-8")]  # relative to the cwd
    assert [x["event"] for x in lines] == ["training_start", "eval", "eval", "gold_checkpoint", "training_complete"]
    assert lines[0]["name"] == "Phase 1: Format Lock" and lines[0]["config"]["max_iters"] == 4
    assert lines[2]["iter"] == 4 and lines[2]["val_loss"] is not None and lines[2]["lr"] > 0
    assert lines[4]["total_steps"] == 4 and lines[4]["total_tokens"] > 0
    assert (tmp_path / "run" / "events.jsonl").exists()
    start = rec.of(RunStart)[0]
    assert (start.name, start.description) == ("Phase 1: Format Lock", "Teaches the tags.")


def test_a_log_file_that_cannot_be_written_stops_the_run_before_it_starts(dataset, tmp_path):
    (tmp_path / "blocked").write_text("a file, not a folder")
    with pytest.raises(TrainError, match="log_file = .*blocked/x.jsonl.* cannot be written"):
        train(dataset, tmp_path / "run", tiny(log_file=str(tmp_path / "blocked" / "x.jsonl")))
    assert not (tmp_path / "run").exists()


def test_refused_values_of_the_new_keys_name_the_key():
    for kw, words in ((dict(neftune_alpha=-1.0), "neftune_alpha must be a number >= 0"),
                      (dict(freeze_layers=-1), "freeze_layers must be an integer >= 0"),
                      (dict(save_dtype="int8"), 'save_dtype must be one of "fp32", "bf16", "fp16"'),
                      (dict(use_checkpoint="yes"), "use_checkpoint must be true or false")):
        with pytest.raises(ConfigError, match=words):
            TrainConfig(**kw)


def test_a_vocab_size_smaller_than_the_tokenizer_is_refused_naming_the_key(dataset, tmp_path):
    with pytest.raises(TrainError, match=r"vocab_size = 100 is smaller than the tokenizer's 128 rows \(char\)"):
        train(dataset, tmp_path / "run", tiny(vocab_size=100))
    assert not (tmp_path / "run").exists()
