"""`mypt` in a real terminal (tmux, 100x30): it opens on the default job and prepares it, F2
shows Runs, ctrl+r starts the run and the screen shows it progress, q asks, stops the run with a
final checkpoint and quits, and no traceback is left on the terminal.

The "checkout" here is a temporary folder with a tiny demo config and gold set, so the default
job trains in seconds and nothing is written into the repository. Needs tmux (CI installs it).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.events import Done, read_events
from engine.runs import latest_checkpoint, step_dir
from helpers_app import tiny_checkout

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tmux") is None,
                       reason="tmux is not installed (`.ci/run` installs it: apt-get install -y tmux)"),
]


SHELL_PREFIX = "unset COLUMNS LINES; "  # else the app sizes itself from the test runner's values


def prepared(root: Path) -> bool:
    return (root / "data" / "prepared" / "demo_chat" / "dataset_metadata.json").exists()


class Tmux:
    """One tmux server of our own (-L), so no other tmux session is touched."""

    def __init__(self, socket: str) -> None:
        self.base = ["tmux", "-L", socket]

    def __call__(self, *args: str) -> str:
        return subprocess.run([*self.base, *args], check=True, capture_output=True, text=True).stdout

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", "e2e")

    def keys(self, *keys: str) -> None:
        self("send-keys", "-t", "e2e", *keys)

    def wait(self, pattern: str, timeout: float = 60.0, poll: float = 0.2) -> str:
        end = time.monotonic() + timeout
        while True:
            text = self.screen()
            if re.search(pattern, text):
                return text
            if time.monotonic() > end:
                raise AssertionError(f"the terminal never showed {pattern!r}; it shows:\n{text}")
            time.sleep(poll)


def test_mypt_in_a_real_terminal(tmp_path):
    root = tiny_checkout(tmp_path / "checkout", max_iters=100000)
    tmux = Tmux(f"mypt-e2e-{os.getpid()}")
    command = (f"{SHELL_PREFIX}cd {shlex.quote(str(root))} && {shlex.quote(sys.executable)} -m mypt_tui.cli; "
               "echo MYPT_EXIT=$?")
    tmux("new-session", "-d", "-s", "e2e", "-x", "100", "-y", "30", f"{command}; sleep 600")
    try:
        text = tmux.wait(r"F1 Train")
        assert "Chat SFT" in text and "configs/demo/chat.toml" in text
        tmux.wait(r"data/prepared/demo_chat is ready")  # prepared on first use
        assert prepared(root)
        tmux.keys("F2")
        # the table's header and the empty-folder line, both (a capture may land between two paints)
        tmux.wait(r"(?s)(?=.*Best Val)(?=.*no runs in checkpoints/ yet)")
        tmux.keys("F1")
        tmux.wait(r"Type\s+Chat SFT")
        tmux.keys("C-r")
        text = tmux.wait(r"step [1-9]\d*/100000")
        assert "tok/s" in text and "training in this app" in text
        tmux.keys("F2")
        tmux.wait(r"demo_chat_\d{8}_\d{6}\s+running")
        tmux.keys("q")
        tmux.wait(r"Training is running")
        tmux.keys("Enter")  # "Stop and quit" has the focus
        text = tmux.wait(r"MYPT_EXIT=\d+")
        assert "MYPT_EXIT=0" in text
        assert "Traceback" not in text and "Error" not in text
    finally:
        subprocess.run([*tmux.base, "kill-server"], capture_output=True)
    runs = list((root / "checkpoints").iterdir())
    assert len(runs) == 1
    done = [e for e in read_events(runs[0] / "events.jsonl") if isinstance(e, Done)]
    assert len(done) == 1 and done[0].reason == "stopped"
    assert latest_checkpoint(runs[0], resumable=True) == step_dir(runs[0], done[0].step)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_hang_up_stops_an_in_app_run_with_a_final_checkpoint(tmp_path):
    """The terminal goes away mid-run (tmux kill-server hangs up, as a dropped SSH connection
    does): the run stops at the next step and saves a final checkpoint, and the app's process
    ends (it used to wait forever on a write to the gone terminal)."""
    root = tiny_checkout(tmp_path / "checkout", max_iters=100000)
    tmux = Tmux(f"mypt-e2e-hup-{os.getpid()}")
    command = f"{SHELL_PREFIX}cd {shlex.quote(str(root))} && exec {shlex.quote(sys.executable)} -m mypt_tui.cli"
    tmux("new-session", "-d", "-s", "e2e", "-x", "100", "-y", "30", command)
    try:
        tmux.wait(r"F1 Train")
        end = time.monotonic() + 60
        while not prepared(root):
            assert time.monotonic() < end, "the default job was not prepared"
            time.sleep(0.2)
        tmux.keys("C-r")
        tmux.wait(r"step [1-9]\d*/100000")
        pid = int(tmux("display-message", "-p", "-t", "e2e", "#{pane_pid}"))
    finally:
        subprocess.run([*tmux.base, "kill-server"], capture_output=True)
    runs = list((root / "checkpoints").iterdir())
    end = time.monotonic() + 60
    while not any(isinstance(e, Done) for e in read_events(runs[0] / "events.jsonl")):
        assert time.monotonic() < end, "the run did not stop after the hang-up"
        time.sleep(0.2)
    done = [e for e in read_events(runs[0] / "events.jsonl") if isinstance(e, Done)]
    assert done[0].reason == "stopped"
    assert latest_checkpoint(runs[0], resumable=True) == step_dir(runs[0], done[0].step)
    end = time.monotonic() + 60
    while alive(pid) and time.monotonic() < end:
        time.sleep(0.2)
    if alive(pid):
        os.kill(pid, 9)  # the test's own app: never leave it behind
        raise AssertionError("the app's process outlived the hang-up")


def test_keys_are_handled_quickly_while_a_tiny_model_trains_in_the_app(tmp_path):
    """The test suite's tiny config trains in the app's thread (many tiny steps, the training thread
    holding the interpreter between them): q and ctrl+c on the Runs screen open the quit dialog
    within a fraction of a second (they took seconds), and escape closes it."""
    from helpers_app import tiny_config, tiny_dataset

    flags = ["--init", "scratch", "--config", str(tiny_config(tmp_path, max_iters=10)),
             "--dataset", str(tiny_dataset(tmp_path / "data")), "--output", "keys", "--checkpoints",
             str(tmp_path / "ckpt"), "--max_iters", "1000000", "--eval_interval", "1000000", "--save_every", "1000000"]
    tmux = Tmux(f"mypt-e2e-keys-{os.getpid()}")
    command = (f"{SHELL_PREFIX}cd {shlex.quote(str(tmp_path))} && exec {shlex.quote(sys.executable)} -m mypt_tui.cli "
               f"train {shlex.join(flags)}")
    tmux("new-session", "-d", "-s", "e2e", "-x", "100", "-y", "30", command)
    took: list[float] = []

    def timed(key: str, pattern: str) -> float:
        start = time.monotonic()
        tmux.keys(key)
        tmux.wait(pattern, timeout=30, poll=0.01)
        return time.monotonic() - start

    try:
        tmux.wait(r"step [1-9]\d*/1000000")
        tmux.keys("F2")
        tmux.wait(r"Best Val")
        time.sleep(1.0)
        for key in ("q", "C-c", "q", "C-c", "q"):
            took.append(timed(key, r"Training is running"))
            time.sleep(0.3)
            timed("Escape", r"Stop run")
            time.sleep(0.3)
    finally:
        subprocess.run([*tmux.base, "kill-server"], capture_output=True)
    took.sort()
    assert took[len(took) // 2] < 0.3 and took[-1] < 2.0, [round(t, 3) for t in took]
