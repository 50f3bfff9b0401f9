"""The doors into the app from the command line: `mypt` with train flags for its default job,
and `mypt serve` ending cleanly on ctrl+c."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.events import Done, RunStart, read_events
from helpers_app import tiny_checkout
from mypt_tui.cli import default
from mypt_tui.cli.main import main


def test_the_default_job_takes_train_flags(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tiny_checkout(tmp_path, max_iters=5))
    assert main(["--no-ui", "--max_iters", "2", "--eval-interval", "1"]) == 0
    assert "--max_iters 2 --eval_interval 1" in capsys.readouterr().err  # the command it runs, shown
    (run,) = Path("checkpoints").iterdir()
    events = list(read_events(run / "events.jsonl"))
    assert [e.max_iters for e in events if isinstance(e, RunStart)] == [2]
    assert [(e.reason, e.step) for e in events if isinstance(e, Done)] == [("completed", 2)]


def test_a_flag_the_default_job_rejects_says_how_to_pass_train_flags(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tiny_checkout(tmp_path))
    assert main(["--no-ui", "--max_iters", "forty"]) == 2
    err = capsys.readouterr().err
    assert "--max_iters" in err and "mypt --no-ui --max_iters 40" in err
    assert not Path("checkpoints").exists()


def test_the_app_opens_on_the_default_job_with_the_flags_in_the_form(tmp_path, monkeypatch):
    monkeypatch.chdir(tiny_checkout(tmp_path))
    opened = {}
    monkeypatch.setattr("mypt_tui.app.app.run_app", lambda **kw: opened.update(kw) or 0)
    assert main(["--max_iters", "7", "--output", "mine"]) == 0
    req = opened["train_request"]
    assert (req.output, req.init, req.overrides) == ("mine", "scratch", {"max_iters": 7})
    assert req.config == str(Path("configs/demo/chat.toml"))


@pytest.mark.parametrize("argv", [["train", "--help"], ["--help"], [], ["--no-ui"], ["runs"]])
def test_commands_and_help_are_not_taken_for_train_flags(argv):
    assert default.with_train_flags(argv) is None


@pytest.mark.slow
def test_mypt_serve_ends_cleanly_on_ctrl_c_with_a_browser_session_open(tmp_path):
    """ctrl+c in the server's terminal reaches its whole process group, the browser sessions'
    apps included: the server must still end with exit code 0 and no traceback."""
    aiohttp = pytest.importorskip("aiohttp")
    pytest.importorskip("textual_serve")
    import asyncio
    import os
    import signal
    import socket
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "mypt_tui.cli", "serve", "--port", str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
                              cwd=tiny_checkout(tmp_path / "checkout"))

    async def browser_session() -> None:
        for _ in range(300):  # until the server listens
            try:
                async with aiohttp.ClientSession() as http, \
                        http.ws_connect(f"http://127.0.0.1:{port}/ws?width=100&height=30") as ws:
                    await asyncio.sleep(2.0)  # the session's app is starting
                    os.killpg(server.pid, signal.SIGINT)  # what ctrl+c in its terminal does
                    async for _ in ws:
                        pass
                    return
            except aiohttp.ClientError:
                await asyncio.sleep(0.1)
        raise AssertionError("the server never listened")

    try:
        asyncio.run(browser_session())
        out = server.communicate(timeout=60)[0].decode(errors="replace")
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
    assert server.returncode == 0, out
    for bad in ("Traceback", "KeyboardInterrupt", "Event loop is closed", "Error"):
        assert bad not in out, out
