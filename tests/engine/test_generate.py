"""Generation: cache and reference path agree, stops, long prompts, sampling rules, streaming text."""

import pytest
import torch

from engine.generate import (
    PRESETS,
    SamplingConfig,
    StreamDecoder,
    default_stop_ids,
    fit_prompt,
    generate,
    next_token,
    preset,
)
from engine.model import GPT, GPTConfig
from engine.tokenizer import gpt2

GREEDY = SamplingConfig(temperature=0.0, max_new_tokens=40)


def tiny(seed=0, **kw) -> GPT:
    torch.manual_seed(seed)
    return GPT(GPTConfig(**{**dict(n_layer=2, n_head=2, n_embd=32, block_size=32, vocab_size=64), **kw}))


PROMPT = [3, 14, 15, 9, 26, 5, 35, 8, 9, 7, 9, 3, 2, 38, 4, 6, 26, 43, 38, 32]


@pytest.mark.parametrize("kw", [dict(), dict(pos_encoding="rope", mlp_type="swiglu", norm_type="rmsnorm")])
def test_greedy_decoding_gives_the_same_tokens_with_and_without_the_cache(kw):
    m = tiny(**kw)
    # 20 prompt + 40 new tokens in a 32-token block: the window slides twice on the way.
    cached = list(generate(m, PROMPT, GREEDY))
    reference = list(generate(m, PROMPT, GREEDY, use_cache=False))
    assert len(cached) == 40 and cached == reference
    assert len(set(cached)) > 1


def test_generation_stops_at_a_stop_id_and_yields_it_last():
    m = tiny()
    free = list(generate(m, PROMPT, GREEDY))
    stop = free[5]
    first = free.index(stop)
    assert list(generate(m, PROMPT, GREEDY, stop_ids={stop, 63})) == free[:first + 1]


def test_a_prompt_longer_than_the_context_is_trimmed_from_the_front():
    m = tiny()
    long_prompt = [i % 60 for i in range(7, 107)]  # 100 tokens, block 32
    sampling = SamplingConfig(temperature=0.0, max_new_tokens=5)
    out = list(generate(m, long_prompt, sampling))
    assert len(out) == 5
    kept = fit_prompt(long_prompt, 32, 5)
    assert kept == long_prompt[-27:]
    assert out == list(generate(m, kept, sampling))
    assert fit_prompt(long_prompt, 32, 500) == long_prompt[-16:]  # at most half the block is reserved


def test_seeded_sampling_repeats_and_should_stop_ends_early():
    m = tiny()
    s = SamplingConfig(temperature=1.0, top_k=20, top_p=0.9, max_new_tokens=20, seed=7)
    a = list(generate(m, PROMPT, s))
    assert a == list(generate(m, PROMPT, s))
    assert a != list(generate(m, PROMPT, preset("creative", seed=8, max_new_tokens=20)))
    calls = []
    out = list(generate(m, PROMPT, s, should_stop=lambda: len(calls.append(1) or calls) > 3))
    assert out == a[:3]


def test_generation_leaves_a_training_model_in_training_mode():
    m = tiny().train()
    list(generate(m, PROMPT, SamplingConfig(temperature=0.0, max_new_tokens=2)))
    assert m.training


def test_bad_prompts_are_refused_clearly():
    with pytest.raises(ValueError, match="prompt is empty"):
        list(generate(tiny(), [], GREEDY))
    with pytest.raises(ValueError, match="token id 50262 is outside the model's vocabulary of 64"):
        list(generate(tiny(), [1, 50262], GREEDY))


def test_next_token_rules():
    logits = torch.tensor([2.0, 1.9, -1.0, -3.0])
    assert next_token(logits, SamplingConfig(temperature=0.0)) == 0
    seen = torch.tensor([True, False, False, False])
    # 2.0 / 1.1 = 1.82 < 1.9: the repeated token loses its lead
    assert next_token(logits, SamplingConfig(temperature=0.0, repetition_penalty=1.1), seen=seen) == 1
    # a negative logit is multiplied, pushing it further down
    neg = torch.tensor([-1.0, -1.05])
    assert next_token(neg, SamplingConfig(temperature=0.0, repetition_penalty=1.1), seen=torch.tensor([True, False])) == 1
    g = torch.Generator().manual_seed(0)
    assert {next_token(logits, SamplingConfig(temperature=5.0, top_k=2), g) for _ in range(200)} == {0, 1}
    assert {next_token(logits, SamplingConfig(temperature=5.0, top_p=0.01), g) for _ in range(50)} == {0}
    assert {next_token(logits, SamplingConfig(temperature=5.0), g) for _ in range(400)} == {0, 1, 2, 3}
    # top_p keeps the smallest set reaching p: probs ~[.50,.45,.04,.01] -> p=0.9 keeps 0 and 1
    assert {next_token(logits, SamplingConfig(temperature=1.0, top_p=0.9), g) for _ in range(300)} == {0, 1}


