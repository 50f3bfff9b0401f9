"""Checkpoints: round trip, crash safety, no code-running pickles, resolving names, MyPT folders."""

import json
import os
import pickle

import numpy as np
import pytest
import torch

from engine import atomic
from engine.checkpoint import (
    CheckpointError,
    check_tokenizer,
    list_checkpoints,
    load_checkpoint,
    load_model,
    load_train_state,
    resolve_checkpoint,
    save_checkpoint,
)
from engine.model import GPT, GPTConfig
from engine.tokenizer import CharTokenizer, gpt2


def tiny(**kw) -> GPT:
    torch.manual_seed(kw.pop("seed", 0))
    return GPT(GPTConfig(**{**dict(n_layer=2, n_head=2, n_embd=32, block_size=16, vocab_size=128), **kw}))


CHAR = CharTokenizer("abc").state()  # 97 base characters + 19 tags -> 128 rows


def save(path, model, step=1, **kw):
    return save_checkpoint(path, model, tokenizer_state=CHAR, step=step, **kw)


def test_round_trip_keeps_weights_bit_identical_and_the_metadata(tmp_path):
    m = tiny(pos_encoding="rope", mlp_type="swiglu")
    p = save(tmp_path / "run" / "step_000500", m, step=500, metrics={"val_loss": 1.25},
             extra={"dataset": "data/x"})
    c = load_checkpoint(p)
    assert c.config == m.config and c.step == 500 and not c.has_train_state
    assert c.meta["format"] == "mypt_checkpoint_v1" and c.meta["metrics"] == {"val_loss": 1.25}
    assert c.meta["dataset"] == "data/x" and c.tokenizer_state == CHAR and c.meta["created"].endswith("+00:00")
    assert set(c.state_dict) == set(m.state_dict())
    for k, v in m.state_dict().items():
        assert torch.equal(c.state_dict[k], v), k
    loaded, c2 = load_model(p)
    x = torch.randint(0, 128, (1, 10))
    with torch.no_grad():
        assert torch.equal(loaded(x), m.eval()(x))
    assert c2.state_dict == {} and not loaded.training


def test_train_state_round_trips_and_unloadable_contents_are_refused_at_save(tmp_path):
    m = tiny()
    opt = torch.optim.AdamW(m.param_groups(0.1), lr=1e-3)
    m(torch.zeros(1, 4, dtype=torch.long)).sum().backward()
    opt.step()
    state = {"optimizer": opt.state_dict(), "sampler": {"epoch": 2, "cursor": 17}, "rng": torch.get_rng_state()}
    p = save(tmp_path / "a", m, train_state=state)
    assert load_checkpoint(p).has_train_state
    back = load_train_state(p)
    assert back["sampler"] == {"epoch": 2, "cursor": 17} and torch.equal(back["rng"], state["rng"])
    torch.testing.assert_close(back["optimizer"]["state"][0]["exp_avg"], state["optimizer"]["state"][0]["exp_avg"])
    with pytest.raises(TypeError, match=r"train_state\['rng'\]\['numpy'\] is a numpy.ndarray"):
        save(tmp_path / "b", m, train_state={"rng": {"numpy": np.zeros(3)}})
    assert not (tmp_path / "b").exists()


def test_extra_metadata_cannot_override_reserved_keys(tmp_path):
    with pytest.raises(ValueError, match="may not override step"):
        save(tmp_path / "a", tiny(), extra={"step": 3})


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_a_crash_before_the_rename_leaves_the_previous_checkpoint_loadable(tmp_path, monkeypatch):
    old = tiny(seed=1)
    p = save(tmp_path / "best", old, step=100)

    def crash(*a, **k):
        raise OSError("simulated crash")

    monkeypatch.setattr(atomic.os, "rename", crash)
    monkeypatch.setattr(atomic.os, "replace", crash)
    monkeypatch.setattr(atomic, "exchange", crash)
    with pytest.raises(OSError, match="simulated crash"):
        save(tmp_path / "best", tiny(seed=2), step=200)
    c = load_checkpoint(p)
    assert c.step == 100
    assert torch.equal(c.state_dict["lm_head.weight"], old.state_dict()["lm_head.weight"])
    assert leftovers(tmp_path) == []


def test_a_crash_while_writing_the_weights_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    import safetensors.torch

    p = save(tmp_path / "best", tiny(seed=1), step=100)

    def crash(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.torch, "save_file", crash)
    with pytest.raises(OSError, match="disk full"):
        save(tmp_path / "best", tiny(seed=2), step=200)
    assert load_checkpoint(p).step == 100 and leftovers(tmp_path) == []


