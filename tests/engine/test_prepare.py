"""`mypt prepare`: exact files and bytes, the seeded split, atomic output, bad input, --strict."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import engine.prepare as prep
import engine.prepare.render as prep_render
from engine.dataset import open_dataset
from engine.dataset_writer import SplitWriter
from engine.episode import EpisodeError, SkipReason, Source, read_episodes
from engine.layout import TEMP_PREFIX
from engine.prepare import PrepareCancelled, PrepareError, PrepareOptions, prepare
from engine.prepare.skips import SkipTally
from engine.render import SystemPrompt, render_episode
from engine.tokenizer import from_state, gpt2
from helpers_data import chat, leftovers, many, prepared, tool_episode, write_jsonl
from mypt_tui.cli.main import main

THREE = [
    chat("greet", "Hello!", "Hi, how can I help?", system="You are helpful."),
    tool_episode("calc", 6, 7),
    {"conversations": [{"from": "human", "value": "Say <myPT_eot> please"}, {"from": "gpt", "value": "<myPT_eot>"}]},
]


def read_u32(p: Path) -> np.ndarray:
    return np.fromfile(p, dtype="<u4")


def test_three_episodes_exact_files_and_bytes(tmp_path):
    report = prepared(tmp_path, THREE, val_split=0)
    out = tmp_path / "out"
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert files == ["dataset_metadata.json", "tokenizer_state.json", "train/episodes.idx",
                     "train/episodes.jsonl", "train/mask.bin", "train/tokens.bin"]
    tok = gpt2()
    eps = list(read_episodes(tmp_path / "in.jsonl"))
    rendered = [render_episode(ep, tok, SystemPrompt()) for ep in eps]
    ids = np.concatenate([r.ids for r in rendered])
    mask = np.concatenate([r.mask for r in rendered])
    assert (out / "train/tokens.bin").stat().st_size == 4 * len(ids)
    np.testing.assert_array_equal(read_u32(out / "train/tokens.bin"), ids)
    np.testing.assert_array_equal(np.fromfile(out / "train/mask.bin", dtype=np.uint8), mask)
    n0, n1, n2 = (len(r.ids) for r in rendered)
    idx = np.fromfile(out / "train/episodes.idx", dtype="<u8").reshape(-1, 2)
    assert idx.tolist() == [[0, n0], [n0, n1], [n0 + n1, n2]]
    lines = [json.loads(x) for x in (out / "train/episodes.jsonl").read_text().splitlines()]
    assert lines == [
        {"index": k, "id": ep.id, "source": f"in.jsonl:{k + 1}", "sha256": ep.sha256,
         "tokens": len(r.ids), "supervised": int(r.mask.sum()), "meta": ep.meta}
        for k, (ep, r) in enumerate(zip(eps, rendered))]
    assert [x["id"] for x in lines] == ["greet", "calc", "in.jsonl:3"]
    assert list(lines[0]) == ["index", "id", "source", "sha256", "tokens", "supervised", "meta"]
    # the tag written as text stays text: the only eot tag ids are the episodes' own last tokens
    assert int((ids == tok.eot_id).sum()) == 3
    assert json.loads((out / "tokenizer_state.json").read_text()) == tok.state()
    meta = json.loads((out / "dataset_metadata.json").read_text())
    assert meta["format"] == meta["schema"] == "episode_indexed_sft_v1"
    assert (meta["num_train_episodes"], meta["num_val_episodes"]) == (3, 0)
    assert (meta["num_train_tokens"], meta["num_val_tokens"]) == (len(ids), 0)
    assert meta["num_train_mask_tokens"] == int(mask.sum()) == report.train_supervised
    assert meta["train_mask_ratio"] == pytest.approx(mask.sum() / len(ids))
    assert meta["inputs"][0]["files"] == [{"file": "in.jsonl", "bytes": (tmp_path / "in.jsonl").stat().st_size,
                                          "sha256": __import__("hashlib").sha256((tmp_path / "in.jsonl").read_bytes()).hexdigest()}]
    assert meta["options"]["kind"] == "chat" and meta["seed"] == 1337 and meta["val_split"] == 0
    assert meta["episodes_with_tool_calls"] == 1 and meta["tool_calls"] == {"calculator": 1}
    assert meta["skipped"] == {"total": 0, "by_reason": {}, "first": []}


def val_ids(out: Path) -> list[str]:
    return open_dataset(out).split("val").ids


def test_same_seed_same_split_other_seed_other_split(tmp_path):
    src = write_jsonl(tmp_path / "in.jsonl", many(40))
    for name, seed in (("a", 1337), ("b", 1337), ("c", 7)):
        r = prepare(PrepareOptions(src, tmp_path / name, val_split=0.25, seed=seed))
        assert (r.train_episodes, r.val_episodes) == (30, 10)
    assert val_ids(tmp_path / "a") == val_ids(tmp_path / "b")
    assert set(val_ids(tmp_path / "a")) != set(val_ids(tmp_path / "c"))
    for f in ("train/tokens.bin", "train/episodes.jsonl", "val/tokens.bin", "val/mask.bin", "val/episodes.idx"):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes()
    # order inside a split is input order; together the splits hold every episode once
    train = open_dataset(tmp_path / "a").split("train").ids
    assert train == sorted(train) and sorted(train + val_ids(tmp_path / "a")) == [f"ep{i:03d}" for i in range(40)]


def test_val_size_rounds_and_keeps_both_splits_nonempty():
    assert [prep.n_val_episodes(n, 0.1) for n in (1, 2, 3, 14, 15, 100)] == [0, 1, 1, 1, 2, 10]
    assert prep.n_val_episodes(10, 0.0) == 0
    assert prep.n_val_episodes(2, 0.9) == 1


@pytest.mark.parametrize("exc", [KeyboardInterrupt, RuntimeError])
def test_interrupted_in_pass1_leaves_no_output_and_no_temp(tmp_path, monkeypatch, exc):
    calls = []
    real = prep_render.render_chunk

    def failing(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise exc("stop")
        return real(*a, **k)

    monkeypatch.setattr(prep_render, "CHUNK_EPISODES", 4)
    monkeypatch.setattr(prep_render, "render_chunk", failing)
    with pytest.raises(exc):
        prepared(tmp_path, many(20), workers=1)
    assert not (tmp_path / "out").exists()
    assert leftovers(tmp_path) == []


def test_interrupted_in_pass2_keeps_the_old_output(tmp_path, monkeypatch):
    prepared(tmp_path, many(10))
    before = {p: p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file()}

    def failing(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(SplitWriter, "add_block", failing)
    with pytest.raises(KeyboardInterrupt):
        prepared(tmp_path, many(12), overwrite=True)
    assert {p: p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file()} == before
    assert leftovers(tmp_path) == []


def test_a_prepare_killed_between_its_two_renames_gets_the_old_output_back(tmp_path):
    """Killed after moving the old output aside and before moving the new one in: the next
    prepare puts the old output back before anything else (and so refuses without --overwrite)."""
    prepared(tmp_path, many(10))
    before = {p.relative_to(tmp_path / "out"): p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file()}
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f"{TEMP_PREFIX}out.{dead.pid}"
    stale.mkdir()
    (tmp_path / "out").rename(stale / "old")
    (stale / "dataset").mkdir()  # the new one, complete or not, is thrown away
    with pytest.raises(PrepareError, match="already exists"):
        prepared(tmp_path, many(12))
    after = {p.relative_to(tmp_path / "out"): p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file()}
    assert after == before
    assert leftovers(tmp_path) == []


def test_overwrite_replaces_and_refusal_without_it(tmp_path):
    prepared(tmp_path, many(10))
    with pytest.raises(PrepareError) as e:
        prepared(tmp_path, many(12))
    assert str(e.value) == f"{tmp_path / 'out'} already exists: use --overwrite to replace it"
    r = prepared(tmp_path, many(12), overwrite=True)
    assert r.episodes == 12 and len(open_dataset(tmp_path / "out").split("train")) == 11
    assert leftovers(tmp_path) == []


def test_overwrite_refuses_a_folder_that_is_not_a_dataset(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine")
    with pytest.raises(PrepareError, match="is not a prepared dataset .* refusing to replace it"):
        prepared(tmp_path, many(3), overwrite=True)
    assert (tmp_path / "out" / "notes.txt").read_text() == "mine"


def test_should_stop_cancels_cleanly(tmp_path, monkeypatch):
    monkeypatch.setattr(prep_render, "CHUNK_EPISODES", 4)
    seen = []
    src = write_jsonl(tmp_path / "in.jsonl", many(20))
    with pytest.raises(PrepareCancelled, match="nothing was written"):
        prepare(PrepareOptions(src, tmp_path / "out", workers=1), on_progress=lambda d, t: seen.append((d, t)),
                should_stop=lambda: len(seen) >= 2)
    assert seen[:2] == [(4, 20), (8, 20)]
    assert not (tmp_path / "out").exists() and leftovers(tmp_path) == []


GOOD = chat("good", "hi", "hello")
BAD_CASES = [
    ('{"messages": [}', "invalid JSON: Expecting value (column 15)", "invalid JSON"),
    (chat(None, "hi", "ok") | {"messages": [{"role": "robot", "content": "hi"}, {"role": "assistant", "content": "ok"}]},
     "message 1: unknown role 'robot' (expected one of system, user, assistant, assistant_toolcall, toolresult, "
     "tool, assistant_context)", "unknown role"),
    (chat(None, "hi", "   "), "message 2 (assistant): empty content", "empty content"),
    ({"messages": [{"role": "user", "content": "hi"}]}, "no assistant turn (nothing to train on)", "no assistant turn"),
    ({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": None, "tool_calls": [
        {"function": {"name": "calc", "arguments": "{bad"}}]}]},
     "message 2 (assistant) tool call 1: invalid tool-call arguments JSON: Expecting property name enclosed in "
     "double quotes (column 2)", "invalid tool-call JSON"),
    (b'{"messages": [{"role": "user", "content": "caf\xe9"}]}', "not valid UTF-8 (byte 47 of the line)", "not valid UTF-8"),
    (chat("good", "again", "dup"), "duplicate episode_id 'good' (first at in.jsonl:1)", "duplicate episode_id"),
]


@pytest.mark.parametrize("line,reason,category", BAD_CASES, ids=[c[2] for c in BAD_CASES])
def test_each_bad_episode_is_skipped_with_its_message(tmp_path, line, reason, category):
    r = prepared(tmp_path, [GOOD, line, chat("other", "q", "a")], val_split=0)
    assert r.skipped == [f"in.jsonl:2: {reason}"]
    assert (r.skipped_total, r.skipped_by_reason, r.train_episodes) == (1, {category: 1}, 2)
    assert r.files[0].episodes == 2 and r.files[0].skipped == 1
    meta = open_dataset(tmp_path / "out").metadata
    assert meta["skipped"] == {"total": 1, "by_reason": {category: 1}, "first": [f"in.jsonl:2: {reason}"]}


def test_all_bad_cases_together_listed_in_input_order(tmp_path, capsys):
    write_jsonl(tmp_path / "in.jsonl", [GOOD] + [c[0] for c in BAD_CASES])
    rc = main(["prepare", "chat", "--input", str(tmp_path / "in.jsonl"), "--output", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert rc == 0
    listed = [line.strip() for line in out.splitlines() if line.startswith("    in.jsonl:")]
    assert listed == [f"in.jsonl:{k + 2}: {c[1]}" for k, c in enumerate(BAD_CASES)]
    assert "  Skipped episodes: 7 (" in out


def test_zero_supervised_episode_is_rejected(tmp_path, monkeypatch):
    real = prep_render.render_episode

    def no_mask_for_b(ep, tok, system):
        r = real(ep, tok, system)
        if ep.id == "b":
            r.mask[:] = 0
        return r

    monkeypatch.setattr(prep_render, "render_episode", no_mask_for_b)
    r = prepared(tmp_path, [chat("a", "x", "y"), chat("b", "x", "z")], val_split=0)
    assert r.skipped == ["in.jsonl:2: no supervised tokens (nothing to train on)"]
    assert r.skipped_by_reason == {"no supervised tokens": 1}


def test_missing_input_is_an_error(tmp_path, capsys):
    rc = main(["prepare", "chat", "--input", str(tmp_path / "nope.jsonl"), "--output", str(tmp_path / "out")])
    assert rc == 1
    assert capsys.readouterr().err == f"error: {tmp_path / 'nope.jsonl'}: no such file or folder\n"
    assert not (tmp_path / "out").exists()


def test_strict_exits_1_at_the_first_invalid_episode_and_writes_nothing(tmp_path, capsys):
    write_jsonl(tmp_path / "in.jsonl", [GOOD, chat("x", "q", "a"), chat("good", "q", "b"), "not json"])
    rc = main(["prepare", "chat", "--input", str(tmp_path / "in.jsonl"), "--output", str(tmp_path / "out"), "--strict"])
    cap = capsys.readouterr()
    assert rc == 1 and cap.out == ""
    assert cap.err == ("error: in.jsonl:3: duplicate episode_id 'good' (first at in.jsonl:1)\n"
                       "--strict: nothing was written\n")
    assert not (tmp_path / "out").exists() and leftovers(tmp_path) == []
    write_jsonl(tmp_path / "in.jsonl", [GOOD, "not json", chat("good", "q", "b")])
    assert main(["prepare", "chat", "--input", str(tmp_path / "in.jsonl"), "--output", str(tmp_path / "out"),
                 "--strict"]) == 1
    assert capsys.readouterr().err.startswith("error: in.jsonl:2: invalid JSON: Expecting value (column 1)")


def test_nothing_valid_is_an_error(tmp_path):
    with pytest.raises(PrepareError) as e:
        prepared(tmp_path, ["nope", {"messages": [{"role": "user", "content": "hi"}]}])
    assert str(e.value) == (f"no valid episodes in {tmp_path / 'in.jsonl'}: all 2 were skipped "
                            "(first: in.jsonl:1: invalid JSON: Expecting value (column 1))")
    assert not (tmp_path / "out").exists() and leftovers(tmp_path) == []


def test_val_file_no_random_split_and_overlap_reported(tmp_path, capsys):
    write_jsonl(tmp_path / "train.jsonl", many(6))
    same_talk_other_schema = {"id": "v1", "messages": [
        {"role": "user", "content": "Question number 2?"}, {"role": "assistant", "content": "Answer number 2."}]}
    write_jsonl(tmp_path / "val.jsonl", [same_talk_other_schema, chat("v2", "new", "fresh"),
                                         chat("v3", "Question number 4?", "Answer number 4.")])
    rc = main(["prepare", "chat", "--input", str(tmp_path / "train.jsonl"), "--val_file", str(tmp_path / "val.jsonl"),
               "--output", str(tmp_path / "out"), "--val_split", "0.5"])
    cap = capsys.readouterr()
    assert rc == 0
    assert "  Train episodes: 6\n  Val episodes:   3\n" in cap.out
    assert "  Train/val overlap: 2 val episodes with the same content as a train episode\n" in cap.out
    assert "warning: --val_split is ignored with --val_file" in cap.err
    assert "warning: 2 val episodes have the same content as a train episode (e.g. v1, v3)" in cap.err
    ds = open_dataset(tmp_path / "out")
    assert ds.split("val").ids == ["v1", "v2", "v3"]
    assert ds.metadata["train_val_overlap"] == 2 and ds.metadata["train_val_overlap_examples"] == ["v1", "v3"]
    assert ds.metadata["prepare_mode"] == "explicit_val_file" and ds.metadata["val_split"] == 0.0
    assert [f["role"] for f in ds.metadata["inputs"]] == ["input", "val_file"]


def test_char_tokenization_round_trip(tmp_path):
    eps = [chat("a", "Café ☕?", "Oui — très bien.", system="Sois bref."), chat("b", "2+2?", "4")]
    prepared(tmp_path, eps, tokenization="char", val_split=0)
    ds = open_dataset(tmp_path / "out")
    assert ds.tokenizer_state["tokenization"] == "char"
    assert {"é", "☕", "—"} <= set(ds.tokenizer_state["chars"])
    tok = ds.tokenizer()
    assert tok.kind == "char" and tok.same_as(ds.tokenizer_state)
    ids, mask = ds.split("train").episode(0)
    assert tok.decode(ids) == ("<myPT_system>Sois bref.</myPT_system><myPT_user>Café ☕?</myPT_user>"
                               "<myPT_assistant>Oui — très bien.</myPT_assistant><myPT_eot>")
    again = render_episode(next(read_episodes(tmp_path / "in.jsonl")), from_state(ds.tokenizer_state))
    np.testing.assert_array_equal(ids, again.ids)
    np.testing.assert_array_equal(mask, again.mask)


def test_system_prompt_policy(tmp_path):
    eps = [chat("own", "q", "a", system="Own."), chat("none", "q", "a")]
    prepared(tmp_path, eps, name="default", val_split=0, system_prompt="Default.")
    prepared(tmp_path, eps, name="dropped", val_split=0, no_system_prompt=True)
    tok = gpt2()
    texts = [tok.decode(open_dataset(tmp_path / "default").split("train").episode(i)[0]) for i in (0, 1)]
    assert [t.split("</myPT_system>")[0] for t in texts] == ["<myPT_system>Own.", "<myPT_system>Default."]
    dropped = [tok.decode(open_dataset(tmp_path / "dropped").split("train").episode(i)[0]) for i in (0, 1)]
    assert all(t.startswith("<myPT_user>q</myPT_user>") for t in dropped)
    meta = open_dataset(tmp_path / "default").metadata
    assert meta["options"]["system_prompt"] == "Default." and meta["episodes_with_system"] == 2
    with pytest.raises(PrepareError, match="contradict"):
        prepared(tmp_path, eps, name="x", system_prompt="A", no_system_prompt=True)


def test_tool_kind_needs_tool_calls_and_reports_them(tmp_path, capsys):
    with pytest.raises(PrepareError, match="no episode in .* has a tool call"):
        prepared(tmp_path, many(3), kind="tool")
    write_jsonl(tmp_path / "in.jsonl", [tool_episode("t1", 2, 3), chat("plain", "hi", "hello"), tool_episode("t2", 4, 5)])
    assert main(["prepare", "tool", "--input", str(tmp_path / "in.jsonl"), "--output", str(tmp_path / "out"),
                 "--val_split", "0"]) == 0
    assert "  Episodes with tool calls: 2 (calculator 2)\n" in capsys.readouterr().out
    assert open_dataset(tmp_path / "out").metadata["kind"] == "tool"


def test_folder_input_labels_and_output_inside_input_refused(tmp_path):
    write_jsonl(tmp_path / "gold" / "a.jsonl", many(2, "a"))
    write_jsonl(tmp_path / "gold" / "sub" / "b.jsonl", many(2, "b") + ["broken"])
    r = prepare(PrepareOptions(tmp_path / "gold", tmp_path / "out", val_split=0))
    assert r.skipped == ["sub/b.jsonl:3: invalid JSON: Expecting value (column 1)"]
    assert [(f.file, f.episodes, f.skipped) for f in r.files] == [("a.jsonl", 2, 0), ("sub/b.jsonl", 2, 1)]
    with pytest.raises(PrepareError, match="is inside the --input folder"):
        prepare(PrepareOptions(tmp_path / "gold", tmp_path / "gold" / "prepared"))


def test_worker_processes_write_the_same_bytes_as_in_process(tmp_path):
    lines = [GOOD] + [c[0] for c in BAD_CASES] + many(30) + [tool_episode("t", 3, 4)]
    src = write_jsonl(tmp_path / "in.jsonl", lines)
    a = prepare(PrepareOptions(src, tmp_path / "serial", workers=1))
    b = prepare(PrepareOptions(src, tmp_path / "workers", workers=2))
    assert a.skipped == b.skipped and len(a.skipped) == 7
    for f in sorted(p.relative_to(tmp_path / "serial") for p in (tmp_path / "serial").rglob("*.*")):
        if f.name != "dataset_metadata.json":
            assert (tmp_path / "serial" / f).read_bytes() == (tmp_path / "workers" / f).read_bytes(), f
    ma, mb = (open_dataset(tmp_path / n).metadata for n in ("serial", "workers"))
    assert {k: v for k, v in ma.items() if k != "created_at"} == {k: v for k, v in mb.items() if k != "created_at"}


def test_cli_prints_the_guides_summary(tmp_path, capsys):
    write_jsonl(tmp_path / "gold.jsonl", many(20))
    out = tmp_path / "gold_prepared"
    rc = main(["prepare", "chat", "--input", str(tmp_path / "gold.jsonl"), "--output_dir", str(out),
               "--tokenization", "gpt2", "--val-split", "0.1", "--verbose"])
    text = capsys.readouterr().out
    assert rc == 0
    assert text.startswith("Dataset preparation complete!\n"
                           "  Format: episode_indexed_sft_v1\n"
                           "  Train episodes: 18\n"
                           "  Val episodes:   2\n"
                           f"  Output: {out}/\n")
    ds = open_dataset(out)
    tr = ds.split("train")
    assert (f"  Train tokens:   {len(tr.tokens):,} ({int(tr.supervised.sum()):,} supervised, mask ratio "
            f"{tr.supervised.sum() / len(tr.tokens):.1%})\n") in text
    assert "  Skipped episodes: 0\n" in text
    assert "Per file:\n  [input] gold.jsonl: 20 episodes, 0 skipped\n" in text
    assert f"Episode 0 of train: id '{tr.ids[0]}', source gold.jsonl:" in text
    assert "<myPT_assistant>[[Answer number" in text


def test_skip_categories_come_from_the_reason_type_not_the_message_text(tmp_path):
    """Texts that name other categories: an id that reads "not valid UTF-8", a role called
    "tool call". The categories are those of where the episode was rejected."""
    odd_id = chat("not valid UTF-8", "q", "a")
    tool_call_role = {"messages": [{"role": "tool call", "content": "x"}, {"role": "assistant", "content": "y"}]}
    r = prepared(tmp_path, [odd_id, GOOD, odd_id, tool_call_role], val_split=0)
    assert r.skipped == [
        "in.jsonl:3: duplicate episode_id 'not valid UTF-8' (first at in.jsonl:1)",
        "in.jsonl:4: message 1: unknown role 'tool call' (expected one of system, user, assistant, "
        "assistant_toolcall, toolresult, tool, assistant_context)"]
    assert r.skipped_by_reason == {"duplicate episode_id": 1, "unknown role": 1}


def test_a_skip_is_counted_under_its_category_whatever_its_text():
    tally = SkipTally()
    err = EpisodeError(Source("a.jsonl", 7), "invalid JSON, empty content, duplicate episode_id",
                       SkipReason.INVALID_META)
    tally.add(7, err.category, str(err))
    assert tally.by_reason == {"invalid meta": 1}
    assert tally.messages() == ["a.jsonl:7: invalid JSON, empty content, duplicate episode_id"]


def test_duplicates_count_against_the_file_they_were_read_from(tmp_path):
    """Files share a chunk; each duplicate is charged to its own file, from the source's data."""
    write_jsonl(tmp_path / "gold" / "a.jsonl", [chat("x", "q1", "a1"), chat("y", "q2", "a2")])
    (tmp_path / "gold" / "b.json").write_text(json.dumps([chat("x", "q3", "a3"), chat("z", "q4", "a4")]))
    write_jsonl(tmp_path / "gold" / "c.jsonl", [chat("z", "q5", "a5"), chat("w", "q6", "a6")])
    r = prepare(PrepareOptions(tmp_path / "gold", tmp_path / "out", val_split=0))
    assert r.skipped == ["b.json#1: duplicate episode_id 'x' (first at a.jsonl:1)",
                         "c.jsonl:1: duplicate episode_id 'z' (first at b.json#2)"]
    assert [(f.file, f.episodes, f.skipped) for f in r.files] == [("a.jsonl", 2, 0), ("b.json", 1, 1),
                                                                   ("c.jsonl", 1, 1)]


def test_the_listed_skips_are_the_earliest_even_when_duplicates_come_later():
    """Pass 1 lists its skips first; duplicates found afterwards may be earlier in the input."""
    tally = SkipTally(keep=3)
    tally.add(50, SkipReason.INVALID_JSON, "late")
    for seq in (1, 2, 3):
        tally.add(seq, SkipReason.DUPLICATE_ID, f"dup {seq}")
    assert tally.messages() == ["dup 1", "dup 2", "dup 3"]
    assert (tally.total, tally.first_seq, tally.by_reason) == (4, 50, {"invalid JSON": 1, "duplicate episode_id": 3})


def test_sources_are_data_and_print_as_before():
    assert [str(s) for s in (Source("a.jsonl", 3), Source("b.json", item=2), Source("c.json"))] == [
        "a.jsonl:3", "b.json#2", "c.json"]