def test_presets_and_sampling_validation():
    from engine.layout import PRESET_NAMES

    assert tuple(PRESETS) == PRESET_NAMES == ("chat", "creative", "factual", "code", "deterministic")
    assert preset("deterministic").temperature == 0.0
    assert preset("chat", max_new_tokens=50) == SamplingConfig(0.8, 50, 0.95, 1.1, 50, None)
    with pytest.raises(ValueError, match="unknown preset 'wild': choose chat, creative, factual, code, deterministic"):
        preset("wild")
    with pytest.raises(ValueError, match=r"top_p must be in \(0, 1\]"):
        SamplingConfig(top_p=1.5)


def test_default_stop_ids_are_the_closing_assistant_tag_and_eot():
    assert default_stop_ids(gpt2()) == {50262, 50275}


def test_stream_decoder_never_prints_half_a_character():
    tok = gpt2()
    text = "Grüße 🙂 und 日本語!"
    ids = tok.encode(text)
    assert any(not tok.token_bytes(i).decode("utf-8", errors="ignore") for i in ids)  # some token is a partial char
    d = StreamDecoder(tok)
    pieces = [d.feed(i) for i in ids] + [d.flush()]
    assert "".join(pieces) == text
    assert not any("\ufffd" in p for p in pieces)
    assert "" in pieces[:-1]  # waited for the rest of a character
    d = StreamDecoder(tok)
    assert d.feed(tok.tag_id("/assistant")) == "</myPT_assistant>"
    assert d.feed(tok.encode("🙂")[0]) == "" and d.flush() == "\ufffd"


# -- `mypt generate` ------------------------------------------------------------------------------

def gpt2_checkpoint(tmp_path):
    from engine.checkpoint import save_checkpoint

    m = tiny(vocab_size=50304, block_size=64)
    return m, save_checkpoint(tmp_path / "checkpoints" / "run1" / "step_000010", m,
                              tokenizer_state=gpt2().state(), step=10)


def expected_text(m, ids, n):
    tok = gpt2()
    out = [t for t in generate(m, ids, SamplingConfig(temperature=0.0, max_new_tokens=n),
                               stop_ids=default_stop_ids(tok)) if t not in default_stop_ids(tok)]
    return tok.decode(out)


def test_generate_command_wraps_a_plain_prompt_as_a_user_turn(tmp_path, monkeypatch, capsys):
    from engine.episode import Message
    from engine.render import render_prompt
    from mypt_tui.cli.main import main

    m, _ = gpt2_checkpoint(tmp_path)
    monkeypatch.chdir(tmp_path)
    args = ["generate", "--model", "run1", "--prompt", "What is 2+2?", "--max_new_tokens", "8", "--temperature", "0"]
    assert main(args) == 0
    out, err = capsys.readouterr()
    ids = render_prompt([Message("user", "What is 2+2?")], gpt2())
    assert out == expected_text(m, ids, 8) + "\n"
    assert "8 tokens in" in err and "KV cache" in err and "max_new_tokens reached" in err
    assert main(args + ["--no-cache"]) == 0
    assert capsys.readouterr().out == out


def test_generate_command_uses_a_tagged_prompt_as_written(tmp_path, capsys):
    from mypt_tui.cli.main import main

    m, path = gpt2_checkpoint(tmp_path)
    prompt = "<myPT_system>You are a helpful assistant.</myPT_system>\n<myPT_user>What is 2+2?</myPT_user>\n<myPT_assistant>"
    assert main(["generate", "--model", str(path), "--prompt", prompt, "--max-new-tokens", "6",
                 "--preset", "deterministic"]) == 0
    ids = gpt2().encode_prompt(prompt)
    assert ids[0] == 50257 and ids[-1] == 50261
    assert capsys.readouterr().out == expected_text(m, ids, 6) + "\n"


def test_generate_command_names_the_checkpoints_that_exist_when_one_is_missing(tmp_path, capsys):
    from mypt_tui.cli.main import main

    gpt2_checkpoint(tmp_path)
    root = tmp_path / "checkpoints"
    assert main(["generate", "--model", "nope", "--prompt", "hi", "--checkpoints", str(root)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: no checkpoint 'nope'") and err.rstrip().endswith(": run1/step_000010")