@pytest.mark.parametrize("atomic_swap", [True, False])
def test_saving_over_an_existing_folder_replaces_it_whole(tmp_path, monkeypatch, atomic_swap):
    if not atomic_swap:
        monkeypatch.setattr(atomic, "exchange", lambda a, b: False)
    save(tmp_path / "best", tiny(seed=1), step=100, train_state={"x": 1})
    new = tiny(seed=2)
    p = save(tmp_path / "best", new, step=200)
    c = load_checkpoint(p)
    assert c.step == 200 and not c.has_train_state  # nothing of the old folder survives
    assert torch.equal(c.state_dict["lm_head.weight"], new.state_dict()["lm_head.weight"])
    assert leftovers(tmp_path) == []


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_pickle_that_would_run_code_is_refused(tmp_path):
    p = save(tmp_path / "a", tiny())
    marker = tmp_path / "pwned"
    with open(p / "train_state.pt", "wb") as f:
        pickle.dump({"optimizer": _RunsCode(str(marker))}, f, protocol=2)
    with pytest.raises(CheckpointError, match="refusing .*train_state.pt: it holds objects other than tensors"):
        load_train_state(p)
    assert not marker.exists()
    # the same inside a MyPT model.pt
    folder = tmp_path / "myPT"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    torch.save({"state_dict": _RunsCode(str(marker))}, folder / "model.pt")
    with pytest.raises(CheckpointError, match="refusing .*model.pt"):
        load_checkpoint(folder)
    assert not marker.exists()


def test_resolve_names_paths_runs_and_best(tmp_path, monkeypatch):
    root = tmp_path / "checkpoints"
    for step in (100, 1000, 500):
        save(root / "run1" / f"step_{step:06d}", tiny(), step=step)
    save(root / "run1" / "best", tiny(), step=500)
    save(root / "demo", tiny(), step=1)
    assert resolve_checkpoint("run1", root) == root / "run1" / "step_001000"
    assert resolve_checkpoint("run1/best", root) == root / "run1" / "best"
    assert resolve_checkpoint("demo", root) == root / "demo"
    monkeypatch.chdir(tmp_path)
    assert resolve_checkpoint("checkpoints/demo", "checkpoints") == root.relative_to(tmp_path) / "demo"
    assert resolve_checkpoint(root / "run1" / "step_000100", "elsewhere") == root / "run1" / "step_000100"
    with pytest.raises(CheckpointError) as e:
        resolve_checkpoint("750M_gold_2.22", root)
    msg = str(e.value)
    assert msg.startswith("no checkpoint '750M_gold_2.22' (looked for 750M_gold_2.22 or ")
    assert msg.endswith("checkpoints/: demo, run1/best, run1/step_000100, run1/step_000500, run1/step_001000")
    (root / "empty").mkdir()
    with pytest.raises(CheckpointError, match="empty holds no checkpoint"):
        resolve_checkpoint("empty", root)
    with pytest.raises(CheckpointError, match="no checkpoints in nowhere/ yet"):
        resolve_checkpoint("x", "nowhere")


def test_list_checkpoints_for_pickers(tmp_path):
    save(tmp_path / "run1" / "step_000200", tiny(), step=200)
    save(tmp_path / "solo", tiny(), step=7)
    (tmp_path / ".mypt-tmp-half-written").mkdir()
    infos = list_checkpoints(tmp_path)
    assert [(i.name, i.step, i.run, i.kind) for i in infos] == [("run1/step_000200", 200, "run1", "mypt"),
                                                               ("solo", 7, None, "mypt")]
    assert infos[0].modified > 0 and infos[0].path == tmp_path / "run1" / "step_000200"


def test_a_checkpoint_with_another_tokenizer_is_refused_naming_both(tmp_path):
    c = load_checkpoint(save(tmp_path / "a", tiny()))
    check_tokenizer(c, CHAR, "data/chat")  # the same: no error
    with pytest.raises(CheckpointError) as e:
        check_tokenizer(c, gpt2().state(), "data/chat")
    assert str(e.value) == (f"tokenizer mismatch: checkpoint {tmp_path / 'a'} uses char (97 characters, vocabulary "
                            "128), but data/chat was prepared with gpt2 (vocabulary 50304); prepare the data with "
                            "the checkpoint's tokenization (--tokenization) or pick a matching checkpoint")


# -- MyPT folders -------------------------------------------------------------------------------

