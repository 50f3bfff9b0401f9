"""Resume from the Runs screen as a newcomer does it: the Train form shows the run as it was
started, keeps its name through the start, and a complete run says how to continue it."""

from __future__ import annotations

from textual.widgets import DataTable, Input, Select

from engine.config import TrainConfig
from engine.events import Done, RunStart, read_events
from engine.train.job import TrainJob
from engine.train.loop import run_training
from helpers_app import screen_text, tiny_dataset, wait_for
from mypt_tui.app.app import MyptApp
from mypt_tui.app.widgets.dialogs import ErrorDialog

SIZE = (100, 30)


def finished_run(tmp_path, max_iters=6):
    root = tmp_path / "ckpt"
    cfg = TrainConfig(n_layer=2, n_embd=32, n_head=2, block_size=96, batch_size=4, max_iters=max_iters,
                      warmup_iters=1, eval_interval=3, eval_iters=2, save_every=3, device="cpu", precision="fp32",
                      episode_min_tokens=4)
    dataset = tiny_dataset(tmp_path / "data")
    run_training(TrainJob(config=cfg, dataset=dataset, output=root / "done"))
    return root, dataset


def done_events(root) -> list[Done]:
    return [e for e in read_events(root / "done" / "events.jsonl") if isinstance(e, Done)]


async def open_resume(app, pilot) -> None:
    await pilot.press("f2")
    await wait_for(pilot, lambda: app.screen.query_one(DataTable).row_count == 1, "the run")
    await pilot.press("ctrl+r")
    await wait_for(pilot, lambda: app.screen is app.train_screen, "the Train screen")
    await pilot.pause(0.2)


async def test_resume_fills_the_form_from_the_run_and_a_complete_run_says_how_to_continue(tmp_path):
    root, dataset = finished_run(tmp_path)
    app = MyptApp(checkpoints=root)
    async with app.run_test(size=SIZE) as pilot:
        await open_resume(app, pilot)
        train = app.train_screen
        value = lambda key: train.query_one(f"#{key}", Input).value  # noqa: E731
        assert value("config") == str(root / "done" / "config.toml")
        assert value("dataset") == str(dataset)
        assert value("output") == str(root / "done") and value("flags") == "--resume"
        assert train.query_one("#init", Select).value == "scratch"
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: isinstance(app.screen, ErrorDialog), "the dialog")
        assert app.screen.title_text == "Cannot start the run: Flags"
        assert "already complete at step 6" in app.screen.message and "raise --max_iters" in app.screen.message
        await pilot.press("escape")
        train.query_one("#flags", Input).value = "--resume --max_iters 9"
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: len(done_events(root)) == 2 and app.training.state == "idle",
                       "the resumed run to end")
        assert value("output") == str(root / "done")  # the run trained under its own name, and the form says so
        assert "step 9 e" in screen_text(app) and "resumed at step 6" in train.monitor.audit.lines
    events = list(read_events(root / "done" / "events.jsonl"))
    assert [(e.resumed, e.step) for e in events if isinstance(e, RunStart)] == [(False, 0), (True, 6)]
    assert [(e.reason, e.step) for e in events if isinstance(e, Done)] == [("completed", 6), ("completed", 9)]


async def test_resume_from_an_app_opened_on_chat_is_not_overwritten_by_the_default_job(tmp_path):
    root, dataset = finished_run(tmp_path)
    app = MyptApp(checkpoints=root, mode="chat")
    async with app.run_test(size=SIZE) as pilot:
        await open_resume(app, pilot)
        train = app.train_screen
        assert train.query_one("#output", Input).value == str(root / "done")
        assert train.query_one("#dataset", Input).value == str(dataset)
