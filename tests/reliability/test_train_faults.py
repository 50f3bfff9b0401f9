"""Faults during training: a SIGKILL during a step, an eval, a checkpoint save or an audit write,
each resumed to bit-identical weights; a file-size limit (a full disk) and a read-only run folder
stopping the run with one line naming the path, the last checkpoint intact, no traceback."""

from __future__ import annotations

import hashlib
import os
import resource
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from engine.audit_verify import verify_run
from helpers_data import prepared, varied

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
CONFIG = """n_layer = 2
n_embd = 64
n_head = 2
block_size = 96
dropout = 0.0
learning_rate = 3e-3
batch_size = 4
max_iters = 12
warmup_iters = 2
eval_interval = 4
eval_iters = 1
save_every = 4
device = "cpu"
precision = "fp32"
batching = "pack"
episode_min_tokens = 4
"""

# The fault, injected into the real `mypt train --no-ui` by wrapping one engine function: it runs,
# then the process kills itself at the chosen step (or before the function returns, for a save).
DRIVER = textwrap.dedent("""
    import os, signal, sys
    import torch
    torch.set_num_threads(1)
    where, at = sys.argv[1], int(sys.argv[2])
    import engine.train.loop as loop, engine.checkpoint.native as native, engine.audit as audit
    def die():
        os.kill(os.getpid(), signal.SIGKILL)
    if where == "step":
        orig = loop.forward_backward
        def fb(run, batches, sup):
            loss = orig(run, batches, sup)
            if run.progress.step == at: die()  # gradients made, optimizer not stepped
            return loss
        loop.forward_backward = fb
    elif where == "eval":
        orig_eval = loop.evaluate
        def ev(run, out, step):
            if step == at: die()
            return orig_eval(run, out, step)
        loop.evaluate = ev
    elif where == "save":
        orig_save = native.replace_folder
        def rep(tmp, path, aside):
            if path.name == f"step_{at:06d}": die()  # weights and state written, not yet in place
            return orig_save(tmp, path, aside)
        native.replace_folder = rep
    elif where == "audit":
        orig_write = audit.AuditWriter.write
        def write(self, kind, step, **fields):
            if kind == "step" and step == at:
                self._fh.write('{"kind": "step", "step": %d, "half' % step); self._fh.flush(); die()
            return orig_write(self, kind, step, **fields)
        audit.AuditWriter.write = write
    from mypt_tui.cli.main import main
    sys.exit(main(sys.argv[3:]))
""")


def mypt(*args: str, driver: tuple[str, int] | None = None, limit_bytes: int | None = None,
         cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}

    def child() -> None:
        if limit_bytes is not None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a kill, as a full disk gives ENOSPC
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    cmd = [sys.executable, "-c", DRIVER, *(map(str, driver) if driver else ("none", "0")), *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, preexec_fn=child, timeout=300)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("faults")
    prepared(tmp, varied(40), tokenization="char", val_split=0.2, seed=5)
    (tmp / "c.toml").write_text(CONFIG)
    base = mypt("train", "--no-ui", "--config", "c.toml", "--dataset", "out", "--output", "base", cwd=tmp)
    assert base.returncode == 0, base.stderr
    return tmp


def train_args(run: str, *more: str) -> list[str]:
    return ["train", "--no-ui", "--config", "c.toml", "--dataset", "out", "--output", run, *more]


@pytest.mark.parametrize("where, at", [("step", 6), ("eval", 8), ("save", 8), ("audit", 10)])
def test_sigkill_anywhere_resumes_to_identical_weights(setup, where, at):
    tmp = setup
    run = f"killed_{where}"
    killed = mypt(*train_args(run), driver=(where, at), cwd=tmp)
    assert killed.returncode == -signal.SIGKILL
    resumed = mypt("train", "--no-ui", "--resume", "--output", run, cwd=tmp)
    assert resumed.returncode == 0, resumed.stderr
    final = "step_000012/model.safetensors"
    assert digest(tmp / "checkpoints" / run / final) == digest(tmp / "checkpoints" / "base" / final)
    rep = verify_run(tmp / "checkpoints" / run)
    assert rep.ok, rep.errors


