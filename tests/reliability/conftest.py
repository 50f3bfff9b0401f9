"""The reliability suite's shared pieces: how to run `mypt`, how a case must end, and small inputs.

Every case of the suite ends the same way (issue 15): a clear one-line error naming the file and
the place, a non-zero exit, no traceback on the terminal, and nothing written or damaged. The
helpers below check exactly that, and raise their own assertion types (FilesLost, CodeRan) so
that `tally.py` can count what kind of failure a failing case was.

Tests run in their own temporary folder (the suite-wide conftest chdirs there), so nothing here
ever writes into the checkout.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import pytest

REPO = Path(__file__).resolve().parents[2]
NOBODY = 65534  # the user a root test process drops to, so that permissions bite


class FilesLost(AssertionError):
    """A file or folder that had to stay as it was was changed, removed, or half-written."""


class CodeRan(AssertionError):
    """A pickle's payload ran: its marker file exists."""


@dataclass
class Result:
    """What a `mypt` run left: its exit code and what it printed."""

    rc: int
    out: str
    err: str


# -- running mypt ------------------------------------------------------------------------------

def child_env(**extra: str) -> dict[str, str]:
    """The environment of a `mypt` subprocess: the checkout importable, tracebacks of bugs logged
    under the current folder, one torch thread (the suite shares two cores)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "NO_COLOR": "1"}
    env.setdefault("MYPT_LOG_DIR", str(Path.cwd() / "error-logs"))
    env.update(extra)
    return env


def run_mypt(*args: str | Path, stdin: bytes | None = None, timeout: float = 120,
             preexec: Callable[[], None] | None = None, env: dict[str, str] | None = None,
             cwd: str | Path | None = None) -> Result:
    """`mypt ARGS` in a subprocess (for signals, rlimits, other users): rc, stdout, stderr."""
    proc = subprocess.run([sys.executable, "-m", "mypt_tui.cli", *map(str, args)], input=stdin,
                          capture_output=True, timeout=timeout, preexec_fn=preexec, env=env or child_env(),
                          cwd=cwd)
    return Result(proc.returncode, proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace"))


@pytest.fixture
def mypt(capsys, monkeypatch) -> Callable[..., Result]:
    """`mypt ARGS` in this process (fast): mypt_tui.cli.main.main with stdin given as bytes."""
    from mypt_tui.cli.main import main

    def run(*args: str | Path, stdin: bytes | None = None) -> Result:
        if stdin is not None:
            monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8"))
        capsys.readouterr()
        try:
            rc = main([str(a) for a in args])
        except SystemExit as e:  # argparse refusing a flag
            rc = e.code if isinstance(e.code, int) else 1
        captured = capsys.readouterr()
        return Result(rc, captured.out, captured.err)

    return run


def drop_to_nobody() -> None:
    """preexec_fn: as root, become `nobody`, so that file permissions apply to the child."""
    if os.geteuid() == 0:
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)


def session_pids(sid: int) -> list[int]:
    """Processes of a session (the killed prepare started one of its own)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[3]) == sid and fields[0] != "Z":
                pids.append(int(entry.name))
    return pids


# -- how a case must end -----------------------------------------------------------------------

def assert_clean_failure(result: Result, *must_name: str | Path, prefix: str = "error:",
                         stream: str = "err") -> str:
    """A non-zero exit, no traceback anywhere, not reported as a bug, and exactly one line starting
    with `prefix` (on stderr, or stdout with stream="out") that names each of `must_name`."""
    shown = f"rc={result.rc}\n--- stdout\n{result.out}\n--- stderr\n{result.err}"
    assert result.rc != 0, f"the command succeeded:\n{shown}"
    assert "Traceback" not in result.out + result.err, f"a traceback reached the terminal:\n{shown}"
    assert "a bug in mypt" not in result.err, f"reported as a bug (an unexpected exception):\n{shown}"
    text = result.err if stream == "err" else result.out
    lines = [line for line in text.splitlines() if line.startswith(prefix)]
    assert len(lines) == 1, f"expected one line starting with {prefix!r}:\n{shown}"
    for name in must_name:
        assert str(name) in lines[0], f"the error does not name {str(name)!r}:\n{shown}"
    return lines[0]


