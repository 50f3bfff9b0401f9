"""The Train screen as a user drives it: start a run from the form and watch it finish, stop it
midway, quit while it trains, a run that cannot start, flags from `mypt train`, warnings."""

from __future__ import annotations

import json

import pytest
from textual.widgets import Input

from engine.audit import read_audit
from engine.events import Done, RunWarning, Step, read_events
from engine.runs import latest_checkpoint, step_dir
from helpers_app import Notifications, screen_text, tiny_config, tiny_dataset, wait_for
from mypt_tui.app.app import MyptApp
from mypt_tui.app.widgets.dialogs import Confirm, ErrorDialog
from mypt_tui.flags import parse_train_flags
from mypt_tui.services.events import EventBuffer

SIZE = (100, 30)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return tiny_dataset(tmp_path_factory.mktemp("app_data"))


def fill(train, config, dataset, output, flags="") -> None:
    for key, value in (("config", config), ("dataset", dataset), ("output", output), ("flags", flags)):
        train.query_one(f"#{key}", Input).value = str(value)


async def test_a_run_started_from_the_form_finishes_with_curve_and_audit_on_screen(dataset, tmp_path):
    root = tmp_path / "ckpt"
    app = MyptApp(checkpoints=root)
    async with app.run_test(size=SIZE) as pilot:
        train = app.train_screen
        fill(train, tiny_config(tmp_path, max_iters=12, eval_interval=4), dataset, "tiny")
        await pilot.click("#start")  # the Pressed message may need a few more frames on a busy machine
        await wait_for(pilot, lambda: app.training.state != "idle" or (root / "tiny").exists(), "the run to start")
        await wait_for(pilot, lambda: app.training.state == "idle", "the run to finish")
        await pilot.pause(0.1)
        monitor = train.monitor
        assert monitor.plot.points == (12, 4)  # a loss per step; val at steps 0, 4, 8, 12
        assert monitor.plot.train[0] == list(range(1, 13))
        run = root / "tiny"
        steps = [r for r in read_audit(run / "audit.jsonl") if r["kind"] == "step"]
        shown = [e for e in monitor.audit.entries if e.step is not None]
        assert len(shown) == 12
        first_ids = [e for mb in steps[0]["micro_batches"] for e in mb["episodes"]]
        assert (shown[0].step, shown[0].epoch, list(shown[0].episodes)) == (1, steps[0]["epoch"], first_ids)
        assert monitor.audit.lines[0].startswith(f"step 1 e{steps[0]['epoch']} · {len(first_ids)} episodes: ")
        text = screen_text(app)
        assert "Training complete at step 12" in text
        assert "step 12/12" in text
        assert "tok/s" in text and "lr " in text
        done = [e for e in read_events(run / "events.jsonl") if isinstance(e, Done)]
        assert [d.reason for d in done] == ["completed"]
        assert train.query_one("#output", Input).value == "tiny"  # a name the user typed is kept


async def test_stop_midway_leaves_a_checkpoint_at_the_step_it_stopped(dataset, tmp_path):
    root = tmp_path / "ckpt"
    app = MyptApp(checkpoints=root)
    async with app.run_test(size=SIZE) as pilot:
        train = app.train_screen
        fill(train, tiny_config(tmp_path, max_iters=5000, eval_interval=1000, save_every=1000), dataset, "long")
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: train.monitor.step is not None and train.monitor.step.step >= 3,
                       "three steps")
        await pilot.press("ctrl+t")
        assert app.training.state in ("stopping", "idle")  # a tiny step ends fast
        await wait_for(pilot, lambda: app.training.state == "idle", "the run to stop")
        run = root / "long"
        done = [e for e in read_events(run / "events.jsonl") if isinstance(e, Done)]
        assert len(done) == 1 and done[0].reason == "stopped" and 3 <= done[0].step < 5000
        assert latest_checkpoint(run, resumable=True) == step_dir(run, done[0].step)
        assert done[0].final_checkpoint == str(step_dir(run, done[0].step))
        assert "Training stopped at step" in screen_text(app)


async def test_quit_while_training_asks_and_stops_cleanly_before_quitting(dataset, tmp_path):
    root = tmp_path / "ckpt"
    app = MyptApp(checkpoints=root)
    async with app.run_test(size=SIZE) as pilot:
        train = app.train_screen
        fill(train, tiny_config(tmp_path, max_iters=5000, eval_interval=1000, save_every=1000), dataset, "q")
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: train.monitor.step is not None, "the first step")
        train.query_one("#start").focus()  # not a text field: q means quit
        await pilot.press("q")
        assert isinstance(app.screen, Confirm)
        await pilot.press("escape")  # keep training
        assert not isinstance(app.screen, Confirm) and app.training.state == "training"
        await pilot.press("ctrl+c")
        assert isinstance(app.screen, Confirm)
        await pilot.click("#yes")
        await app.workers.wait_for_complete()
        await pilot.pause(0.2)
    assert app.return_code == 0
    run = root / "q"
    done = [e for e in read_events(run / "events.jsonl") if isinstance(e, Done)]
    assert len(done) == 1 and done[0].reason == "stopped"
    assert latest_checkpoint(run, resumable=True) == step_dir(run, done[0].step)


async def test_q_typed_in_a_field_is_text_and_q_quits_when_idle(tmp_path):
    app = MyptApp(checkpoints=tmp_path / "ckpt")
    async with app.run_test(size=SIZE) as pilot:
        flags = app.train_screen.query_one("#flags", Input)
        flags.value = ""
        flags.focus()
        await pilot.press("q")
        assert flags.value == "q" and app.is_running
        app.train_screen.query_one("#start").focus()
        await pilot.press("q")
        await pilot.pause(0.1)
    assert app.return_code == 0 and not app.is_running


