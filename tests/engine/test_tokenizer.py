"""Tokenizer facts a MyPT dataset or checkpoint relies on."""

import pytest

from engine.tokenizer import TAGS, CharTokenizer, TokenizerError, from_state, gpt2, load_tokenizer


def test_gpt2_ids_of_a_known_sentence():
    tok = gpt2()
    assert tok.encode("Hello world") == [15496, 995]
    assert tok.encode("Hello, world!") == [15496, 11, 995, 0]


def test_gpt2_vocabulary_sizes_and_fixed_tag_ids():
    tok = gpt2()
    assert (tok.base_vocab_size, tok.model_vocab_size) == (50257, 50304)
    assert tok.tag_id("system") == 50257
    assert tok.tag_id("/assistant") == 50262
    assert tok.tag_id("<myPT_toolcall>") == 50267
    assert tok.tag_id("eot") == tok.eot_id == tok.pad_id == 50275
    assert [tok.tag_ids[t] for t in TAGS] == list(range(50257, 50276))


def test_tag_strings_in_text_are_text_not_tags():
    tok = gpt2()
    ids = tok.encode("<myPT_assistant>hi</myPT_assistant>")
    assert not any(tok.is_tag(i) for i in ids)
    assert tok.decode(ids) == "<myPT_assistant>hi</myPT_assistant>"
    assert tok.encode("<|endoftext|>") != [50256]  # GPT-2's own special is text too


def test_raw_prompt_parses_tags():
    tok = gpt2()
    assert tok.encode_prompt("<myPT_user>Hello world</myPT_user><myPT_assistant>") == [
        50259, 15496, 995, 50260, 50261]


@pytest.mark.parametrize("text", ["Hello world", "héllo ünïcode → ✓ 日本", "  spaces\n\n\ttabs  ", ""])
def test_decode_round_trip(text):
    for tok in (gpt2(), CharTokenizer(text)):
        assert tok.decode(tok.encode(text)) == text


def test_char_tokenizer_vocabulary_and_tags():
    tok = CharTokenizer("é")
    assert tok.chars[:2] == ["\t", "\n"] and "é" in tok.chars
    n = len(tok.chars)
    assert tok.base_vocab_size == n == 98
    assert tok.tag_id("system") == n and tok.tag_id("eot") == n + 18
    assert tok.model_vocab_size == 128
    assert tok.encode("a€") == [tok.chars.index("a"), tok.chars.index("?")]  # unseen -> '?'
    assert tok.decode([tok.tag_id("user")] + tok.encode("hi")) == "<myPT_user>hi"


def test_state_round_trip_and_mismatch():
    tok = CharTokenizer("xyzé")
    again = from_state(tok.state())
    assert again.chars == tok.chars and again.tag_ids == tok.tag_ids
    assert gpt2().same_as(gpt2().state())
    assert not gpt2().same_as(tok.state())
    assert from_state({"token_kind": "gpt2"}).kind == "gpt2"  # MyPT's tokenizer.json
    with pytest.raises(TokenizerError, match="unknown tokenization 'bpe'"):
        from_state({"tokenization": "bpe"})
    with pytest.raises(TokenizerError, match="choose gpt2 or char"):
        load_tokenizer("sentencepiece")
