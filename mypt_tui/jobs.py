"""Training jobs as the app starts them: `mypt train` flags -> a TrainJob, in-process or detached.

The form, the command line and a detached run all speak one language, the flags of
`mypt train`: the app builds the job from them exactly as the headless command does, and a
detached run is that same command (`mypt train --no-ui ...`) in a background process of its
own session, so it keeps going when the app, the terminal or the SSH connection goes away.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

CONSOLE_LOG = "console.log"  # a detached run's stdout and stderr, inside its run folder
CORE_FLAGS = ("model", "init", "config", "dataset", "output", "tokenization", "checkpoints")


class UsageError(Exception):
    """Flags that `mypt train` would reject, with argparse's message."""


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing and exiting (the app shows the message)."""

    def error(self, message: str):  # noqa: ANN201 - argparse's signature
        raise UsageError(message)

    def exit(self, status: int = 0, message: str | None = None):  # noqa: ANN201
        raise UsageError((message or "").strip() or "usage: see `mypt train --help`")


_parser: _Parser | None = None


def parse_train_argv(argv: list[str]) -> argparse.Namespace:
    """The namespace `mypt train ARGV` would get; UsageError for bad flags."""
    global _parser
    if _parser is None:
        from mypt_tui.commands import train

        _parser = _Parser(prog="mypt", add_help=False)
        train.register(_parser.add_subparsers(dest="command"))
    return _parser.parse_args(["train", *argv])


def argv_from_args(args: argparse.Namespace) -> list[str]:
    """`mypt train` flags that give back `args` (used when `mypt train` opens the app)."""
    from engine.config import format_value, overrides_from_args

    out: list[str] = []
    for name in CORE_FLAGS:
        value = getattr(args, name, None)
        if value is not None and not (name == "checkpoints" and value == "checkpoints"):
            out += [f"--{name}", str(value)]
    out += [flag for name in ("resume", "overwrite") if getattr(args, name, False) for flag in (f"--{name}",)]
    for key, value in overrides_from_args(args).items():
        out += [f"--{key}", format_value(key, value)]
    return out


def split_flags(text: str) -> list[str]:
    """The form's free "flags" field (e.g. `--max_iters 50 --resume`) as argv."""
    try:
        return shlex.split(text)
    except ValueError as e:
        raise UsageError(f"flags: {e}") from None


def build_train_job(argv: list[str]):
    """The TrainJob of `mypt train ARGV` (UsageError, ConfigError or TrainError with a user message)."""
    from mypt_tui.commands.train import build_job

    job = build_job(parse_train_argv(argv))
    job.command = ["mypt", "train", *argv]
    return job


def run_dir_of(argv: list[str]) -> Path:
    """Where `mypt train ARGV` writes its run (the --output folder)."""
    from mypt_tui.commands.train import under_root

    args = parse_train_argv(argv)
    if not args.output:
        raise UsageError("--output is required (the run folder, e.g. checkpoints/my_run)")
    return under_root(args.output, args.checkpoints)


def headless_command(argv: list[str]) -> list[str]:
    """The command line of a detached run: this Python, this mypt, `train --no-ui ARGV`."""
    return [sys.executable, "-m", "mypt_tui.cli", "train", "--no-ui", *argv]


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


def start_detached(argv: list[str]) -> Detached:
    """Start `mypt train --no-ui ARGV` in a new session, detached from this terminal.

    Its output goes to `<run>/console.log`. A new run's folder does not exist yet (and must be
    empty for the trainer), so the log starts beside it as `.<run>.console.log` and moves in
    once the run has begun (`Detached.adopt_log`).
    """
    run_dir = run_dir_of(argv)
    resume = parse_train_argv(argv).resume
    if resume and run_dir.is_dir():
        log = run_dir / CONSOLE_LOG
    else:
        run_dir.parent.mkdir(parents=True, exist_ok=True)
        log = run_dir.parent / f".{run_dir.name}.{CONSOLE_LOG}"
    with open(log, "ab") as out:
        proc = subprocess.Popen(headless_command(argv), stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
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
