"""The Runs screen and `mypt runs`: every run with its status and last metrics, a run replayed
from its files (a resume drops the redone steps), a run another process writes followed live,
and (slow) a detached run started from the Train screen, found again by a new app and stopped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from textual.widgets import DataTable, Input

from engine.audit import read_audit
from engine.config import TrainConfig
from engine.events import Done, Eval, JsonlSink, RunStart, Step, read_events
from engine.runs import latest_checkpoint, step_dir
from engine.train.job import TrainJob
from engine.train.loop import run_training
from helpers_app import Notifications, screen_text, tiny_config, tiny_dataset, wait_for
from mypt_tui.app.app import MyptApp
from mypt_tui.cli.main import main

SIZE = (100, 30)


def run_start(run: Path, step: int = 0, resumed: bool = False, pid: int | None = None, max_iters: int = 10) -> RunStart:
    return RunStart(step=step, run_dir=str(run), max_iters=max_iters, config={}, model={"params": 1000},
                    preflight={}, resumed=resumed, pid=pid or os.getpid())


def step(n: int, loss: float) -> Step:
    return Step(step=n, loss=loss, lr=1e-3, grad_norm=1.0, tokens=100, supervised=50, tokens_per_s=1000.0,
                supervised_per_s=500.0, epoch=0, epoch_progress=n / 10, elapsed=n * 0.1, eta_s=1.0,
                episodes=[f"ep{n:03d}"])


def write_run(run: Path, events) -> None:
    run.mkdir(parents=True, exist_ok=True)
    sink = JsonlSink(run / "events.jsonl")
    for ev in events:
        sink(ev)
    sink.close()


def dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


@pytest.fixture()
def runs(tmp_path):
    root = tmp_path / "ckpt"
    write_run(root / "done", [run_start(root / "done"), *(step(n, 3.0 - n * 0.25) for n in range(1, 5)),
                              Eval(step=4, val_loss=2.5, train_loss=2.0),
                              Done(step=4, reason="completed", elapsed=1.0)])
    write_run(root / "crashed", [run_start(root / "crashed", pid=dead_pid()), step(1, 4.0), step(2, 3.5)])
    return root


def cells(app, key: str) -> list[str]:
    table = app.screen.query_one(DataTable)
    return [str(c) for c in table.get_row(key)]


async def test_runs_table_lists_every_run_with_status_and_last_metrics(runs):
    app = MyptApp(checkpoints=runs)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f2")
        await wait_for(pilot, lambda: app.screen.query_one(DataTable).row_count == 2, "two rows")
        assert cells(app, str(runs / "done"))[:6] == ["done", "completed", "4/10", "2.0000", "2.5000", "2.5000"]
        assert cells(app, str(runs / "crashed"))[:5] == ["crashed", "interrupted", "2/10", "3.5000", "-"]
        table = app.screen.query_one(DataTable)
        table.move_cursor(row=table.get_row_index(str(runs / "crashed")))
        await pilot.press("o")
        await wait_for(pilot, lambda: app.screen.monitor.plot.points == (2, 0), "the replayed curve")
        assert f"mypt train --resume --output {runs / 'crashed'}" in app.screen.monitor.status


async def test_mypt_runs_prints_the_same_table(runs, capsys):
    assert main(["runs", "--checkpoints", str(runs)]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].split() == ["RUN", "STATUS", "STEP", "LOSS", "VAL", "BEST", "VAL", "UPDATED", "BEST", "EXACT",
                                "BEST", "FORMAT"]
    rows = {line.split()[0]: line.split()[1:6] for line in lines[1:]}
    assert rows == {"done": ["completed", "4/10", "2.0000", "2.5000", "2.5000"],
                    "crashed": ["interrupted", "2/10", "3.5000", "-", "-"]}
    assert f"crashed: interrupted; continue with `mypt train --resume --output {runs / 'crashed'}`" in err
    assert main(["runs", "--checkpoints", str(runs), "--json"]) == 0
    objs = [json.loads(line) for line in capsys.readouterr()[0].splitlines()]
    assert {o["name"]: (o["status"], o["step"], o["val_loss"]) for o in objs} == {
        "done": ("completed", 4, 2.5), "crashed": ("interrupted", 2, None)}


async def test_opening_a_finished_run_replays_its_curve_and_audit(tmp_path):
    root = tmp_path / "ckpt"
    cfg = TrainConfig(n_layer=2, n_embd=32, n_head=2, block_size=96, batch_size=4, max_iters=8, warmup_iters=1,
                      eval_interval=4, eval_iters=2, save_every=4, device="cpu", precision="fp32",
                      episode_min_tokens=4)
    run_training(TrainJob(config=cfg, dataset=tiny_dataset(tmp_path / "data"), output=root / "real"))
    app = MyptApp(checkpoints=root)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f2")
        await wait_for(pilot, lambda: app.screen.query_one(DataTable).row_count == 1, "the run")
        app.screen.query_one(DataTable).focus()
        await pilot.press("enter")
        monitor = app.screen.monitor
        await wait_for(pilot, lambda: monitor.plot.points == (8, 3), "8 train and 3 val points")
        steps = [r for r in read_audit(root / "real" / "audit.jsonl") if r["kind"] == "step"]
        shown = [e for e in monitor.audit.entries if e.step is not None]
        assert [e.step for e in shown] == [r["step"] for r in steps]
        assert list(shown[-1].episodes) == [e for mb in steps[-1]["micro_batches"] for e in mb["episodes"]]
        assert "real: completed at step 8" in monitor.status


async def test_a_resumed_run_drops_the_points_after_its_resume_step(tmp_path):
    root = tmp_path / "ckpt"
    run = root / "resumed"
    write_run(run, [run_start(run), *(step(n, 5.0) for n in range(1, 9)),
                    run_start(run, step=5, resumed=True), *(step(n, 1.0) for n in range(6, 11)),
                    Done(step=10, reason="completed", elapsed=2.0)])
    app = MyptApp(checkpoints=root)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f2")
        await wait_for(pilot, lambda: app.screen.query_one(DataTable).row_count == 1, "the run")
        await pilot.press("o")
        plot = app.screen.monitor.plot
        await wait_for(pilot, lambda: plot.points[0] > 0, "the curve")
        assert plot.train == (list(range(1, 11)), [5.0] * 5 + [1.0] * 5)


async def test_the_runs_screen_follows_a_run_another_process_writes(tmp_path):
    root = tmp_path / "ckpt"
    run = root / "live"
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])  # the writer's pid
    write_run(run, [run_start(run, pid=other.pid, max_iters=40), step(1, 4.0)])
    stop = threading.Event()

    def writer():  # appends a step every 20 ms, as a training process would
        sink = JsonlSink(run / "events.jsonl")
        for n in range(2, 41):
            if stop.is_set():
                break
            time.sleep(0.02)
            sink(step(n, 4.0 - n * 0.05))
        sink(Done(step=40, reason="completed", elapsed=1.0))
        sink.close()

    try:
        app = MyptApp(checkpoints=root)
        notes = Notifications()
        async with app.run_test(size=SIZE, message_hook=notes) as pilot:
            await pilot.press("f2")
            await wait_for(pilot, lambda: app.screen.query_one(DataTable).row_count == 1, "the run")
            await wait_for(pilot, lambda: cells(app, str(run))[1] == "running", "status running")
            await pilot.press("o")
            monitor = app.screen.monitor
            await wait_for(pilot, lambda: monitor.plot.points[0] >= 1, "the first step")
            assert f"live: running in process {other.pid}" in monitor.status
            await pilot.press("ctrl+t")  # not a headless mypt train: it is not signalled
            await pilot.pause(0.1)
            assert any("not a headless `mypt train`" in m for m in notes.messages)
            assert other.poll() is None
            thread = threading.Thread(target=writer)
            thread.start()
            await wait_for(pilot, lambda: monitor.plot.points[0] == 40, "all 40 steps, live")
            await wait_for(pilot, lambda: "Training complete at step 40" in monitor.status, "the end")
            assert monitor.plot.train[0] == list(range(1, 41))
            assert "step 40/40" in screen_text(app)
            thread.join()
    finally:
        stop.set()
        other.kill()
        other.wait()


@pytest.mark.slow
async def test_a_detached_run_outlives_the_app_and_a_new_app_follows_and_stops_it(tmp_path):
    root = tmp_path / "ckpt"
    dataset = tiny_dataset(tmp_path / "data")
    cfg = tiny_config(tmp_path, max_iters=100000, eval_interval=100000, save_every=100000)
    app = MyptApp(checkpoints=root)
    async with app.run_test(size=SIZE) as pilot:
        train = app.train_screen
        for key, value in (("config", cfg), ("dataset", dataset), ("output", "bg"), ("flags", "")):
            train.query_one(f"#{key}", Input).value = str(value)
        await pilot.press("ctrl+g")
        assert app.training.state == "detached"
        proc = app.training.detached.process  # this test's child: wait() reaps it (a zombie still has a pid)
        await wait_for(pilot, lambda: train.monitor.step is not None, "the detached run's first step", 60)
        train.query_one("#start").focus()
        await pilot.press("q")  # nothing trains inside the app: it quits without asking
    assert not app.is_running
    run = root / "bg"
    try:
        assert proc.poll() is None  # still training without the app
        assert (run / "console.log").exists()
        app2 = MyptApp(checkpoints=root)
        async with app2.run_test(size=SIZE) as pilot:
            await pilot.press("f2")
            await wait_for(pilot, lambda: app2.screen.query_one(DataTable).row_count == 1, "the run")
            assert cells(app2, str(run))[1] == "running"
            await pilot.press("o")
            monitor = app2.screen.monitor
            await wait_for(pilot, lambda: monitor.step is not None, "the live curve")
            seen = monitor.step.step
            await wait_for(pilot, lambda: monitor.step.step > seen, "new steps")
            await pilot.press("ctrl+t")  # SIGINT: the headless run saves a final checkpoint and stops
            await wait_for(pilot, lambda: "Training stopped at step" in monitor.status, "the stop", 60)
        done = [e for e in read_events(run / "events.jsonl") if isinstance(e, Done)]
        assert len(done) == 1 and done[0].reason == "stopped"
        assert latest_checkpoint(run, resumable=True) == step_dir(run, done[0].step)
        assert proc.wait(timeout=30) == 130  # the headless command's exit code for a stopped run
        assert "stopping after this step" in (run / "console.log").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


async def test_resume_from_the_runs_screen_continues_the_run_in_the_app(tmp_path):
    root = tmp_path / "ckpt"
    cfg = TrainConfig(n_layer=2, n_embd=32, n_head=2, block_size=96, batch_size=4, max_iters=8, warmup_iters=1,
                      eval_interval=4, eval_iters=2, save_every=2, device="cpu", precision="fp32",
                      episode_min_tokens=4)
    seen = []
    run_training(TrainJob(config=cfg, dataset=tiny_dataset(tmp_path / "data"), output=root / "half"),
                 [seen.append], should_stop=lambda: any(isinstance(e, Step) and e.step >= 4 for e in seen))
    app = MyptApp(checkpoints=root)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f2")
        await wait_for(pilot, lambda: app.screen.query_one(DataTable).row_count == 1, "the run")
        assert cells(app, str(root / "half"))[1] == "stopped"
        await pilot.press("ctrl+r")
        train = app.train_screen
        assert app.screen is train
        assert train.query_one("#output", Input).value == str(root / "half")
        assert train.query_one("#flags", Input).value == "--resume"
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: app.training.state == "idle" and train.monitor.step is not None,
                       "the resumed run")
    starts = [e for e in read_events(root / "half" / "events.jsonl") if isinstance(e, RunStart)]
    assert [(s.resumed, s.step) for s in starts] == [(False, 0), (True, 4)]
    done = [e for e in read_events(root / "half" / "events.jsonl") if isinstance(e, Done)]
    assert [(d.reason, d.step) for d in done] == [("stopped", 4), ("completed", 8)]


async def test_a_run_that_finishes_while_listed_shows_its_whole_status(tmp_path):
    """The table's columns grow with their content: a run listed as `running` that completes is
    `completed` on screen, not `complet`."""
    from helpers_app import screen_text

    root = tmp_path / "ckpt"
    run = root / "live"
    write_run(run, [run_start(run), step(1, 3.0)])
    app = MyptApp(checkpoints=root)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f2")
        await wait_for(pilot, lambda: app.screen.query_one(DataTable).row_count == 1, "the run")
        assert cells(app, str(run))[1] == "running"
        sink = JsonlSink(run / "events.jsonl")
        for n in range(2, 11):
            sink(step(n, 2.0))
        sink(Done(step=10, reason="completed", elapsed=1.0))
        sink.close()
        app.screen.scan()
        await wait_for(pilot, lambda: cells(app, str(run))[1] == "completed", "the new status")
        await pilot.pause(0.2)
        row = next(line for line in screen_text(app).splitlines() if line.lstrip().startswith("live"))
        assert row.split()[:3] == ["live", "completed", "10/10"]


def test_the_app_spins_openmp_threads_briefly_unless_the_user_chose(monkeypatch):
    """The app's process waits for OpenMP work with a short spin (GOMP_SPINCOUNT=10000): passive
    waits made an in-app run of the tiny config train at 0.34x headless, and the default long spin
    made it fall to about a step a second on a busy machine. The user's own choice is kept, and a
    detached run starts without the app's."""
    from mypt_tui.services.processes import detached_env

    probe = ("import os, mypt_tui.app.app; "
             "print(os.environ.get('OMP_WAIT_POLICY', '-'), os.environ.get('GOMP_SPINCOUNT', '-'))")

    def seen(**env: str) -> str:
        clean = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
        out = subprocess.run([sys.executable, "-c", probe], env={**clean, **env}, capture_output=True, text=True,
                             check=True)
        return out.stdout.strip()

    assert seen() == "- 10000"
    assert seen(OMP_WAIT_POLICY="PASSIVE") == "PASSIVE -"
    assert seen(GOMP_SPINCOUNT="500") == "- 500"
    monkeypatch.setenv("GOMP_SPINCOUNT", "10000")
    monkeypatch.setenv("MYPT_APP_SPINCOUNT", "1")
    env = detached_env()
    assert "GOMP_SPINCOUNT" not in env and "MYPT_APP_SPINCOUNT" not in env and env["PYTHONUNBUFFERED"] == "1"
    monkeypatch.delenv("MYPT_APP_SPINCOUNT")  # the user's own setting is kept
    assert detached_env()["GOMP_SPINCOUNT"] == "10000"
