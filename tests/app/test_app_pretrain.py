"""The Train screen's third type, Pre-training: the form fills with the base demo (its config and
its prose prepared as a token stream on first use), the start check accepts the stream, and a run
trains with the same flow as chat SFT: a loss plot, an audit of windows, a row in Runs."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import DataTable, Input, Select, Static

from engine.events import Done, read_events
from engine.stream import is_stream
from helpers_app import TINY_TOML, screen_text, tiny_checkout, wait_for
from mypt_tui.app.app import MyptApp

SIZE = (100, 30)
TINY_BASE = TINY_TOML.replace('batching = "pack"', 'batching = "pad"\nuse_loss_mask = false').replace(
    "block_size = 96", "block_size = 32")


def pretrain_checkout(folder: Path) -> Path:
    """The tiny checkout, with the base demo's config and prose."""
    tiny_checkout(folder)
    (folder / "configs" / "demo" / "base.toml").write_text(TINY_BASE.format(max_iters=3, eval_interval=3,
                                                                            save_every=3))
    (folder / "data" / "demo_base.txt").write_text(
        "".join(f"The capital of land {k} is town {k}.\nThe plural of item {k} is items.\n\n" for k in range(150)))
    return folder


async def choose_pretraining(app, pilot) -> None:
    train = app.train_screen
    await wait_for(pilot, lambda: not train.workers, "the chat demo set to be prepared")
    kinds = train.query_one("#type", Select)
    await pilot.click(kinds)  # the list opens: the three types
    await pilot.pause()
    shown = screen_text(app)
    assert all(title in shown for title in ("Pre-training", "Chat SFT", "Tool SFT"))
    await pilot.press("escape")
    kinds.value = "pretrain"
    await wait_for(pilot, lambda: train.form.value("config") == str(Path("configs/demo/base.toml")), "the base demo")
    await wait_for(pilot, lambda: is_stream(Path("data/prepared/demo_base")) and not train.workers,
                   "the prose prepared as a token stream")


async def test_pre_training_fills_the_form_with_the_base_demo_and_passes_the_start_check(tmp_path, monkeypatch):
    monkeypatch.chdir(pretrain_checkout(tmp_path))
    app = MyptApp()
    async with app.run_test(size=SIZE) as pilot:
        await choose_pretraining(app, pilot)
        train = app.train_screen
        assert train.form.value("dataset") == str(Path("data/prepared/demo_base"))
        output = train.form.value("output")
        assert output.startswith("demo_base_")
        assert train.checked_request() is not None  # the start check opens the stream as the trainer will
        command = str(train.query_one("#train-command", Static).render())
        assert command == ("$ mypt train --no-ui --init scratch --config configs/demo/base.toml "
                           f"--dataset data/prepared/demo_base --output {output}")


async def test_a_pre_training_run_trains_and_its_audit_names_windows(tmp_path, monkeypatch):
    monkeypatch.chdir(pretrain_checkout(tmp_path))
    app = MyptApp()
    async with app.run_test(size=SIZE) as pilot:
        await choose_pretraining(app, pilot)
        train = app.train_screen
        train.form.query_one("#output", Input).value = "base"
        await pilot.click("#start")
        await wait_for(pilot, lambda: app.training.state != "idle" or Path("checkpoints/base").exists(), "the start")
        await wait_for(pilot, lambda: app.training.state == "idle", "the run to finish")
        await pilot.pause(0.1)
        assert train.monitor.plot.points[0] == 3  # a loss per step
        first = next(e for e in train.monitor.audit.entries if e.step is not None)
        assert len(first.episodes) == 4 and all(e.startswith("shard_00000.bin:") for e in first.episodes)
        assert train.monitor.audit.lines[0].startswith("step 1 e0 · 4 windows")  # not "episodes"
        assert "Training complete at step 3" in screen_text(app)
        assert [d.reason for d in read_events(Path("checkpoints/base/events.jsonl")) if isinstance(d, Done)] == [
            "completed"]
        await pilot.press("f2")
        await wait_for(pilot, lambda: app.screen.query_one(DataTable).row_count == 1, "the run in Runs")
        row = [str(c) for c in app.screen.query_one(DataTable).get_row(str(Path("checkpoints/base")))]
        assert row[:3] == ["base", "completed", "3/3"]


def test_the_first_use_prepare_counts_documents_for_prose_and_episodes_for_a_gold_set():
    from mypt_tui.present.train_job import prepare_progress

    assert prepare_progress("pretrain", Path("data/demo_base.txt"), 1200, None) == \
        "preparing data/demo_base.txt: 1,200 documents"
    assert prepare_progress("chat", Path("data/demo_chat.jsonl"), 40, 325) == \
        "preparing data/demo_chat.jsonl: 40 episodes of 325"