def assert_no_traceback(result: Result) -> None:
    shown = f"rc={result.rc}\n--- stdout\n{result.out}\n--- stderr\n{result.err}"
    assert "Traceback" not in result.out + result.err, f"a traceback reached the terminal:\n{shown}"
    assert "a bug in mypt" not in result.err, f"reported as a bug:\n{shown}"


def tree_state(root: Path) -> dict[str, str]:
    """Every entry under root (root itself included) -> its kind and content hash."""
    def one(p: Path) -> str:
        if p.is_symlink():
            return "link:" + os.readlink(p)
        if p.is_dir():
            return "dir"
        if p.is_file():
            return "file:" + hashlib.sha256(p.read_bytes()).hexdigest()
        return "other" if p.exists() else "absent"

    root = Path(root)
    state = {".": one(root)}
    if root.is_dir() and not root.is_symlink():
        for p in sorted(root.rglob("*")):
            state[p.relative_to(root).as_posix()] = one(p)
    return state


@contextlib.contextmanager
def untouched(*paths: str | Path):
    """Within the block, the given files and folders (present or absent) must not change."""
    before = {str(p): tree_state(Path(p)) for p in paths}
    yield
    for p in paths:
        after = tree_state(Path(p))
        if after != before[str(p)]:
            changed = sorted(k for k in set(after) | set(before[str(p)]) if after.get(k) != before[str(p)].get(k))
            raise FilesLost(f"{p} changed: {changed[:10]}")


def assert_no_leftovers(folder: Path, also: Iterable[str] = ()) -> None:
    """No temp folder (`.mypt-tmp-*`) and none of the names in `also` left in `folder`."""
    left = sorted(p.name for p in Path(folder).iterdir() if p.name.startswith(".mypt-tmp-") or p.name in also)
    if left:
        raise FilesLost(f"left behind in {folder}: {left}")


def assert_not_run(marker: Path) -> None:
    if Path(marker).exists():
        raise CodeRan(f"the pickle's payload ran: {marker} exists")


# -- small inputs ------------------------------------------------------------------------------

def chat_line(i: int, schema: str = "gold") -> dict:
    """A valid one-turn episode in one of the three schemas."""
    q, a = f"What is {i} plus {i}?", f"It is {2 * i}."
    if schema == "openai":
        return {"id": f"oa{i}", "messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}
    if schema == "sharegpt":
        return {"id": f"sg{i}", "conversations": [{"from": "human", "value": q}, {"from": "gpt", "value": a}]}
    return {"episode_id": f"ep{i}", "messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, symlinks=True)
    return dst


@pytest.fixture(scope="session")
def tiny_ds_master(tmp_path_factory) -> Path:
    """A small prepared char dataset (train and val), made once; tests copy it (`tiny_ds`)."""
    from helpers_app import tiny_dataset

    return tiny_dataset(tmp_path_factory.mktemp("tiny-ds"))


@pytest.fixture
def tiny_ds(tiny_ds_master, tmp_path) -> Path:
    """This test's own copy of the tiny dataset, to damage at will."""
    return copy_tree(tiny_ds_master, tmp_path / "ds")


@pytest.fixture(scope="session")
def tiny_ckpt_master(tiny_ds_master, tmp_path_factory) -> Path:
    """A checkpoint of a tiny random GPT on the tiny dataset's tokenizer, with train_state.pt."""
    import torch

    from engine.checkpoint import save_checkpoint
    from engine.dataset import open_dataset
    from engine.model import GPT, GPTConfig

    tok = open_dataset(tiny_ds_master).tokenizer()
    torch.manual_seed(0)
    model = GPT(GPTConfig(n_layer=1, n_head=2, n_embd=16, block_size=128, vocab_size=tok.model_vocab_size))
    path = tmp_path_factory.mktemp("tiny-ckpt") / "ckpt"
    save_checkpoint(path, model, tokenizer_state=tok.state(), step=3,
                    train_state={"optimizer": {"state": {}}, "step": 3, "rng": torch.get_rng_state()})
    return path


@pytest.fixture
def tiny_ckpt(tiny_ckpt_master, tmp_path) -> Path:
    return copy_tree(tiny_ckpt_master, tmp_path / "ckpt")