async def test_a_run_that_cannot_start_is_an_error_dialog_not_a_crash(dataset, tmp_path):
    app = MyptApp(checkpoints=tmp_path / "ckpt")
    async with app.run_test(size=SIZE) as pilot:
        train = app.train_screen
        fill(train, tmp_path / "missing.toml", dataset, "x")
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: isinstance(app.screen, ErrorDialog), "the error dialog")
        assert "missing.toml" in app.screen.message
        assert app.training.state == "idle"
        await pilot.press("escape")
        fill(train, tiny_config(tmp_path), dataset, "y", flags="--max_iters nope")
        await pilot.press("ctrl+r")
        assert isinstance(app.screen, ErrorDialog) and "--max_iters" in app.screen.message
        assert app.is_running


async def test_mypt_train_flags_fill_the_form_and_start_the_run(dataset, tmp_path):
    root = tmp_path / "ckpt"
    cfg = tiny_config(tmp_path, max_iters=50)
    argv = ["--init", "scratch", "--config", str(cfg), "--dataset", str(dataset), "--output", "cli",
            "--max_iters", "6", "--eval_interval", "3", "--checkpoints", str(root)]
    app = MyptApp(checkpoints=root, train_request=parse_train_flags(argv), autostart=True)
    async with app.run_test(size=SIZE) as pilot:
        train = app.train_screen
        assert train.query_one("#config", Input).value == str(cfg)
        assert train.query_one("#output", Input).value == "cli"
        assert train.query_one("#flags", Input).value == "--max_iters 6 --eval_interval 3"
        await wait_for(pilot, lambda: app.training.state != "idle", "the run to start")
        await wait_for(pilot, lambda: app.training.state == "idle", "the run to finish")
    run_json = json.loads((root / "cli" / "run.json").read_text())
    assert run_json["command"][:2] == ["mypt", "train"]
    assert [e.step for e in read_events(root / "cli" / "events.jsonl") if isinstance(e, Step)] == [1, 2, 3, 4, 5, 6]


async def test_warnings_show_as_a_line_and_a_notification(tmp_path):
    app = MyptApp(checkpoints=tmp_path / "ckpt")
    notes = Notifications()
    async with app.run_test(size=SIZE, message_hook=notes) as pilot:
        app.training.source = buffer = EventBuffer()
        buffer(RunWarning(step=40, message="val loss 3.1 exceeds train loss 1.9 by more than 1.0: overfitting",
                          code="overfitting"))
        await pilot.pause(0.4)  # a drain
        assert "warning: step 40: val loss 3.1 exceeds" in screen_text(app)
        assert any("overfitting" in m for m in notes.messages)


async def test_warnings_and_log_records_from_a_thread_become_notifications(tmp_path):
    import logging
    import threading
    import warnings

    app = MyptApp(checkpoints=tmp_path / "ckpt")
    notes = Notifications()
    async with app.run_test(size=SIZE, message_hook=notes) as pilot:
        def noisy():  # as torch warns from the training thread
            warnings.warn("TypedStorage is deprecated", UserWarning)
            logging.getLogger("torch.distributed").warning("NCCL not found")

        t = threading.Thread(target=noisy)
        t.start()
        t.join()
        await pilot.pause(0.2)
        shown = list(notes.messages)
        assert "UserWarning: TypedStorage is deprecated" in shown
        assert "torch.distributed: NCCL not found" in shown
    assert warnings.showwarning.__module__ == "warnings"  # put back when the app ended


async def test_every_key_is_in_the_footer_at_80x24_and_the_palette_lists_the_actions(tmp_path):
    app = MyptApp(checkpoints=tmp_path / "ckpt")
    async with app.run_test(size=(80, 24)) as pilot:
        lines = screen_text(app).splitlines()
        assert lines[0].split()[:10] == ["F1", "Train", "F2", "Runs", "F3", "Chat", "F4", "Data", "F5", "Config"]
        for key in ("^r Start", "^g Run detached", "^t Stop", "q/^c Quit", "^p palette"):
            assert key in lines[-1]
        await pilot.press("f2")
        await pilot.pause(0.2)
        for key in ("o Open", "^t Stop run", "^r Resume", "q/^c Quit", "^p palette"):
            assert key in screen_text(app).splitlines()[-1]
        titles = {c.title for c in app.get_system_commands(app.screen)}
        assert {"Train screen", "Runs screen", "Chat screen", "Data screen", "Config screen", "Start training",
                "Run detached", "Stop training", "Runs: refresh", "Show messages", "Quit"} <= titles


def test_the_plot_keeps_every_point_but_draws_bucket_means():
    from mypt_tui.app.widgets.loss_plot import downsample

    xs, ys = list(range(1, 11)), [float(v) for v in range(10, 0, -1)]
    assert downsample(xs, ys, 20) == (xs, ys)
    assert downsample(xs, ys, 5) == ([1.5, 3.5, 5.5, 7.5, 9.5], [9.5, 7.5, 5.5, 3.5, 1.5])
    bx, by = downsample(list(range(1000)), [1.0] * 1000, 160)
    assert len(bx) == 160 and by == [1.0] * 160 and bx[0] < bx[-1]


async def test_a_model_given_by_mypt_train_stays_selectable_after_the_checkpoints_are_listed(dataset, tmp_path):
    argv = ["--model", str(tmp_path / "elsewhere" / "base"), "--config", "c.toml", "--dataset", str(dataset),
            "--output", "o"]
    app = MyptApp(checkpoints=tmp_path / "ckpt", train_request=parse_train_flags(argv))
    async with app.run_test(size=SIZE) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause(0.1)
        from textual.widgets import Select
        assert app.train_screen.query_one("#init", Select).value == str(tmp_path / "elsewhere" / "base")
        assert app.train_screen.form.request().init is None
