"""The CLI boundary under system faults: paths it may not read, a read-only output folder, a full disk
(a file-size limit in a child process, and a tiny tmpfs where one can be mounted), and two quick
ctrl+c. Each ends with one line naming the path, a non-zero exit, no traceback, nothing half-written.

Permissions bite only a user who is not root: a root test process drops to `nobody` (its effective
ids, in this process; or fully, in a child), working in a folder that user may enter.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import resource
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
import torch
from conftest import (
    NOBODY,
    assert_clean_failure,
    assert_no_leftovers,
    chat_line,
    child_env,
    copy_tree,
    session_pids,
    untouched,
)

from helpers_data import write_jsonl


@pytest.fixture
def shared(tmp_path) -> Path:
    """A folder `nobody` may enter and write (the test's tmp_path is root's alone)."""
    folder = Path(tempfile.mkdtemp(prefix="mypt-faults-", dir="/tmp"))
    folder.chmod(0o777)
    yield folder
    for p in [folder, *folder.rglob("*")]:
        with contextlib.suppress(OSError):
            p.chmod(0o777 if p.is_dir() else 0o666)
    shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def as_nobody():
    """Permissions apply inside: a root process takes `nobody`'s effective ids, then takes back its own."""
    if os.geteuid() != 0:
        yield
        return
    import importlib.resources  # noqa: F401 - the standard library may sit in root's home: import first

    from engine.tokenizer import gpt2

    gpt2()  # its BPE files are read once per process
    os.setegid(NOBODY)
    os.seteuid(NOBODY)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)


def locked(path: Path, mode: int = 0) -> Path:
    path.chmod(mode)
    return path


@pytest.fixture
def world(shared, tiny_ds_master, tiny_ckpt_master) -> dict[str, Path]:
    """Inputs of every command, in the shared folder, readable by all until a case locks one."""
    w = {"jsonl": write_jsonl(shared / "in.jsonl", [chat_line(i) for i in range(8)]),
         "ds": copy_tree(tiny_ds_master, shared / "ds"), "ckpt": copy_tree(tiny_ckpt_master, shared / "ckpt"),
         "config": shared / "c.toml", "ro": shared / "ro"}
    w["config"].write_text("n_layer = 1\nn_embd = 16\nn_head = 2\n")
    w["ro"].mkdir()
    for p in [shared, *shared.rglob("*")]:
        p.chmod(0o777 if p.is_dir() else 0o666)
    w["ro"].chmod(0o555)
    return w


# (id, what to lock (under the shared folder), the command, what the error line names)
UNREADABLE = [
    ("prepare-input-file", "in.jsonl", ["prepare", "chat", "--input", "in.jsonl", "--output", "o"],
     ["in.jsonl", "permission denied"]),
    ("prepare-input-subfolder", "inputs/sub", ["prepare", "chat", "--input", "inputs", "--output", "o"],
     ["inputs/sub", "permission denied"]),
    ("prepare-pretrain-subfolder", "prose/sub", ["prepare", "pretrain", "--input", "prose", "--output", "o",
                                                 "--tokenization", "char"], ["prose/sub", "permission denied"]),
    ("inspect-dataset-folder", "ds", ["inspect", "ds"], ["ds", "permission denied"]),
    ("inspect-tokens", "ds/train/tokens.bin", ["inspect", "ds"], ["tokens.bin", "permission denied"]),
    ("inspect-metadata", "ds/dataset_metadata.json", ["inspect", "ds"], ["dataset_metadata.json", "ermission denied"]),
    ("train-config", "c.toml", ["train", "--config", "c.toml", "--dataset", "ds", "--output", "run2", "--no-ui"],
     ["c.toml", "ermission denied"]),
    ("generate-checkpoint-folder", "ckpt", ["generate", "--model", "ckpt", "--prompt", "hi"], ["ckpt", "permission"]),
    ("generate-weights", "ckpt/model.safetensors", ["generate", "--model", "ckpt", "--prompt", "hi"],
     ["model.safetensors", "ermission denied"]),
    ("chat-meta", "ckpt/meta.json", ["chat", "--model", "ckpt", "--no-ui"], ["meta.json", "ermission denied"]),
    ("eval-dataset", "ds/val/episodes.idx", ["eval", "--model", "ckpt", "--dataset", "ds"],
     ["episodes.idx", "permission denied"]),
    ("audit-file", "run/audit.jsonl", ["audit", "run", "--verify"], ["audit.jsonl", "permission denied"]),
    ("runs-root", "runs", ["runs", "--checkpoints", "runs"], ["runs", "permission denied"]),
    ("import-source", "hf/config.json", ["import", "gpt2", "--from", "hf", "--output", "imp"],
     ["config.json", "ermission denied"]),
]


