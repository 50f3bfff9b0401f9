"""`mypt train` under torchrun: two CPU ranks (gloo), disjoint shares, one audit, full coverage."""

import json
import subprocess
import sys

import pytest

from engine.audit_verify import verify_audit
from helpers_data import chat, prepared

pytestmark = pytest.mark.slow

CONFIG = """
n_layer = 2
n_embd = 32
n_head = 2
block_size = 96
dropout = 0.0
learning_rate = 3e-3
batch_size = 2
max_iters = 8
warmup_iters = 1
eval_interval = 4
eval_iters = 1
save_every = 4
device = "cpu"
precision = "fp32"
batching = "pad"
episode_min_tokens = 4
"""


def test_two_ranks_train_disjoint_shares_and_cover_each_epoch(tmp_path):
    prepared(tmp_path, [chat(f"e{i:02d}", f"Say {i}.", f"{i} " * (1 + i % 3)) for i in range(20)],
             tokenization="char", val_split=0.2, seed=1)
    (tmp_path / "c.toml").write_text(CONFIG)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "mypt_tui.cli", "train", "--no-ui", "--config", str(tmp_path / "c.toml"),
           "--dataset", str(tmp_path / "out"), "--output", str(tmp_path / "run")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    records = [json.loads(line) for line in (tmp_path / "run" / "audit.jsonl").read_text().splitlines()]
    steps = [r for r in records if r["kind"] == "step"]
    assert len(steps) == 16 and {r["rank"] for r in steps} == {0, 1}  # 8 steps x 2 ranks
    for step in range(1, 9):
        mine = [r for r in steps if r["step"] == step]
        a, b = (set(r["micro_batches"][0]["episodes"]) for r in mine)
        assert len(a) == len(b) == 2 and not a & b
    report = verify_audit(tmp_path / "run" / "audit.jsonl")
    assert report.ok and report.epochs_checked == 2, report.errors  # 16 episodes / 4 a step = 4 steps an epoch
    events = [json.loads(line) for line in (tmp_path / "run" / "events.jsonl").read_text().splitlines()]
    assert [e["type"] for e in events].count("run_start") == 1  # only rank 0 writes events
    assert [e["step"] for e in events if e["type"] == "gate"] == [0, 4, 8]  # rank 0 chose; both ranks went on
    assert [e["step"] for e in events if e["type"] == "probe" and not e["skipped"]][:1] == [4]
    assert (tmp_path / "run" / "step_000008" / "model.safetensors").exists()
