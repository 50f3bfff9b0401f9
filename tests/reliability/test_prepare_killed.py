"""A prepare killed with SIGKILL at several moments (slow): no worker process outlives it, no
output appears half-written, an old output survives a killed --overwrite byte for byte, and the
next prepare gives exactly the bytes of a prepare that was never interrupted."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import FilesLost, child_env, session_pids, tree_state, untouched

pytestmark = pytest.mark.slow

EPISODES = 30_000


def write_big(path: Path, n: int = EPISODES, tag: str = "e") -> Path:
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(n):
            fh.write(json.dumps({"episode_id": f"{tag}{i}", "messages": [
                {"role": "user", "content": f"Question {i}: what comes after {i}?"},
                {"role": "assistant", "content": f"{i + 1} comes after {i}."}]}) + "\n")
    return path


def prepare_cmd(src: Path, out: Path, *flags: str) -> list[str]:
    return [sys.executable, "-m", "mypt_tui.cli", "prepare", "chat", "--input", str(src), "--output", str(out),
            "--workers", "2", *flags]


def dataset_bytes(out: Path) -> dict[str, str]:
    """A dataset's files and hashes; the metadata without its creation time."""
    state = tree_state(out)
    meta = json.loads((out / "dataset_metadata.json").read_text())
    meta.pop("created_at", None)
    state["dataset_metadata.json"] = json.dumps(meta, sort_keys=True)
    return state


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The big input and the dataset an uninterrupted prepare makes of it."""
    folder = tmp_path_factory.mktemp("big")
    src = write_big(folder / "big.jsonl")
    subprocess.run(prepare_cmd(src, folder / "ref"), check=True, capture_output=True, env=child_env())
    return src, dataset_bytes(folder / "ref")


def temp_of(out: Path) -> Path | None:
    found = sorted(out.parent.glob(f".mypt-tmp-{out.name}.*"))
    return found[0] if found else None


MOMENTS = {  # when to kill: a condition on the prepare's temp folder
    "starting": lambda tmp: True,
    "pass-1": lambda tmp: tmp is not None and (tmp / "work-input" / "episodes.jsonl").exists()
                          and (tmp / "work-input" / "episodes.jsonl").stat().st_size > 200_000,
    "pass-2": lambda tmp: tmp is not None and (tmp / "dataset" / "train" / "tokens.bin").exists(),
    "metadata": lambda tmp: tmp is not None and (tmp / "dataset" / "tokenizer_state.json").exists(),
}


def kill_when(cmd: list[str], out: Path, moment: str) -> None:
    """Start the prepare in a session of its own, SIGKILL it (the parent only) at the moment, and
    wait for every process of the session to end; fail naming any that outlives it."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=child_env(),
                            start_new_session=True)
    deadline = time.monotonic() + 60
    while not MOMENTS[moment](temp_of(out)):
        assert proc.poll() is None, f"the prepare ended before the moment {moment!r}"
        assert time.monotonic() < deadline, f"never reached {moment!r}"
        time.sleep(0.002)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    end = time.monotonic() + 5
    while session_pids(proc.pid) and time.monotonic() < end:
        time.sleep(0.1)
    left = session_pids(proc.pid)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, f"processes outlived the killed prepare: {left}"


@pytest.mark.parametrize("moment", list(MOMENTS))
def test_a_killed_prepare_leaves_no_output_and_the_rerun_gives_the_same_bytes(tmp_path, reference, moment):
    src, expected = reference
    out = tmp_path / "out"
    kill_when(prepare_cmd(src, out), out, moment)
    if out.exists():
        raise FilesLost(f"a killed prepare left an output at {out}: {sorted(tree_state(out))[:5]}")
    again = subprocess.run(prepare_cmd(src, out), capture_output=True, env=child_env())
    assert again.returncode == 0, again.stderr.decode()
    assert dataset_bytes(out) == expected
    assert temp_of(out) is None, "the rerun left the killed prepare's temp folder"


@pytest.mark.parametrize("moment", ["pass-1", "pass-2", "metadata"])
def test_an_old_output_survives_a_killed_overwrite(tmp_path, reference, moment):
    src, expected = reference
    out = tmp_path / "out"
    small = write_big(tmp_path / "small.jsonl", 50, tag="old")
    subprocess.run(prepare_cmd(small, out), check=True, capture_output=True, env=child_env())
    with untouched(out):
        kill_when(prepare_cmd(src, out, "--overwrite"), out, moment)
    again = subprocess.run(prepare_cmd(src, out, "--overwrite"), capture_output=True, env=child_env())
    assert again.returncode == 0, again.stderr.decode()
    assert dataset_bytes(out) == expected and temp_of(out) is None
    shutil.rmtree(out)