@pytest.mark.parametrize("case_id, lock, command, names", UNREADABLE, ids=[c[0] for c in UNREADABLE])
def test_a_path_the_user_may_not_read_is_named(world, shared, mypt, monkeypatch, case_id, lock, command, names):
    (shared / "run").mkdir()
    (shared / "run" / "audit.jsonl").write_text("{}\n")
    (shared / "runs" / "r1").mkdir(parents=True)
    hf_folder(shared / "hf")
    write_jsonl(shared / "inputs" / "a.jsonl", [chat_line(1)])
    write_jsonl(shared / "inputs" / "sub" / "b.jsonl", [chat_line(2)])
    (shared / "prose" / "sub").mkdir(parents=True)
    (shared / "prose" / "a.txt").write_text("A paragraph of prose.\n")
    (shared / "prose" / "sub" / "b.txt").write_text("Another, out of reach.\n")
    for p in [shared, *shared.rglob("*")]:
        p.chmod(0o777 if p.is_dir() else 0o666)
    locked(shared / lock)
    monkeypatch.chdir(shared)
    with untouched(shared), as_nobody():
        r = mypt(*command)
    assert_clean_failure(r, *names)


WRITES = [
    ("prepare-output", lambda w: ["prepare", "chat", "--input", w["jsonl"], "--output", w["ro"] / "out"]),
    ("prepare-output-nested", lambda w: ["prepare", "chat", "--input", w["jsonl"], "--output", w["ro"] / "a" / "b"]),
    ("import-output", lambda w: ["import", "gpt2", "--from", w["hf"], "--output", w["ro"] / "ckpt"]),
]


@pytest.mark.parametrize("case_id, command", WRITES, ids=[c[0] for c in WRITES])
def test_a_read_only_output_folder_is_named_and_nothing_is_written(world, shared, mypt, case_id, command):
    world["hf"] = hf_folder(shared / "hf")
    with untouched(world["ro"]), as_nobody():
        r = mypt(*command(world))
    assert_clean_failure(r, "ro", "permission denied")


# -- a full disk --------------------------------------------------------------------------------

def hf_folder(folder: Path) -> Path:
    """A tiny Hugging Face GPT-2 folder (one layer, 8 wide): its import is 1.6 MB of weights."""
    from safetensors.torch import save_file

    folder.mkdir(exist_ok=True)
    g = torch.Generator().manual_seed(0)
    C, T = 8, 16
    sd = {"wte.weight": torch.randn(50257, C, generator=g), "wpe.weight": torch.randn(T, C, generator=g),
          "ln_f.weight": torch.ones(C), "ln_f.bias": torch.zeros(C)}
    for name, shape in (("ln_1.weight", (C,)), ("ln_1.bias", (C,)), ("attn.c_attn.weight", (C, 3 * C)),
                        ("attn.c_attn.bias", (3 * C,)), ("attn.c_proj.weight", (C, C)), ("attn.c_proj.bias", (C,)),
                        ("ln_2.weight", (C,)), ("ln_2.bias", (C,)), ("mlp.c_fc.weight", (C, 4 * C)),
                        ("mlp.c_fc.bias", (4 * C,)), ("mlp.c_proj.weight", (4 * C, C)), ("mlp.c_proj.bias", (C,))):
        sd[f"h.0.{name}"] = torch.randn(*shape, generator=g) * 0.1
    (folder / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_layer": 1, "n_head": 1, "n_embd": C,
                                                    "n_positions": T, "vocab_size": 50257}))
    save_file(sd, str(folder / "model.safetensors"))
    for p in [folder, *folder.iterdir()]:
        p.chmod(0o777 if p.is_dir() else 0o666)
    return folder


