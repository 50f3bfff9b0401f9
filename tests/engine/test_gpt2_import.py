"""`mypt import gpt2`: a Hugging Face GPT-2 folder (written here, tiny) becomes a working checkpoint."""

import json
import math

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from engine.checkpoint import CheckpointError, load_checkpoint, load_model
from engine.gpt2_import import import_gpt2
from mypt_tui.cli.main import main

L, H, C, T, V = 2, 2, 32, 64, 50257


def hf_weights(seed=0) -> dict:
    """GPT-2 in Hugging Face's layout: Conv1D matmuls stored (in, out), no `transformer.` prefix."""
    g = torch.Generator().manual_seed(seed)

    def r(*shape, s=0.1):
        return torch.randn(*shape, generator=g) * s

    sd = {"wte.weight": r(V, C), "wpe.weight": r(T, C, s=0.02), "ln_f.weight": 1 + r(C), "ln_f.bias": r(C)}
    for i in range(L):
        sd |= {f"h.{i}.ln_1.weight": 1 + r(C), f"h.{i}.ln_1.bias": r(C),
               f"h.{i}.attn.c_attn.weight": r(C, 3 * C), f"h.{i}.attn.c_attn.bias": r(3 * C),
               f"h.{i}.attn.c_proj.weight": r(C, C), f"h.{i}.attn.c_proj.bias": r(C),
               f"h.{i}.ln_2.weight": 1 + r(C), f"h.{i}.ln_2.bias": r(C),
               f"h.{i}.mlp.c_fc.weight": r(C, 4 * C), f"h.{i}.mlp.c_fc.bias": r(4 * C),
               f"h.{i}.mlp.c_proj.weight": r(4 * C, C), f"h.{i}.mlp.c_proj.bias": r(C)}
    return sd


def write_hf_folder(folder, sd, **config):
    folder.mkdir(parents=True, exist_ok=True)
    cfg = {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "n_layer": L, "n_head": H, "n_embd": C,
           "n_positions": T, "n_ctx": T, "vocab_size": V, "activation_function": "gelu_new",
           "layer_norm_epsilon": 1e-5, "resid_pdrop": 0.1, "embd_pdrop": 0.1, "attn_pdrop": 0.1, **config}
    (folder / "config.json").write_text(json.dumps(cfg))
    save_file(sd, str(folder / "model.safetensors"))
    return folder


