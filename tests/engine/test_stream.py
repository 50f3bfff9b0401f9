"""Token streams for pretraining: exact ids and document boundaries, a seeded split by document,
shards, bad input reported by file and line, windows shaped like episodes, damaged shards named."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.corpus import CorpusError, CorpusOptions, goes_to_val, prepare_corpus
from engine.stream import StreamError, is_stream, open_stream
from engine.tokenizer import GPT2_ENDOFTEXT, gpt2


def write(path, text: bytes | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode())


def stream_ids(root, split="train") -> list[int]:
    return [int(t) for f in sorted((root / split).glob("shard_*.bin")) for t in np.fromfile(f, dtype="<u4")]


def test_text_becomes_exact_ids_with_a_separator_after_each_document(tmp_path):
    write(tmp_path / "in" / "a.txt", "Hello world.\nSecond line.\n\nNext paragraph.\n")
    write(tmp_path / "in" / "b.jsonl", json.dumps({"text": "From JSON."}) + "\n")
    rep = prepare_corpus(CorpusOptions(tmp_path / "in", tmp_path / "out", val_split=0.0, tokens_per_shard=5))
    tok = gpt2()
    want = []
    for doc in ("Hello world.\nSecond line.", "Next paragraph.", "From JSON."):
        want += tok.encode(doc) + [GPT2_ENDOFTEXT]
    assert stream_ids(tmp_path / "out") == want
    assert rep.documents == {"train": 3, "val": 0} and rep.shards["train"] == -(-len(want) // 5)
    assert all((tmp_path / "out" / "train" / f"shard_{k:05d}.bin").stat().st_size == 20
               for k in range(rep.shards["train"] - 1))
    assert is_stream(tmp_path / "out") and not (tmp_path / "out" / "val").exists()


def test_the_split_is_by_document_seeded_and_repeatable(tmp_path):
    docs = [f"Document number {k} says something." for k in range(200)]
    write(tmp_path / "in.jsonl", "".join(json.dumps({"text": d}) + "\n" for d in docs))
    a = prepare_corpus(CorpusOptions(tmp_path / "in.jsonl", tmp_path / "a", val_split=0.2, seed=7))
    b = prepare_corpus(CorpusOptions(tmp_path / "in.jsonl", tmp_path / "b", val_split=0.2, seed=7))
    assert stream_ids(tmp_path / "a", "val") == stream_ids(tmp_path / "b", "val")
    val_docs = [k for k in range(200) if goes_to_val(7, k, 0.2)]
    assert a.documents["val"] == b.documents["val"] == len(val_docs) and 20 < len(val_docs) < 60
    tok = gpt2()
    assert stream_ids(tmp_path / "a", "val")[:len(tok.encode(docs[val_docs[0]])) + 1] == \
        tok.encode(docs[val_docs[0]]) + [GPT2_ENDOFTEXT]


def test_bad_lines_are_reported_by_file_and_line_and_skipped(tmp_path):
    write(tmp_path / "in" / "a.jsonl", b'{"text": "good"}\nnot json\n{"body": "x"}\n\xff\xfe\n{"text": "also good"}\n')
    write(tmp_path / "in" / "bin.txt", b"text\x00with nul\n")
    rep = prepare_corpus(CorpusOptions(tmp_path / "in", tmp_path / "out", val_split=0.0))
    assert rep.documents["train"] == 2 and rep.skipped_total == 4
    assert rep.skipped[0].startswith("a.jsonl:2: not JSON")
    assert rep.skipped[1:] == ["a.jsonl:3: no text in field 'text'", "a.jsonl:4: not valid UTF-8 (byte 1 of the line)",
                               "bin.txt:1: binary data (NUL bytes), not text"]


def test_nothing_usable_is_an_error_and_writes_nothing(tmp_path):
    write(tmp_path / "empty.txt", "\n\n")
    with pytest.raises(CorpusError, match="no usable text"):
        prepare_corpus(CorpusOptions(tmp_path / "empty.txt", tmp_path / "out"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cwd", "empty.txt"]  # cwd: the test's own (conftest)


def test_an_existing_output_that_is_not_a_dataset_is_never_replaced(tmp_path):
    write(tmp_path / "in.txt", "Some text.\n")
    write(tmp_path / "out" / "mine.txt", "keep me")
    with pytest.raises(CorpusError, match="not a prepared dataset"):
        prepare_corpus(CorpusOptions(tmp_path / "in.txt", tmp_path / "out", overwrite=True))
    assert (tmp_path / "out" / "mine.txt").read_text() == "keep me"


def test_windows_are_episodes_of_block_size_plus_one_across_shards(tmp_path):
    write(tmp_path / "in.txt", " ".join(f"w{k}" for k in range(300)) + "\n")
    prepare_corpus(CorpusOptions(tmp_path / "in.txt", tmp_path / "out", val_split=0.0, tokens_per_shard=37))
    ids = stream_ids(tmp_path / "out")
    ws = open_stream(tmp_path / "out").windows("train", block_size=16)
    assert len(ws) == (len(ids) - 1) // 16
    for i in (0, 1, 2, len(ws) - 1):  # window 2 spans shards 0 and 1 (37 tokens a shard)
        tokens, mask = ws.episode(i)
        assert tokens.tolist() == ids[16 * i:16 * i + 17] and mask.tolist() == [1] * 17
    assert ws.ids[3] == "shard_00001.bin:11" and len(set(ws.hashes[i] for i in range(4))) == 4


def test_a_truncated_shard_is_named(tmp_path):
    write(tmp_path / "in.txt", "Some text to make a shard.\n")
    prepare_corpus(CorpusOptions(tmp_path / "in.txt", tmp_path / "out", val_split=0.0))
    shard = tmp_path / "out" / "train" / "shard_00000.bin"
    shard.write_bytes(shard.read_bytes()[:-2])
    with pytest.raises(StreamError, match=r"shard_00000.bin: \d+ bytes is not a whole number"):
        open_stream(tmp_path / "out")