def file_size_limit(limit: int):
    """preexec_fn: writes past `limit` bytes fail with EFBIG (SIGXFSZ ignored, or it would kill)."""
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def run_limited(*args, limit: int = 64 * 1024, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mypt_tui.cli", *map(str, args)], capture_output=True, text=True,
                          env=child_env(), cwd=cwd, preexec_fn=file_size_limit(limit), timeout=300)


def as_result(proc: subprocess.CompletedProcess):
    from conftest import Result

    return Result(proc.returncode, proc.stdout, proc.stderr)


def test_prepare_on_a_full_disk_names_the_output_and_writes_nothing(tmp_path):
    src = write_jsonl(tmp_path / "big.jsonl", [chat_line(i) for i in range(3000)])
    with untouched(tmp_path / "out"):
        r = as_result(run_limited("prepare", "chat", "--input", src, "--output", tmp_path / "out", cwd=tmp_path))
    assert_clean_failure(r, tmp_path / "out", "larger than this process may write")
    assert_no_leftovers(tmp_path)


def test_a_full_disk_during_overwrite_keeps_the_old_dataset(tmp_path, mypt):
    assert mypt("prepare", "chat", "--input", write_jsonl(tmp_path / "small.jsonl", [chat_line(1), chat_line(2)]),
                "--output", tmp_path / "out").rc == 0
    src = write_jsonl(tmp_path / "big.jsonl", [chat_line(i) for i in range(3000)])
    with untouched(tmp_path / "out"):
        r = as_result(run_limited("prepare", "chat", "--input", src, "--output", tmp_path / "out", "--overwrite",
                                  cwd=tmp_path))
    assert_clean_failure(r, tmp_path / "out")
    assert_no_leftovers(tmp_path)


@pytest.mark.slow
def test_import_on_a_full_disk_names_the_checkpoint(tmp_path):
    src = hf_folder(tmp_path / "hf")
    r = as_result(run_limited("import", "gpt2", "--from", src, "--output", tmp_path / "ckpt", limit=256 * 1024,
                              cwd=tmp_path))
    assert_clean_failure(r, tmp_path / "ckpt", "larger than this process may write")
    assert not (tmp_path / "ckpt").exists()
    assert_no_leftovers(tmp_path)


