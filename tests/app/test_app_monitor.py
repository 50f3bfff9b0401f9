"""The run on screen as a newcomer reads it: the first screen says what to do, the loss plot is
readable late in a run (log axis, smoothed train, val as markers, zoom), the audit pane's lines
fit and keep following, a step's full record opens, and the form's run as a command line."""

from __future__ import annotations

import math
import re
import shlex
import threading

import pytest
from textual.widgets import Input

from engine.audit import AuditWriter
from engine.events import EpochEnd, Eval, RunStart, Step
from helpers_app import Notifications, screen_text, tiny_config, tiny_dataset, wait_for
from mypt_tui.app import app as app_module
from mypt_tui.app.app import MyptApp
from mypt_tui.app.widgets.loss_plot import smooth
from mypt_tui.app.widgets.step_record import StepRecord
from mypt_tui.flags import parse_train_flags
from mypt_tui.present.audit_lines import step_line
from mypt_tui.services.events import EventBuffer

SIZE = (100, 30)
IDS = [f"chat-{n:06d}" for n in range(1000)]


def run_start(run_dir, step=0, resumed=False, max_iters=330) -> RunStart:
    return RunStart(step=step, run_dir=str(run_dir), max_iters=max_iters, config={}, model={"params": 1000},
                    preflight={}, resumed=resumed)


def step(n: int, loss: float | None = None, epoch: int = 0) -> Step:
    loss = 0.04 + 10.9 * math.exp(-n / 12) if loss is None else loss
    return Step(step=n, loss=loss, lr=1e-3, grad_norm=1.0, tokens=100, supervised=50, tokens_per_s=1000.0,
                supervised_per_s=500.0, epoch=epoch, epoch_progress=0.5, elapsed=float(n), eta_s=1.0,
                episodes=IDS[(n * 55) % 900:(n * 55) % 900 + 55])


def demo_curve(run_dir, last=300) -> list:
    evals = [Eval(step=n, val_loss=0.05 + 10.9 * math.exp(-n / 12), train_loss=1.0, val_accuracy=0.5,
                  val_tokens=10) for n in range(0, last + 1, 50)]
    return [run_start(run_dir), *(step(n) for n in range(1, last + 1)), *evals]


async def feed(app, pilot, events) -> None:
    app.training.source = buffer = EventBuffer()
    buffer.extend(events)
    await wait_for(pilot, lambda: not buffer._events, "the screen to take the events")
    await pilot.pause(0.1)
    app.train_screen.monitor.plot.redraw()
    await pilot.pause(0.1)


async def test_the_first_screen_says_what_the_default_job_is_and_how_to_start_it(tmp_path):
    app = MyptApp(checkpoints=tmp_path / "ckpt")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.2)
        text = screen_text(app)
        assert "The default job: a 4-layer, 256-wide model" in text
        assert "ctrl+r  train the demo (about 5 min on a laptop CPU)" in text
        await feed(app, pilot, demo_curve(tmp_path / "run", last=20))
        text = screen_text(app)
        assert "ctrl+r  train the demo" not in text  # a run is shown: its panes, with their titles
        assert "Loss (log, all) ^y scale ^l zoom" in text and "Audit · click a step, or ^b" in text


async def test_the_loss_plot_is_readable_late_in_a_run(tmp_path):
    app = MyptApp(checkpoints=tmp_path / "ckpt")
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, pilot, demo_curve(tmp_path / "run"))
        plot = app.train_screen.monitor.plot
        region = plot.region
        lines = screen_text(app).splitlines()[region.y:region.bottom]
        shown = "\n".join(line[region.x:region.right] for line in lines)
        ticks = [float(t) for t in re.findall(r"^\s*(\d+\.\d+)┤", shown, re.M)]
        assert max(ticks) > 5 and 0 < min(ticks) < 0.1, ticks  # log axis: 0.04 and 10.9 both readable
        assert "train (smoothed)" in shown and "val" in shown and "●" in shown  # val drawn as markers
        assert "step" in shown and "loss" in shown  # axis labels
        await pilot.press("ctrl+y")
        await pilot.pause(0.2)
        assert not plot.log_y and "Loss (linear, all)" in screen_text(app)
        await pilot.press("ctrl+y", "ctrl+l")
        await pilot.pause(0.2)
        assert plot.window == 200 and "Loss (log, last 200)" in screen_text(app)
        shown = "\n".join(line[region.x:region.right] for line in screen_text(app).splitlines()[region.y:region.bottom])
        first_tick = int(re.search(r"└┬.*\n\s+(\d+)\s", shown).group(1))
        assert 100 <= first_tick <= 110, shown  # the x axis starts at step 100


