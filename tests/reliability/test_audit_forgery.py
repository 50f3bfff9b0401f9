"""Audit forgeries of every kind, against a tiny real run (trained once for the module, copied per
case): `mypt audit RUN --verify` must fail (exit 1) naming what is wrong, and the honest run pass.

Some forgeries rewrite audit.jsonl consistently (the chain recomputed): only the anchors the
trainer writes reveal those (each checkpoint's meta.json `audit: {records, hash}`, and
`audit_records`/`audit_hash` on the `checkpoint` and `done` events).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import Result, assert_clean_failure, assert_no_traceback


@pytest.fixture(scope="module")
def honest_run(tmp_path_factory) -> Path:
    from engine.config import TrainConfig
    from engine.train.job import TrainJob
    from engine.train.loop import run_training
    from helpers_app import tiny_dataset

    root = tmp_path_factory.mktemp("audit")
    cfg = TrainConfig(n_layer=1, n_embd=16, n_head=2, block_size=96, dropout=0.0, learning_rate=3e-3, batch_size=4,
                      max_iters=12, warmup_iters=2, eval_interval=6, eval_iters=1, save_every=6, device="cpu",
                      precision="fp32", batching="pack", episode_min_tokens=4, log_interval=5)
    run_training(TrainJob(config=cfg, dataset=tiny_dataset(root / "data"), output=root / "run"))
    return root / "run"


@pytest.fixture
def run(honest_run, tmp_path) -> Path:
    return Path(shutil.copytree(honest_run, tmp_path / "run"))


def lines(run: Path) -> list[str]:
    return (run / "audit.jsonl").read_text().splitlines()


def records(run: Path) -> list[dict]:
    return [json.loads(line) for line in lines(run)]


def save(run: Path, recs: list[dict], rechain: bool = True) -> None:
    """Write records back; with `rechain` the forger recomputes every prev and hash (a valid chain)."""
    from engine.audit import GENESIS, digest

    prev = GENESIS
    for rec in recs:
        if rechain:
            rec["prev"] = prev
            rec["hash"] = digest(rec)
        prev = rec.get("hash", prev)
    (run / "audit.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))


def steps(recs: list[dict]) -> list[dict]:
    return [r for r in recs if r["kind"] == "step"]


def append_step(run: Path, step_offset: int) -> None:
    recs = records(run)
    last = steps(recs)[-1]
    recs.append({**json.loads(json.dumps(last)), "step": last["step"] + step_offset})
    save(run, recs)


def swap_episodes(run: Path) -> None:
    recs = records(run)
    mb = steps(recs)[2]["micro_batches"][0]
    mb["episodes"][0], mb["episodes"][1] = mb["episodes"][1], mb["episodes"][0]
    mb["hashes"][0], mb["hashes"][1] = mb["hashes"][1], mb["hashes"][0]
    save(run, recs)


def swap_steps(run: Path) -> None:
    recs = records(run)
    a, b = steps(recs)[1], steps(recs)[2]
    a["micro_batches"], b["micro_batches"] = b["micro_batches"], a["micro_batches"]
    save(run, recs)


def edit(run: Path, rechain: bool, **changes) -> None:
    recs = records(run)
    steps(recs)[4].update(changes)
    save(run, recs, rechain=rechain)


def replace_episode(run: Path) -> None:
    """Claim another episode trained at step 5 (chain recomputed)."""
    recs = records(run)
    mb = steps(recs)[4]["micro_batches"][0]
    mb["episodes"][0] = "ep999"
    save(run, recs)


def retype(run: Path, **changes) -> None:
    recs = records(run)
    target = steps(recs)[3]
    for key, value in changes.items():
        if key.startswith("mb_"):
            target["micro_batches"][0][key[3:]] = value
        else:
            target[key] = value
    save(run, recs)


def write_lines(run: Path, new: list[str | bytes]) -> None:
    (run / "audit.jsonl").write_bytes(b"".join((x if isinstance(x, bytes) else x.encode()) + b"\n" for x in new))


def cut_tail_and_events(run: Path) -> None:
    """Remove the last steps from the audit and from events.jsonl alike (the checkpoints remain)."""
    write_lines(run, lines(run)[:-4])
    kept = [e for e in (run / "events.jsonl").read_text().splitlines() if json.loads(e)["step"] <= 9]
    (run / "events.jsonl").write_text("".join(e + "\n" for e in kept))


def forge_epoch_end(run: Path) -> None:
    """An epoch_end that names another episode as dropped, consistently chained."""
    recs = records(run)
    recs[-1]["dropped"] = recs[-1]["dropped"][:1]
    recs[-1]["dropped"].append("ep999")
    save(run, recs)


DEEP = "[" * 100_000 + "]" * 100_000
# (id, forgery, what a FAIL line says)
FORGERIES = [
    ("appended-step-after-the-end", lambda r: append_step(r, 1), "records were added after the end"),
    ("appended-copy-of-a-step", lambda r: append_step(r, 0), "step 12: the audit's episodes differ"),
    ("reordered-episodes-chain-recomputed", swap_episodes, "step 3: the audit's episodes differ"),
    ("reordered-steps-chain-recomputed", swap_steps, "step 2: the audit's episodes differ"),
    ("replaced-episode-chain-recomputed", replace_episode, "step 5: the audit's episodes differ"),
    ("edited-counts-chain-recomputed", lambda r: edit(r, True, tokens=1, supervised=1),
     "step 5: the audit's tokens and supervised tokens"),
    ("edited-record", lambda r: edit(r, False, tokens=1), "line 6 (step 5): record was modified"),
    ("cut-tail", lambda r: write_lines(r, lines(r)[:-3]), "steps missing from the audit: 11-12"),
    ("emptied-file", lambda r: write_lines(r, []), "the audit is empty"),
    ("missing-start-record", lambda r: write_lines(r, lines(r)[1:]), "line 1: the first record must be"),
    ("missing-start-chain-recomputed", lambda r: save(r, records(r)[1:]), "the first record must be the run's start"),
    ("deleted-middle-record", lambda r: write_lines(r, lines(r)[:5] + lines(r)[6:]), "chain broken"),
    ("duplicated-record", lambda r: write_lines(r, lines(r)[:5] + lines(r)[4:]), "chain broken"),
    ("invalid-json-line", lambda r: write_lines(r, lines(r)[:3] + ['{"kind": "step", '] + lines(r)[3:]),
     "line 4: not a record (not a JSON object)"),
    ("array-line", lambda r: write_lines(r, lines(r)[:3] + ["[1, 2]"] + lines(r)[3:]), "line 4: not a record"),
    ("deep-line", lambda r: write_lines(r, lines(r)[:3] + [DEEP] + lines(r)[3:]), "line 4: not a record"),
    ("binary-line", lambda r: write_lines(r, lines(r)[:3] + [b"\xff\xfe\x00garbage"] + lines(r)[3:]),
     "line 4: not a record"),
    ("truncated-last-line", lambda r: write_lines(r, lines(r)[:-1] + [lines(r)[-1][:40]]), "line 15: not a record"),
    ("step-as-text", lambda r: retype(r, step="4"),
     "line 5: not a record (step record with a wrong or missing 'step')"),
    ("micro-batches-number", lambda r: retype(r, micro_batches=5), "'micro_batches'"),
    ("epoch-as-list", lambda r: retype(r, mb_epoch=[1]), "'micro_batches.epoch'"),
    ("episodes-of-objects", lambda r: retype(r, mb_episodes=[{"id": 1}]), "'micro_batches.episodes'"),
    ("unknown-kind", lambda r: retype(r, kind=["step"]), "unknown kind ['step']"),
    ("forged-epoch-end-chain-recomputed", forge_epoch_end, "epoch 1: covered 35 distinct episodes"),
    ("audit-file-removed", lambda r: (r / "audit.jsonl").unlink(), None),
]
ANCHORED = [  # caught only by the anchors in meta.json and events (the trainer writes them next)
    ("cut-tail-and-events", cut_tail_and_events, "records were removed from the end"),
    ("edited-positions-chain-recomputed", lambda r: retype(r, mb_position=99), "is not the one it anchored"),
    ("edited-hashes-chain-recomputed", lambda r: retype(r, mb_hashes=["0" * 64] * 9), "is not the one it anchored"),
]


def verify(mypt, run: Path) -> Result:
    return mypt("audit", run, "--verify")


@pytest.mark.parametrize("case_id, forge, says", FORGERIES, ids=[c[0] for c in FORGERIES])
def test_a_forged_audit_fails_verification_naming_what_is_wrong(run, mypt, case_id, forge, says):
    forge(run)
    r = verify(mypt, run)
    if says is None:  # no audit at all: the command says so, as any error
        assert_clean_failure(r, "audit.jsonl")
        return
    assert_no_traceback(r)
    assert r.rc == 1 and "audit FAILED" in r.out, r.out
    assert any(line.startswith("FAIL ") and says in line for line in r.out.splitlines()), r.out


@pytest.mark.parametrize("case_id, forge, says", [pytest.param(*c, id=c[0]) for c in ANCHORED])
def test_a_consistent_rewrite_is_caught_by_the_anchors(run, mypt, case_id, forge, says):
    forge(run)
    r = verify(mypt, run)
    assert_no_traceback(r)
    assert r.rc == 1 and any(says in line for line in r.out.splitlines() if line.startswith("FAIL ")), r.out


def test_the_trainer_writes_the_anchors(honest_run):
    meta = json.loads((honest_run / "step_000012" / "meta.json").read_text())
    assert set(meta.get("audit", {})) == {"records", "hash"}
    done = [json.loads(e) for e in (honest_run / "events.jsonl").read_text().splitlines()][-1]
    assert done["type"] == "done" and done.get("audit_records") == len(lines(honest_run))


def test_a_forged_anchor_in_meta_json_is_caught(run, mypt):
    meta_file = run / "step_000006" / "meta.json"
    meta = json.loads(meta_file.read_text())
    meta["audit"]["hash"] = "f" * 64
    meta_file.write_text(json.dumps(meta))
    assert verify(mypt, run).rc == 1


def test_the_honest_run_passes(run, mypt):
    r = verify(mypt, run)
    assert r.rc == 0 and "audit OK" in r.out, r.out


@pytest.mark.parametrize("case_id", ["step-as-text", "episodes-of-objects", "deep-line", "unknown-kind"])
def test_queries_on_a_forged_audit_never_crash(run, mypt, case_id):
    dict((c[0], c[1]) for c in FORGERIES)[case_id](run)
    for args in ([], ["--episode", "ep001"]):
        r = mypt("audit", run, *args)
        assert_no_traceback(r)
        assert r.rc in (0, 1)


def test_damaged_events_and_meta_never_crash_the_verifier(run, mypt):
    events = run / "events.jsonl"
    events.write_text(events.read_text() + '{"type": "step", "step": "x", "episodes": 5}\n[1]\n' + DEEP + "\n")
    (run / "step_000006" / "meta.json").write_text('{"format": "mypt_checkpoint_v1", "step": [6], "audit": {}}')
    r = verify(mypt, run)
    assert_no_traceback(r)
    assert r.rc == 1 and "step_000006/meta.json: its step is damaged" in r.out, r.out