def reference_logits(sd: dict, ids: torch.Tensor) -> torch.Tensor:
    """GPT-2's forward pass written out from the paper's description, on the HF tensors as stored."""
    def ln(x, p):
        return F.layer_norm(x, (C,), sd[p + ".weight"], sd[p + ".bias"], 1e-5)

    def conv1d(x, p):
        return x @ sd[p + ".weight"] + sd[p + ".bias"]

    n = ids.shape[0]
    x = sd["wte.weight"][ids] + sd["wpe.weight"][:n]
    causal = torch.ones(n, n).tril().bool()
    for i in range(L):
        q, k, v = conv1d(ln(x, f"h.{i}.ln_1"), f"h.{i}.attn.c_attn").split(C, dim=-1)
        q, k, v = (t.view(n, H, C // H).transpose(0, 1) for t in (q, k, v))
        att = (q @ k.transpose(-1, -2) / math.sqrt(C // H)).masked_fill(~causal, float("-inf")).softmax(-1)
        x = x + conv1d((att @ v).transpose(0, 1).reshape(n, C), f"h.{i}.attn.c_proj")
        h = conv1d(ln(x, f"h.{i}.ln_2"), f"h.{i}.mlp.c_fc")
        h = 0.5 * h * (1 + torch.tanh(math.sqrt(2 / math.pi) * (h + 0.044715 * h ** 3)))  # gelu_new
        x = x + conv1d(h, f"h.{i}.mlp.c_proj")
    return ln(x, "ln_f") @ sd["wte.weight"].t()


def test_import_from_a_huggingface_folder_gives_gpt2s_logits_and_tag_rows(tmp_path):
    sd = hf_weights()
    src = write_hf_folder(tmp_path / "gpt2-tiny", sd)
    out = import_gpt2(src, tmp_path / "checkpoints" / "gpt2-tiny")
    model, ckpt = load_model("gpt2-tiny", root=tmp_path / "checkpoints")
    cfg = ckpt.config
    assert (cfg.vocab_size, cfg.block_size, cfg.mlp_type, cfg.tie_weights, cfg.bias) == (50304, 64, "gelu_tanh", True, True)
    assert ckpt.step == 0 and ckpt.tokenizer_state["tokenization"] == "gpt2"
    assert ckpt.meta["imported_from"]["files"] == ["model.safetensors"]
    assert torch.equal(model.transformer.h[1].attn.c_attn.weight, sd["h.1.attn.c_attn.weight"].t())
    wte = model.transformer.wte.weight.detach()
    assert torch.equal(wte[:V], sd["wte.weight"])
    # the 47 new rows (19 tags + padding): near the mean row, not zero, all different
    new = wte[V:]
    assert new.shape == (47, C) and new.abs().min() > 0
    assert torch.cdist(new, new).add(torch.eye(47)).min() > 0.01
    assert (new - sd["wte.weight"].mean(0)).norm(dim=1).max() < 0.5 * sd["wte.weight"].std(0).norm()
    ids = torch.tensor([464, 2068, 7586, 21831, 18045, 625, 262, 16931, 3290, 13])
    with torch.no_grad():
        got = model(ids.unsqueeze(0))[0]
    torch.testing.assert_close(got[:, :V], reference_logits(sd, ids), atol=1e-4, rtol=1e-4)
    # the import is reproducible (seeded noise)
    again = load_checkpoint(import_gpt2(src, tmp_path / "again"))
    assert torch.equal(again.state_dict["transformer.wte.weight"], wte)
    assert out == tmp_path / "checkpoints" / "gpt2-tiny"


def test_pytorch_model_bin_is_read_with_weights_only_and_prefixed_keys_work(tmp_path):
    sd = {"transformer." + k: v for k, v in hf_weights().items()}
    sd["transformer.h.0.attn.bias"] = torch.ones(1, 1, T, T)  # old checkpoints carry the mask buffer
    sd["lm_head.weight"] = sd["transformer.wte.weight"]
    folder = tmp_path / "bin"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"n_layer": L, "n_head": H, "n_embd": C, "n_positions": T,
                                                     "vocab_size": V}))
    torch.save(sd, folder / "pytorch_model.bin")
    ckpt = load_checkpoint(import_gpt2(folder, tmp_path / "out"))
    assert torch.equal(ckpt.state_dict["transformer.h.0.mlp.c_fc.weight"], sd["transformer.h.0.mlp.c_fc.weight"].t())


def test_folders_mypt_cannot_reproduce_are_refused_with_the_key_named(tmp_path):
    src = write_hf_folder(tmp_path / "a", hf_weights(), vocab_size=50000)
    with pytest.raises(CheckpointError, match="vocab_size is 50000, expected GPT-2's 50257"):
        import_gpt2(src, tmp_path / "out")
    src = write_hf_folder(tmp_path / "b", hf_weights(), activation_function="relu")
    with pytest.raises(CheckpointError, match="activation_function 'relu' is not supported"):
        import_gpt2(src, tmp_path / "out")
    src = write_hf_folder(tmp_path / "c", hf_weights(), n_layer=3)
    with pytest.raises(CheckpointError, match="do not match its config.json: .*missing transformer.h.2"):
        import_gpt2(src, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_the_import_command_writes_under_checkpoints_and_generate_runs_on_it(tmp_path, monkeypatch, capsys):
    src = write_hf_folder(tmp_path / "hf", hf_weights())
    monkeypatch.chdir(tmp_path)
    assert main(["import", "gpt2", "--from", str(src), "--output", "base"]) == 0
    assert (tmp_path / "checkpoints" / "base" / "model.safetensors").is_file()
    assert "-> checkpoints/base" in capsys.readouterr().out
    assert main(["import", "gpt2", "--from", str(src), "--output", "base"]) == 1
    assert "checkpoints/base already exists" in capsys.readouterr().err
    assert main(["generate", "--model_name", "base", "--prompt", "Hello", "--max_new_tokens", "3",
                 "--preset", "deterministic"]) == 0
    assert "3 tokens in" in capsys.readouterr().err


def test_logits_match_transformers_gpt2(tmp_path):
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    hf_cfg = transformers.GPT2Config(n_layer=L, n_head=H, n_embd=C, n_positions=T, vocab_size=V)
    hf = transformers.GPT2LMHeadModel(hf_cfg).eval()
    with torch.no_grad():
        for p in hf.parameters():  # move off the unit/zero init so every tensor matters
            p.add_(torch.randn_like(p) * 0.05)
    hf.save_pretrained(tmp_path / "hf")
    model, _ = load_model(import_gpt2(tmp_path / "hf", tmp_path / "ours"))
    ids = torch.randint(0, V, (2, 40), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = hf(ids).logits
        got = model(ids)[:, :, :V]
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