def last_step_tick(app) -> int:
    """The last label of the plot's x axis, as the screen shows it."""
    region = app.train_screen.monitor.plot.region
    lines = [line[region.x:region.right] for line in screen_text(app).splitlines()[region.y:region.bottom]]
    return int(next(line for line in lines if re.fullmatch(r"\s*\d+(\s+\d+)+\s*", line)).split()[-1])


async def test_new_points_are_drawn_within_a_second_without_a_timer_of_their_own(tmp_path):
    """The plot is drawn in the screen's own repaint, at most once a second (a plot build costs a
    repaint's worth of the UI's time): points that arrive just after a draw wait for the next, and
    are drawn although no more events come (a run gone quiet: a long eval, a checkpoint)."""
    app = MyptApp(checkpoints=tmp_path / "ckpt")
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, pilot, [run_start(tmp_path / "run"), *(step(n) for n in range(1, 6))])
        plot = app.train_screen.monitor.plot
        assert last_step_tick(app) == 5
        plot.add_train(6, 1.0)
        plot.redraw()
        drawn = plot._version
        for n in range(7, 41):
            plot.add_train(n, 1.0)
        plot.redraw_if_due()
        assert plot._version == drawn  # drawn a moment ago: not again yet
        await wait_for(pilot, lambda: last_step_tick(app) == 40, "the new points drawn by the screen's next updates",
                       timeout=5)


def test_smoothing_follows_the_level_not_the_noise():
    ys = [1.0 if n % 2 else 3.0 for n in range(200)]
    out = smooth(ys, 20)
    assert out[0] == ys[0] and abs(out[-1] - 2.0) < 0.15 and len(out) == len(ys)


async def test_audit_lines_fit_the_pane_and_epoch_ends_are_whole(tmp_path):
    app = MyptApp(checkpoints=tmp_path / "ckpt")
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, pilot, [run_start(tmp_path / "run"), step(1), step(2),
                                EpochEnd(step=2, epoch=0, trained=1234, dropped=3)])
        audit = app.train_screen.monitor.audit
        width = audit.scrollable_content_region.width
        assert all(len(line) <= width for line in audit.lines)
        assert audit.lines[0] == step_line(1, 0, IDS[55:110], width)
        assert re.fullmatch(r"step 1 e0 · 55 episodes: chat-000055( chat-\d{6})* … \(\+\d+\)", audit.lines[0])
        note = " ".join(line.strip() for line in audit.lines[2:])
        assert note == "epoch 0 done at step 2: 1,234 episodes trained, 3 dropped (an incomplete last batch)"
        text = screen_text(app)
        assert "Audit · click a step, or ^b" in text and audit.lines[0] in text


async def test_the_audit_keeps_following_after_an_in_app_resume_and_a_resize(tmp_path):
    run = tmp_path / "run"
    app = MyptApp(checkpoints=tmp_path / "ckpt")
    async with app.run_test(size=SIZE) as pilot:
        # an in-app resume feeds the run's history, then the resumed steps, in one batch
        await feed(app, pilot, [*demo_curve(run), run_start(run, step=300, resumed=True),
                                *(step(n) for n in range(301, 331))])
        audit = app.train_screen.monitor.audit
        assert "step 330 e0" in screen_text(app) and "resumed at step 300" in audit.lines
        await pilot.resize_terminal(80, 24)
        await pilot.pause(0.3)
        await feed(app, pilot, [step(331)])
        assert "step 331 e0" in screen_text(app)
        await pilot.resize_terminal(100, 30)
        await pilot.pause(0.3)
        await feed(app, pilot, [step(332)])
        assert "step 332 e0" in screen_text(app) and audit.scroll_y == audit.max_scroll_y