def myPT_state(ours: GPT) -> dict:
    """Our weights under MyPT's key names (as MyPT's core/model.py names its modules)."""
    out = {}
    for k, v in ours.state_dict().items():
        k = (k.replace("transformer.wte", "token_embedding_table").replace("transformer.wpe", "position_embedding_table")
             .replace("transformer.h.", "blocks.").replace(".attn.c_attn", ".sa.qkv").replace(".attn.c_proj", ".sa.proj")
             .replace(".ln_1", ".ln1").replace(".ln_2", ".ln2").replace("transformer.ln_f", "ln_f"))
        if ours.config.mlp_type == "swiglu":
            k = k.replace(".mlp.c_fc", ".fwd.w_up").replace(".mlp.c_gate", ".fwd.w_gate").replace(".mlp.c_proj", ".fwd.w_down")
        else:
            k = k.replace(".mlp.c_fc", ".fwd.net.0").replace(".mlp.c_proj", ".fwd.net.2")
        out[k] = v.clone()
    return out


@pytest.mark.parametrize("variant", [dict(), dict(pos_encoding="rope", mlp_type="swiglu", norm_type="rmsnorm")])
def test_a_myPT_folder_loads_as_model_with_the_same_function(tmp_path, variant):
    # MyPT with bias=false: no attention biases, but LayerNorm/GELU-MLP biases and an output bias.
    ours = tiny(bias=True, lm_head_bias=True, vocab_size=50304, **variant).eval()
    with torch.no_grad():
        for p in ours.parameters():  # no zero biases or unit norms: every key's role is exercised
            p.add_(torch.randn_like(p) * 0.05)
        for block in ours.transformer.h:
            block.attn.c_attn.bias.zero_()
            block.attn.c_proj.bias.zero_()
            if variant:
                block.mlp.c_fc.bias.zero_()
                block.mlp.c_gate.bias.zero_()
                block.mlp.c_proj.bias.zero_()
    sd = {k: v for k, v in myPT_state(ours).items() if ".sa." not in k or not k.endswith(".bias")}
    if variant:
        sd = {k: v for k, v in sd.items() if ".fwd." not in k or not k.endswith(".bias")}
    folder = tmp_path / "checkpoints" / "dante"
    folder.mkdir(parents=True)
    torch.save({"state_dict": {"_orig_mod." + k: v for k, v in sd.items()}, "checkpoint_dtype": None,
                "model_dtype": "float32"}, folder / "model.pt")
    config = {"batch_size": 8, "block_size": 16, "vocab_size": 50304, "n_embd": 32, "n_head": 2, "n_layer": 2,
              "dropout": 0.1, "bias": False, "device": "cuda", "use_loss_mask": True, "tie_weights": False,
              "pos_encoding": "learned", "mlp_type": "gelu", "norm_type": "layernorm", "rope_theta": 10000.0,
              "epoch_seed": 1337, **variant}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "tokenizer.json").write_text(json.dumps({"token_kind": "gpt2", "chars": None}))
    (folder / "training_state.json").write_text(json.dumps({"step": 4200, "optimizer_file": "optimizer.pt"}))

    model, c = load_model("dante", root=tmp_path / "checkpoints")
    assert c.step == 4200 and c.meta["format"] == "myPT_folder" and not c.has_train_state
    assert c.config.bias is (not variant) and c.config.lm_head_bias and c.config.dropout == 0.1
    assert c.tokenizer_state == gpt2().state()
    x = torch.randint(0, 50304, (1, 12))
    with torch.no_grad():
        torch.testing.assert_close(model(x), ours(x))
    assert [i.kind for i in list_checkpoints(tmp_path / "checkpoints")] == ["myPT"]


def test_an_unknown_key_in_a_myPT_folder_is_named(tmp_path):
    torch.save({"token_embedding_table.weight": torch.zeros(2, 2), "blocks.0.sa.heads.0.key.weight": torch.zeros(1)},
               tmp_path / "model.pt")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(CheckpointError, match="early MyPT layout"):
        load_checkpoint(tmp_path)


def test_a_folder_that_is_no_checkpoint_says_what_it_expected(tmp_path):
    with pytest.raises(CheckpointError, match="neither meta.json \\+ model.safetensors nor MyPT's config.json"):
        load_checkpoint(tmp_path)
    os.makedirs(tmp_path / "x")
    (tmp_path / "x" / "meta.json").write_text('{"format": "mypt_checkpoint_v1", "model_config": {"n_layers": 2}, '
                                              '"tokenizer": {}}')
    with pytest.raises(CheckpointError, match="meta.json: model_config: unknown model config key"):
        load_checkpoint(tmp_path / "x")