def test_a_full_disk_stops_the_run_naming_the_file_and_keeps_the_last_checkpoint(setup):
    tmp = setup
    run = tmp / "checkpoints" / "full"
    first = mypt(*train_args("full", "--max_iters", "4"), cwd=tmp)
    assert first.returncode == 0, first.stderr
    kept = {p.name: digest(p) for p in (run / "step_000004").iterdir()}
    limit = (run / "step_000004" / "model.safetensors").stat().st_size // 2  # the next save cannot fit
    full = mypt("train", "--no-ui", "--resume", "--output", "full", "--max_iters", "8", limit_bytes=limit, cwd=tmp)
    assert full.returncode != 0
    assert "Traceback" not in full.stderr
    error = [line for line in full.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and "checkpoints/full/" in error[0] and "ulimit -f" in error[0], full.stderr
    assert {p.name: digest(p) for p in (run / "step_000004").iterdir()} == kept
    assert not any(p.name.startswith(".mypt-tmp") for p in run.iterdir())


def test_a_read_only_run_folder_stops_the_run_naming_it(setup):
    tmp = setup
    run = tmp / "checkpoints" / "readonly"
    first = mypt(*train_args("readonly", "--max_iters", "4"), cwd=tmp)
    assert first.returncode == 0, first.stderr
    kept = {p.name: digest(p) for p in (run / "step_000004").iterdir()}
    if os.geteuid() == 0:
        if subprocess.run(["mount", "--bind", str(run), str(run)], capture_output=True).returncode != 0:
            pytest.skip("a read-only folder needs a bind mount, which this machine refuses")
        subprocess.run(["mount", "-o", "remount,ro,bind", str(run)], check=True)
    else:
        os.chmod(run, 0o555)
    try:
        ro = mypt("train", "--no-ui", "--resume", "--output", "readonly", "--max_iters", "8", cwd=tmp)
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", str(run)], check=True)
        else:
            os.chmod(run, 0o755)
    assert ro.returncode != 0 and "Traceback" not in ro.stderr
    error = [line for line in ro.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and str(run.name) in error[0], ro.stderr
    assert {p.name: digest(p) for p in (run / "step_000004").iterdir()} == kept
    shutil.rmtree(run, ignore_errors=True)


@pytest.fixture(scope="module")
def stream_setup(tmp_path_factory):
    """A token-stream dataset from `mypt prepare pretrain`, and an uninterrupted pretraining run."""
    tmp = tmp_path_factory.mktemp("stream_faults")
    (tmp / "corpus.txt").write_text("".join(f"Document {k}: the {c} fox jumps over the lazy dog.\n\n"
                                            for k in range(150) for c in ("red", "brown")))
    done = mypt("prepare", "pretrain", "--input", "corpus.txt", "--output_dir", "stream", "--tokenization", "char",
                "--tokens_per_shard", "4000", cwd=tmp)
    assert done.returncode == 0, done.stderr
    (tmp / "c.toml").write_text(CONFIG.replace('batching = "pack"\n', "").replace("block_size = 96", "block_size = 64"))
    base = mypt("train", "--no-ui", "--config", "c.toml", "--dataset", "stream", "--output", "base", cwd=tmp)
    assert base.returncode == 0, base.stderr
    return tmp


def test_pretraining_killed_mid_step_resumes_to_identical_weights(stream_setup):
    tmp = stream_setup
    killed = mypt("train", "--no-ui", "--config", "c.toml", "--dataset", "stream", "--output", "killed",
                  driver=("step", 6), cwd=tmp)
    assert killed.returncode == -signal.SIGKILL
    resumed = mypt("train", "--no-ui", "--resume", "--output", "killed", cwd=tmp)
    assert resumed.returncode == 0, resumed.stderr
    final = "step_000012/model.safetensors"
    assert digest(tmp / "checkpoints" / "killed" / final) == digest(tmp / "checkpoints" / "base" / final)
    rep = verify_run(tmp / "checkpoints" / "killed")
    assert rep.ok, rep.errors