async def test_a_click_on_a_step_or_ctrl_b_opens_its_full_record(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    writer = AuditWriter(run / "audit.jsonl")
    for n in (1, 2):
        mbs = [{"epoch": 0, "position": 55 * (n - 1), "episodes": IDS[:3], "hashes": ["ab" * 32] * 3,
                "tokens": 300, "supervised": 120}]
        writer.write("step", n, rank=0, epoch=0, micro_batches=mbs, tokens=300, supervised=120)
    writer.close()
    app = MyptApp(checkpoints=tmp_path / "ckpt")
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, pilot, [run_start(run), step(1), step(2)])
        await pilot.click("#mon-audit", offset=(3, 1))  # the first line is step 1
        await wait_for(pilot, lambda: isinstance(app.screen, StepRecord), "the record of step 1")
        await wait_for(pilot, lambda: "micro-batch 1" in screen_text(app), "the record's text")
        text = screen_text(app)
        assert "step 1 · epoch 0 · 300 tokens, 120 trained" in text and "chat-000000  sha256 abababab" in text
        await pilot.press("escape")
        await pilot.press("ctrl+b")  # the newest step
        await wait_for(pilot, lambda: "from position 55 of the epoch" in screen_text(app), "the record of step 2")


async def test_the_form_shows_its_run_as_a_command_line_to_rerun_headless(tmp_path):
    app = MyptApp(checkpoints=tmp_path / "ckpt")
    notes = Notifications()
    async with app.run_test(size=SIZE, message_hook=notes) as pilot:
        train = app.train_screen
        train.query_one("#flags", Input).value = "--max_iters 50 --eval-interval 10"
        await pilot.pause(0.2)
        command = train.command
        assert command.startswith("mypt train --no-ui --init scratch --config ") and "--max_iters 50" in command
        assert "$ mypt train --no-ui --init scratch --config" in screen_text(app)
        again = parse_train_flags(shlex.split(command)[3:])
        wanted = train.form.request()
        for field in ("init", "config", "dataset", "output", "overrides"):
            assert getattr(again, field) == getattr(wanted, field), field
        await pilot.click("#copy")
        await pilot.pause(0.2)
        assert app.clipboard == command and any("copied" in m for m in notes.messages)


async def test_a_hang_up_ends_the_process_once_the_run_has_saved(tmp_path, monkeypatch):
    """Textual's exit can wait forever on a write to a terminal that is gone: after a hang-up the
    app ends its process itself, once the in-app run has stopped and saved."""
    monkeypatch.setattr(app_module, "HANG_UP_GRACE", 0.0)
    ended = threading.Event()
    app = MyptApp(checkpoints=tmp_path / "ckpt")
    app.end_process = ended.set
    async with app.run_test(size=SIZE) as pilot:
        train = app.train_screen
        for key, value in (("config", tiny_config(tmp_path, max_iters=5000, eval_interval=1000, save_every=1000)),
                           ("dataset", tiny_dataset(tmp_path / "data")), ("output", "hup"), ("flags", "")):
            train.query_one(f"#{key}", Input).value = str(value)
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: train.monitor.step is not None, "the first step")
        app.hang_up()
        assert ended.wait(60), "the process was not ended after the run stopped"
        assert (tmp_path / "ckpt" / "hup" / "step_000001").exists() or any((tmp_path / "ckpt" / "hup").glob("step_*"))


@pytest.mark.parametrize("width", [30, 48, 62, 200])
def test_a_step_line_never_exceeds_its_width(width):
    line = step_line(123, 2, IDS[:55], width)
    assert len(line) <= width and line.startswith("step 123 e2 · 55 episodes")
