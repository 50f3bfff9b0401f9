"""Suite-wide settings.

- Tiny models run fastest (and steadiest on a shared 2-core machine) on one torch thread; more
  threads only make the small per-step operations wait on each other.
- No test writes into the checkout: every test runs in its own temporary folder, and the app's
  demo files (which it prepares on first use) come from a copy made once per session.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    torch.set_num_threads(1)
    yield


@pytest.fixture(autouse=True, scope="session")
def demo_copy(tmp_path_factory):
    """The demo configs and gold sets copied out of the checkout; the app prepares them there."""
    from mypt_tui.services import demo

    root = tmp_path_factory.mktemp("installed") / "mypt"
    shutil.copytree(REPO / "configs" / "demo", root / "configs" / "demo")
    (root / "data").mkdir()
    for gold in (REPO / "data").glob("demo_*.jsonl"):
        shutil.copy(gold, root / "data" / gold.name)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(demo, "INSTALLED_ROOT", root)
        mp.setenv("MYPT_LOG_DIR", str(tmp_path_factory.mktemp("error-logs")))  # tracebacks of bugs
        yield root


@pytest.fixture(autouse=True)
def in_a_temporary_folder(tmp_path, monkeypatch):
    """Relative paths (checkpoints/, data/prepared/) land in the test's own folder (a subfolder, so
    that names a test makes in tmp_path never shadow a name looked up relative to the cwd)."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
