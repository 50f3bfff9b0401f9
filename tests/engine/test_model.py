"""The GPT: sizes from the config, packing with segment ids, the masked loss, the KV cache."""

import pytest
import torch
import torch.nn.functional as F

from engine.model import GPT, GPTConfig, positions_from_segments
from engine.sizing import count_params, format_report, model_report

VARIANTS = [
    dict(),
    dict(pos_encoding="rope"),
    dict(pos_encoding="rope", mlp_type="swiglu", norm_type="rmsnorm", bias=False),
    dict(mlp_type="gelu_tanh", tie_weights=True),
    dict(bias=False, lm_head_bias=True),
]


def tiny(**kw) -> GPTConfig:
    return GPTConfig(**{**dict(n_layer=2, n_head=2, n_embd=32, block_size=32, vocab_size=64), **kw})


def model(seed: int = 0, **kw) -> GPT:
    torch.manual_seed(seed)
    return GPT(tiny(**kw)).eval()


def test_the_guides_750m_config_reports_about_750m_parameters_without_building_it():
    cfg = GPTConfig(n_layer=32, n_embd=1280, n_head=20, block_size=1024, vocab_size=50304, bias=False)
    report = model_report(cfg, batch_size=10, dtype="bfloat16")
    assert report["params"] == count_params(cfg) == 759_317_760
    assert 0.98 < report["params"] / 750e6 < 1.02
    assert report["weights_bytes"] == 4 * report["params"]
    assert report["optimizer_bytes"] == 8 * report["params"]
    assert report["total_bytes"] > report["activations_bytes"] > 5 * 2**30  # tens of GiB at batch 10
    assert "759.3M parameters" in format_report(report)


@pytest.mark.parametrize("kw", VARIANTS)
def test_count_params_matches_the_built_model(kw):
    m = GPT(tiny(**kw))
    assert m.num_params() == count_params(m.config)
    assert m.num_params(non_embedding=True) == count_params(m.config, non_embedding=True)


@pytest.mark.parametrize("kw", VARIANTS)
def test_an_episode_has_the_same_logits_alone_and_packed_beside_others(kw):
    m = model(**kw)
    g = torch.Generator().manual_seed(1)
    episodes = [torch.randint(0, 64, (n,), generator=g) for n in (5, 9, 4)]
    packed = torch.cat(episodes).unsqueeze(0)
    seg = torch.cat([torch.full((len(e),), i) for i, e in enumerate(episodes)]).unsqueeze(0)
    with torch.no_grad():
        together = m(packed, segment_ids=seg)[0]
        plain_causal = m(packed)[0]
        start = 0
        for e in episodes:
            alone = m(e.unsqueeze(0))[0]
            torch.testing.assert_close(together[start:start + len(e)], alone, atol=1e-5, rtol=1e-5)
            start += len(e)
    # Without segment ids the later episodes see the earlier ones: the test above is not vacuous.
    assert not torch.allclose(plain_causal[5:14], together[5:14], atol=1e-3)


def test_positions_restart_at_every_segment():
    seg = torch.tensor([[0, 0, 0, 1, 1, 2, 2, 2, 2], [5, 5, 5, 5, 5, 5, 5, 5, 5]])
    assert positions_from_segments(seg).tolist() == [[0, 1, 2, 0, 1, 0, 1, 2, 3], list(range(9))]


def test_explicit_position_ids_are_used():
    m = model()
    x = torch.randint(0, 64, (1, 6))
    with torch.no_grad():
        shifted = m(x, position_ids=torch.arange(3, 9).unsqueeze(0))
        assert not torch.allclose(shifted, m(x), atol=1e-4)


@pytest.mark.parametrize("kw", [dict(), dict(pos_encoding="rope")])
def test_supervised_loss_is_the_sum_of_cross_entropy_at_masked_positions(kw):
    m = model(**kw)
    x = torch.randint(0, 64, (2, 12))
    y = torch.randint(0, 64, (2, 12))
    mask = torch.zeros(2, 12, dtype=torch.uint8)
    mask[0, 3:7] = 1
    mask[1, 10:] = 1
    logits = m(x)
    want = sum(F.cross_entropy(logits[b, t], y[b, t], reduction="sum")
               for b in range(2) for t in range(12) if mask[b, t])
    got = m.supervised_loss(x, y, mask)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(m(x, targets=y, mask=mask), want)  # through forward, for DDP / compile
    torch.testing.assert_close(m.supervised_loss(x, y, mask, full_output=True), want)
    assert got.dtype == torch.float32
    got.backward()
    assert m.lm_head.weight.grad is not None and m.lm_head.weight.grad.abs().sum() > 0
    assert m.supervised_loss(x, y, torch.zeros_like(mask)).item() == 0.0


