"""MyPT's checkpoint formats as --model: its folder and its legacy single file, and its AdamW state."""

from __future__ import annotations

import json

import pytest
import torch
from helpers_mypt import myPT_optimizer, myPT_params

from engine.checkpoint import carry_optimizer, load_checkpoint, load_model, resolve_checkpoint
from engine.config import TrainConfig
from engine.events import RunStart
from engine.model import GPT, GPTConfig
from engine.tokenizer import gpt2
from engine.train.job import TrainJob
from engine.train.loop import run_training
from helpers_data import prepared, varied

ARCH = dict(n_layer=2, n_head=2, n_embd=32, block_size=64, vocab_size=50304, pos_encoding="rope",
            mlp_type="swiglu", norm_type="rmsnorm", tie_weights=True, bias=False, lm_head_bias=True)


@pytest.fixture
def ours():
    torch.manual_seed(0)
    m = GPT(GPTConfig(**ARCH))
    with torch.no_grad():
        for p in m.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return m.eval()


def myPT_config(**extra) -> dict:
    return {"batch_size": 4, "block_size": 64, "vocab_size": 50304, "n_embd": 32, "n_head": 2, "n_layer": 2,
            "dropout": 0.1, "bias": False, "tie_weights": True, "pos_encoding": "rope", "mlp_type": "swiglu",
            "norm_type": "rmsnorm", "rope_theta": 10000.0, "rope_scale": 1.0, "use_checkpoint": True,
            "use_loss_mask": True, "save_dtype": "bf16", "device": "cuda", **extra}


def myPT_folder(folder, ours, skip=0, **config):
    folder.mkdir(parents=True)
    params = myPT_params(ours)
    torch.save({"state_dict": {n: p.to(torch.bfloat16) for n, p in params}, "checkpoint_dtype": "bf16",
                "model_dtype": "bfloat16"}, folder / "model.pt")
    (folder / "config.json").write_text(json.dumps(myPT_config(**config)))
    (folder / "tokenizer.json").write_text(json.dumps({"token_kind": "gpt2"}))
    state, names = myPT_optimizer(params, skip)
    torch.save(state, folder / "optimizer.pt")
    (folder / "training_state.json").write_text(json.dumps({"step": 120, "optimizer_file": "optimizer.pt"}))
    return names


def test_myPTs_adamw_state_is_carried_over_to_the_matching_parameters(ours, tmp_path):
    names = myPT_folder(tmp_path / "phase2", ours)
    model, ckpt = load_model(tmp_path / "phase2")
    opt = torch.optim.AdamW(model.param_groups(0.05), lr=1e-4)
    note = carry_optimizer(ckpt.meta, model, opt)
    assert note.startswith("optimizer: AdamW state carried over from") and "(MyPT step 12)" in note
    renamed = {"token_embedding_table.weight": "transformer.wte.weight", "ln_f.weight": "transformer.ln_f.weight",
               "lm_head.bias": "lm_head.bias"}
    ours_of = {n: renamed.get(n, n.replace("blocks.", "transformer.h.").replace(".sa.qkv", ".attn.c_attn")
                              .replace(".sa.proj", ".attn.c_proj").replace(".fwd.w_gate", ".mlp.c_gate")
                              .replace(".fwd.w_up", ".mlp.c_fc").replace(".fwd.w_down", ".mlp.c_proj")
                              .replace(".ln1", ".ln_1").replace(".ln2", ".ln_2")) for n in names}
    params = dict(model.named_parameters())
    for k, name in enumerate(names):
        st = opt.state[params[ours_of[name]]]
        assert torch.equal(st["exp_avg"], torch.full_like(st["exp_avg"], k + 1.0)), name
    assert len(opt.state) == len(names) == len(list(model.parameters()))


def test_a_myPT_optimizer_that_does_not_fit_is_not_carried_and_says_why(ours, tmp_path):
    myPT_folder(tmp_path / "frozen_run", ours, skip=1)  # its run froze block 0: fewer parameters
    model, ckpt = load_model(tmp_path / "frozen_run")
    opt = torch.optim.AdamW(model.param_groups(0.05), lr=1e-4)
    note = carry_optimizer(ckpt.meta, model, opt)
    assert note.startswith("optimizer: fresh AdamW") and "freeze_layers" in note and not opt.state


def test_continuing_a_myPT_checkpoint_carries_its_optimizer_and_init_from_model_does_not(ours, tmp_path):
    myPT_folder(tmp_path / "ckpt" / "phase2", ours)
    prepared(tmp_path, varied(12), tokenization="gpt2", val_split=0.0)
    cfg = TrainConfig(batch_size=2, block_size=64, max_iters=1, warmup_iters=0, eval_interval=1, eval_iters=1,
                      device="cpu", precision="fp32", episode_min_tokens=2)
    notes = {}
    for weights_only in (False, True):
        rec = []
        run_training(TrainJob(config=cfg, dataset=tmp_path / "out", output=tmp_path / f"run{weights_only}",
                              init=str(tmp_path / "ckpt" / "phase2"), weights_only=weights_only), [rec.append])
        [start] = [e for e in rec if isinstance(e, RunStart)]
        notes[weights_only] = [n for n in start.notes if n.startswith("optimizer:")]
    assert notes[False][0].startswith("optimizer: AdamW state carried over")
    assert notes[True] == ["optimizer: fresh AdamW (--init_from_model takes the weights only)"]


def test_myPTs_legacy_single_file_loads_from_its_folder_or_its_path(ours, tmp_path):
    params = myPT_params(ours)
    state, _ = myPT_optimizer(params)
    folder = tmp_path / "checkpoints" / "dante"
    folder.mkdir(parents=True)
    torch.save({"model_state_dict": dict(params), "config": myPT_config(), "tokenizer": {"token_kind": "gpt2"},
                "step": 900, "optimizer_state_dict": state}, folder / "latest.pt")
    x = torch.randint(0, 50304, (1, 10))
    for name in ("dante", str(folder / "latest.pt")):
        model, ckpt = load_model(name, root=tmp_path / "checkpoints")
        assert ckpt.step == 900 and ckpt.tokenizer_state == gpt2().state() and not ckpt.base_model
        with torch.no_grad():
            torch.testing.assert_close(model(x), ours(x))
    assert resolve_checkpoint(str(folder / "latest.pt"), tmp_path) == folder / "latest.pt"
    opt = torch.optim.AdamW(model.param_groups(0.05), lr=1e-4)
    assert "carried over" in carry_optimizer(load_checkpoint(folder).meta, model, opt)


def test_a_myPT_pretraining_checkpoint_is_a_base_model(ours, tmp_path):
    myPT_folder(tmp_path / "base", ours, use_loss_mask=False)
    assert load_checkpoint(tmp_path / "base").base_model
