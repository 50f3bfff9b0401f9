"""The embedded default job: where its files come from, preparing on first use (and again when
the gold set changed), run names that never collide, and `mypt --no-ui` run twice."""

from __future__ import annotations

import time
from pathlib import Path

from engine.events import Done, read_events
from helpers_app import tiny_checkout
from mypt_tui.cli.main import main
from mypt_tui.services import demo as default_job
from mypt_tui.services.demo import Demo, demos, ensure_prepared, is_prepared, unique_run_name, workspace

REPO = Path(__file__).resolve().parents[2]


def test_unique_run_names_are_timestamped_and_never_taken(tmp_path):
    now = time.mktime((2026, 3, 4, 5, 6, 7, 0, 0, -1))
    assert unique_run_name("demo_chat", tmp_path, now) == "demo_chat_20260304_050607"
    (tmp_path / "demo_chat_20260304_050607").mkdir()
    (tmp_path / "demo_chat_20260304_050607_2").mkdir()
    assert unique_run_name("demo_chat", tmp_path, now) == "demo_chat_20260304_050607_3"


def test_the_checkout_in_the_current_directory_wins_else_the_installed_one(tmp_path, monkeypatch):
    assert Path(default_job.__file__).resolve().parents[2] == REPO  # what INSTALLED_ROOT is outside the suite
    monkeypatch.setattr(default_job, "INSTALLED_ROOT", REPO)  # the suite points it at a copy (conftest)
    monkeypatch.chdir(tiny_checkout(tmp_path / "here"))
    assert workspace() == Path.cwd()
    chat = demos()["chat"]
    assert (chat.config, chat.dataset) == (Path("configs/demo/chat.toml"), Path("data/prepared/demo_chat"))
    monkeypatch.chdir(tmp_path)
    assert workspace() == REPO
    assert demos()["tool"].config == REPO / "configs" / "demo" / "tool.toml"


def test_prepared_on_first_use_and_again_when_the_gold_set_changes(tmp_path):
    root = tiny_checkout(tmp_path)
    demo = Demo("chat", "Chat SFT", root / "configs/demo/chat.toml", root / "data/demo_chat.jsonl",
                root / "data/demo_chat_heldout.jsonl", root / "data/prepared/demo_chat", "demo_chat")
    assert not is_prepared(demo)
    assert ensure_prepared(demo) is True
    assert is_prepared(demo) and ensure_prepared(demo) is False
    with open(demo.input, "a") as fh:
        fh.write('{"messages": [{"role": "user", "content": "New?"}, {"role": "assistant", "content": "Yes."}]}\n')
    assert not is_prepared(demo)
    assert ensure_prepared(demo) is True and is_prepared(demo)


def test_mypt_no_ui_trains_the_default_job_and_a_second_run_gets_its_own_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tiny_checkout(tmp_path))
    assert main(["--no-ui"]) == 0
    err = capsys.readouterr().err
    assert "preparing data/demo_chat.jsonl (val: data/demo_chat_heldout.jsonl) into data/prepared/demo_chat" in err
    assert main(["--no-ui"]) == 0
    assert "preparing" not in capsys.readouterr().err
    runs = sorted(p for p in Path("checkpoints").iterdir())
    assert len(runs) == 2 and all(p.name.startswith("demo_chat_") for p in runs)
    for run in runs:
        assert [e.reason for e in read_events(run / "events.jsonl") if isinstance(e, Done)] == ["completed"]


def test_mypt_no_ui_outside_a_checkout_says_where_the_files_should_be(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(default_job, "INSTALLED_ROOT", tmp_path / "site")
    assert main(["--no-ui"]) == 2
    assert "the demo config and gold sets were not found" in capsys.readouterr().err


def test_mypt_serve_without_textual_serve_says_how_to_install_it(monkeypatch, capsys):
    import builtins

    real_import = builtins.__import__

    def no_textual_serve(name, *a, **kw):
        if name.startswith("textual_serve"):
            raise ImportError(name)
        return real_import(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", no_textual_serve)
    assert main(["serve"]) == 2
    assert "pip install -e '.[serve]'" in capsys.readouterr().err