@pytest.fixture
def tiny_tmpfs(tmp_path):
    """A 256 KiB tmpfs (a disk that really fills: ENOSPC); skipped where none can be mounted."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip("no tmpfs can be mounted here")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


@pytest.mark.slow
def test_prepare_onto_a_disk_that_fills(tiny_tmpfs, tmp_path, mypt):
    src = write_jsonl(tmp_path / "big.jsonl", [chat_line(i) for i in range(3000)])
    r = mypt("prepare", "chat", "--input", src, "--output", tiny_tmpfs / "out")
    assert_clean_failure(r, tiny_tmpfs / "out", "the disk is full")
    assert sorted(tiny_tmpfs.iterdir()) == []


# -- two quick ctrl+c ---------------------------------------------------------------------------

# exit 130, or ended by the second SIGINT itself (during the interpreter's own shutdown, where Python
# restores the default handler): a shell shows both as 130
INTERRUPTED = (130, -signal.SIGINT)


def interrupt_twice(cmd: list, cwd: Path, ready_text: str = "", ready_glob: str = "") -> subprocess.CompletedProcess:
    """Start `mypt CMD`; once stderr shows `ready_text` (or a file matches `ready_glob`), send SIGINT
    twice 50 ms apart, and collect the end. stdin stays open, so a chat waits for a turn."""
    proc = subprocess.Popen([sys.executable, "-m", "mypt_tui.cli", *map(str, cmd)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.PIPE, env=child_env(), cwd=cwd,
                            start_new_session=True)
    out: list[bytes] = []
    err: list[bytes] = []
    readers = [threading.Thread(target=lambda s=s, into=into: into.extend(iter(lambda: s.read(1), b"")), daemon=True)
               for s, into in ((proc.stdout, out), (proc.stderr, err))]
    for reader in readers:
        reader.start()
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if (ready_text and ready_text.encode() in b"".join(err)) or (ready_glob and any(cwd.glob(ready_glob))):
            break
        time.sleep(0.01)
    assert proc.poll() is None, f"it ended before it could be interrupted: {b''.join(err).decode()}"
    for _ in range(2):
        proc.send_signal(signal.SIGINT)
        time.sleep(0.05)
    proc.stdin.close()
    proc.wait(timeout=60)
    for reader in readers:
        reader.join(timeout=10)
    return subprocess.CompletedProcess([proc.pid, *cmd], proc.returncode, b"".join(out).decode(),
                                       b"".join(err).decode())


def test_two_quick_ctrl_c_during_prepare(tmp_path):
    src = write_jsonl(tmp_path / "big.jsonl", [chat_line(i) for i in range(12_000)])
    proc = interrupt_twice(["prepare", "chat", "--input", src, "--output", tmp_path / "out", "--workers", "2"],
                           tmp_path, ready_glob=".mypt-tmp-out.*/work-input/tokens.bin")
    r = as_result(proc)
    assert_no_leftovers(tmp_path)
    assert r.rc in INTERRUPTED and "interrupted" in r.err and "Traceback" not in r.err, r.err
    assert not (tmp_path / "out").exists()
    end = time.monotonic() + 3  # a worker checks every 0.5 s that its parent still runs
    while session_pids(proc.args[0]) and time.monotonic() < end:
        time.sleep(0.1)
    assert session_pids(proc.args[0]) == [], "worker processes outlived the interrupted prepare"


@pytest.mark.slow
@pytest.mark.parametrize("command", ["generate", "chat", "eval"])
def test_two_quick_ctrl_c_during_generation(tmp_path, tiny_ckpt, tiny_ds, command):
    args, ready = {
        "generate": (["generate", "--model", tiny_ckpt, "--prompt", "hi " * 200, "--max_new_tokens", "100000000"],
                     "were dropped to fit"),
        "chat": (["chat", "--model", tiny_ckpt, "--no-ui"], "chatting with"),
        "eval": (["eval", "--model", tiny_ckpt, "--dataset", tiny_ds, "--split", "train"], "evaluating"),
    }[command]
    for _ in range(5):  # the tiny model samples freely: its reply may end (a stop tag) before the signals come
        r = as_result(interrupt_twice(args, tmp_path, ready_text=ready))
        if not re.search(r"tokens in .* stopped at <", r.err):
            break
    assert r.rc in INTERRUPTED and "interrupted" in r.err and "Traceback" not in r.err, r.err


def test_the_helpers_here_can_fail():
    """as_nobody really drops the rights (a root test would otherwise read everything)."""
    probe = Path(tempfile.mkdtemp(dir="/tmp"))
    try:
        locked(probe / "f" if (probe / "f").write_text("x") else probe / "f")
        with as_nobody(), pytest.raises(PermissionError):
            (probe / "f").read_text()
    finally:
        shutil.rmtree(probe)
    assert stat.S_IMODE((Path(tempfile.gettempdir())).stat().st_mode) & 0o002