def test_param_groups_decay_only_matmul_weights():
    m = GPT(tiny(lm_head_bias=True))
    decay, no_decay = m.param_groups(0.1)
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    names = {id(p): n for n, p in m.named_parameters()}
    decayed = {names[id(p)] for p in decay["params"]}
    kept = {names[id(p)] for p in no_decay["params"]}
    assert "transformer.h.0.attn.c_attn.weight" in decayed and "lm_head.weight" in decayed
    assert {"transformer.wte.weight", "transformer.wpe.weight", "transformer.h.0.ln_1.weight",
            "transformer.h.0.attn.c_attn.bias", "lm_head.bias", "transformer.ln_f.bias"} <= kept
    assert all(".bias" not in n and "ln_" not in n and "wte" not in n for n in decayed)
    assert len(decayed) + len(kept) == len(names)


def test_nanogpt_key_names_and_a_torch_compile_prefix_loads():
    m = model()
    sd = m.state_dict()
    assert "transformer.h.1.mlp.c_fc.weight" in sd and "lm_head.weight" in sd
    other = model(seed=5)
    other.load_weights({"_orig_mod." + k: v for k, v in sd.items()})
    for k, v in other.state_dict().items():
        assert torch.equal(v, sd[k]), k


def test_weights_of_another_shape_are_refused_with_the_key_named():
    sd = model().state_dict()
    with pytest.raises(ValueError, match=r"transformer.wte.weight has shape \[64, 32\], the model expects \[128, 32\]"):
        GPT(tiny(vocab_size=128)).load_weights(sd)
    del sd["transformer.ln_f.weight"]
    with pytest.raises(ValueError, match="missing transformer.ln_f.weight"):
        model().load_weights(sd)


def test_tied_weights_are_saved_once_and_stay_tied_after_loading():
    m = model(tie_weights=True)
    w = m.weights_for_saving()
    assert "lm_head.weight" not in w and "transformer.wte.weight" in w
    other = model(seed=3, tie_weights=True)
    other.load_weights(w)
    assert other.lm_head.weight is other.transformer.wte.weight
    assert torch.equal(other.lm_head.weight, m.lm_head.weight)


@pytest.mark.parametrize("kw", [dict(), dict(pos_encoding="rope", mlp_type="swiglu")])
def test_kv_cache_prefill_then_steps_gives_the_full_forward_logits(kw):
    m = model(**kw)
    x = torch.randint(0, 64, (1, 20))
    with torch.no_grad():
        full = m(x)[0]
        cache = m.new_cache()
        parts = [m.head(m.hidden(x[:, :8], kv_cache=cache))[0]]  # prefill
        parts.append(m.head(m.hidden(x[:, 8:13], kv_cache=cache))[0])  # a chunk after cached tokens
        parts += [m.head(m.hidden(x[:, t:t + 1], kv_cache=cache))[0] for t in range(13, 20)]
    assert cache.pos == 20
    torch.testing.assert_close(torch.cat(parts), full, atol=1e-5, rtol=1e-5)


def test_config_refuses_unknown_keys_and_bad_values_with_the_key_named():
    with pytest.raises(ValueError, match="unknown model config key.*'n_layers'"):
        GPTConfig.from_dict({"n_layers": 2})
    with pytest.raises(ValueError, match=r"n_embd \(30\) must be divisible by n_head \(4\)"):
        GPTConfig(n_embd=30, n_head=4)
    with pytest.raises(ValueError, match="'mlp_type' must be one of gelu, gelu_tanh, swiglu"):
        GPTConfig(mlp_type="relu")
    with pytest.raises(ValueError, match="'bias' must be bool"):
        GPTConfig(bias="false")
    cfg = tiny(pos_encoding="rope", rope_theta=500000)
    assert GPTConfig.from_dict(cfg.to_dict()) == cfg and cfg.rope_theta == 500000.0


def test_a_sequence_longer_than_block_size_is_refused_clearly():
    with pytest.raises(ValueError, match="33 tokens is longer than block_size 32"):
        model()(torch.zeros(1, 33, dtype=torch.long))
