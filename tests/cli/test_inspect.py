"""`mypt inspect`: statistics, an episode with its trained tokens marked, and id lookup errors."""

from __future__ import annotations

import io

from engine.dataset import open_dataset
from helpers_data import chat, prepared, tool_episode
from mypt_tui.cli.inspect import show_episode
from mypt_tui.cli.main import main

EPISODES = [
    chat("hello", "Hi!", "Hello there.", system="Be kind.", meta={"family": "greeting"}),
    tool_episode("calc", 6, 7) | {"meta": {"family": "math"}},
    chat("bye", "Bye!", "Goodbye.", meta={"family": "greeting"}),
    chat("long", "Tell me more " * 5, "More " * 20, meta={"family": "chat"}),
]


def make(tmp_path, **kw):
    prepared(tmp_path, EPISODES, val_split=0, **kw)
    return tmp_path / "out"


def test_piped_output_marks_trained_text_with_brackets(tmp_path, capsys):
    out = make(tmp_path)
    assert main(["inspect", str(out), "--episode", "hello"]) == 0
    text = capsys.readouterr().out
    assert text.endswith(
        "Episode 0 of train: id 'hello', source in.jsonl:1, 15 tokens, 5 trained\n"
        "(trained tokens between [[ and ]])\n"
        "<myPT_system>Be kind.</myPT_system><myPT_user>Hi!</myPT_user><myPT_assistant>"
        "[[Hello there.</myPT_assistant><myPT_eot>]]\n")
    assert "\033[" not in text


def test_tool_episode_marks_each_assistant_block(tmp_path, capsys):
    out = make(tmp_path)
    assert main(["inspect", str(out), "--episode", "1"]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert last == ('<myPT_user>What is 6 times 7?</myPT_user><myPT_assistant>[[<myPT_toolcall>{"name": '
                    '"calculator", "arguments": {"expression": "6*7"}}</myPT_toolcall></myPT_assistant>]]'
                    '<myPT_toolresult>{"result": 42}</myPT_toolresult><myPT_assistant>[[6 times 7 is 42.'
                    '</myPT_assistant><myPT_eot>]]')


def test_terminal_output_is_coloured(tmp_path, capsys):
    ds = open_dataset(make(tmp_path))
    show_episode(ds, ds.split("train"), 2, color=True)
    last = capsys.readouterr().out.splitlines()[-1]
    assert last == ("<myPT_user>Bye!</myPT_user><myPT_assistant>\033[1;32mGoodbye.</myPT_assistant>"
                    "<myPT_eot>\033[0m")


def test_stats_counts_percentiles_and_families(tmp_path, capsys):
    out = make(tmp_path)
    assert main(["inspect", str(out)]) == 0
    text = capsys.readouterr().out
    split = open_dataset(out).split("train")
    lengths = sorted(split.lengths.tolist())
    sup = int(split.supervised.sum())
    row = (f"  {'train':<6}{4:>10,}{sum(lengths):>13,}{sup:>12,}{sup / sum(lengths):>8.1%}"
           f"{lengths[1]:>7}{lengths[3]:>7}{lengths[3]:>7}{lengths[3]:>7}")
    assert row in text.splitlines()
    assert "  val            0" in text.splitlines()
    assert "  families (train): greeting 2, math 1, chat 1" in text.splitlines()
    assert "Episode 0 of train: id 'hello'" in text  # episode 0 by default


def test_unknown_episode_says_how_to_find_ids(tmp_path, capsys):
    out = make(tmp_path)
    assert main(["inspect", str(out), "--episode", "nope"]) == 1
    assert capsys.readouterr().err == (
        "error: no episode 'nope' in train (4 episodes): give an index 0..3 or an id; ids are the \"id\" "
        f"field of {out / 'train' / 'episodes.jsonl'}\n")
    assert main(["inspect", str(out), "--episode", "9"]) == 1


def test_episode_in_the_other_split_is_pointed_at(tmp_path, capsys):
    prepared(tmp_path, EPISODES, val_split=0.25, seed=3)
    ds = open_dataset(tmp_path / "out")
    val_id = ds.split("val").ids[0]
    assert main(["inspect", str(tmp_path / "out"), "--episode", val_id]) == 1
    assert capsys.readouterr().err == f"error: episode {val_id!r} is in the val split: add --split val\n"
    assert main(["inspect", str(tmp_path / "out"), "--split", "val", "--episode", val_id]) == 0
    assert f"Episode 0 of val: id {val_id!r}" in capsys.readouterr().out


def test_not_a_dataset(tmp_path, capsys):
    assert main(["inspect", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {tmp_path} is not a prepared dataset: it has no dataset_metadata.json")


def test_no_color_when_not_a_terminal(tmp_path, monkeypatch, capsys):
    ds = open_dataset(make(tmp_path))
    monkeypatch.setattr("sys.stdout", io.StringIO())
    import sys
    show_episode(ds, ds.split("train"), 0)
    assert "[[Hello there." in sys.stdout.getvalue()
