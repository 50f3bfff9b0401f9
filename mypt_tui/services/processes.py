"""Runs in other processes: a detached `mypt train --no-ui`, found again, asked to stop.

A detached run is the headless command (`mypt train --no-ui` with the request's flags) in a
background process of its own session, so it keeps going when the app, the terminal or the
SSH connection goes away. SIGINT asks it to stop after the step (it saves a final checkpoint).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from engine.layout import CONSOLE_LOG
from engine.train.job import TrainRequest, run_dir_of
from mypt_tui.flags import train_argv


def headless_command(request: TrainRequest) -> list[str]:
    """The command line of a detached run: this Python, this mypt, `train --no-ui` and the request."""
    return [sys.executable, "-m", "mypt_tui.cli", "train", "--no-ui", *train_argv(request)]


@dataclass
class Detached:
    """A background `mypt train --no-ui` the app started (and may since have lost)."""

    pid: int
    run_dir: Path
    log: Path  # its console output; beside the run until the run folder exists
    process: subprocess.Popen | None = field(default=None, repr=False)
    adopted: bool = False  # the log is inside the run folder

    def exit_code(self) -> int | None:
        """Its exit code once it ended (None while running, or when another app started it)."""
        return None if self.process is None else self.process.poll()

    def adopt_log(self) -> None:
        """Move the console log into the run folder, now that the run made it (same file system)."""
        if self.adopted:
            return
        target = self.run_dir / CONSOLE_LOG
        if self.log != target:
            try:
                os.replace(self.log, target)
            except OSError:
                return
            self.log = target
        self.adopted = True

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.rstrip().splitlines()[-lines:])


def detached_env() -> dict[str, str]:
    """This process's environment, unbuffered (its console.log shows each line as it is printed),
    less the OpenMP spin the app set for its own UI: a detached run trains as `mypt train --no-ui`."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if env.pop("MYPT_APP_SPINCOUNT", None):
        env.pop("GOMP_SPINCOUNT", None)
    return env


def start_detached(request: TrainRequest) -> Detached:
    """Start `mypt train --no-ui` for the request in a new session, detached from this terminal.

    Its output goes to `<run>/console.log`. A new run's folder does not exist yet (and must be
    empty for the trainer), so the log starts beside it as `.<run>.console.log` and moves in
    once the run has begun (`Detached.adopt_log`).
    """
    run_dir = run_dir_of(request)
    if request.resume and run_dir.is_dir():
        log = run_dir / CONSOLE_LOG
    else:
        run_dir.parent.mkdir(parents=True, exist_ok=True)
        log = run_dir.parent / f".{run_dir.name}.{CONSOLE_LOG}"
    with open(log, "ab") as out:
        proc = subprocess.Popen(headless_command(request), stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                start_new_session=True, env=detached_env())
    return Detached(proc.pid, run_dir, log, proc, adopted=log.parent == run_dir)


def command_line(pid: int) -> list[str]:
    """A process's argv ([] when it is gone or cannot be read)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        return [a.decode(errors="replace") for a in raw.split(b"\0") if a]
    except OSError:
        pass
    try:
        out = subprocess.run(["ps", "-o", "command=", "-p", str(pid)], capture_output=True, text=True, timeout=5)
        return out.stdout.split()
    except (OSError, subprocess.SubprocessError):
        return []


def is_headless_train(pid: int) -> bool:
    """Whether pid is a `mypt train --no-ui` (SIGINT stops those cleanly; an app would be killed)."""
    argv = command_line(pid)
    return "train" in argv and any(a in ("--no-ui", "--no_ui") for a in argv)


def interrupt(pid: int) -> str | None:
    """Ask a headless run to stop (SIGINT: it saves a final checkpoint). None, or why not."""
    if pid == os.getpid():
        return "this run trains inside this app: stop it on the Train screen"
    if not is_headless_train(pid):
        return (f"process {pid} is not a headless `mypt train` (another mypt app trains it, or it ended); "
                "stop it where it runs")
    try:
        os.kill(pid, signal.SIGINT)
    except ProcessLookupError:
        return f"process {pid} has ended"
    except PermissionError:
        return f"process {pid} belongs to another user"
    return None
