"""The audit chain: verify passes on an honest log and catches edits, removals and bad coverage."""

import json

from engine.audit import AuditWriter, find_episode, ids_digest
from engine.audit_verify import verify_audit

IDS = ["a", "b", "c", "d"]


def write_two_epochs(path, epoch1=("c", "a", "d", "b")):
    w = AuditWriter(path)
    w.write("start", 0, eligible=4, eligible_sha256=ids_digest(IDS))
    step = 0
    for epoch, order in enumerate((("b", "d", "a", "c"), epoch1)):
        for pos in (0, 2):
            step += 1
            mb = {"epoch": epoch, "position": pos, "episodes": list(order[pos:pos + 2]), "hashes": ["h", "h"],
                  "tokens": 10, "supervised": 4}
            w.write("step", step, rank=0, epoch=epoch, micro_batches=[mb], tokens=10, supervised=4)
        w.write("epoch_end", step, epoch=epoch, dropped=[])
    w.close()


def test_an_honest_audit_verifies(tmp_path):
    p = tmp_path / "audit.jsonl"
    write_two_epochs(p)
    rep = verify_audit(p)
    assert rep.ok, rep.errors
    assert (rep.steps, rep.epochs_checked) == (4, 2)


def test_find_episode_lists_its_steps(tmp_path):
    p = tmp_path / "audit.jsonl"
    write_two_epochs(p)
    hits = find_episode(p, "a")
    assert [(h.step, h.epoch, h.position) for h in hits] == [(2, 0, 2), (3, 1, 0)]
    assert find_episode(p, "zzz") == []


def test_an_edited_record_is_caught(tmp_path):
    p = tmp_path / "audit.jsonl"
    write_two_epochs(p)
    lines = p.read_text().splitlines()
    rec = json.loads(lines[2])
    rec["micro_batches"][0]["episodes"] = ["x", "y"]
    lines[2] = json.dumps(rec)
    p.write_text("\n".join(lines) + "\n")
    rep = verify_audit(p)
    assert not rep.ok
    assert "line 3 (step 2): record was modified (hash mismatch)" in rep.errors


def test_a_removed_record_breaks_the_chain(tmp_path):
    p = tmp_path / "audit.jsonl"
    write_two_epochs(p)
    lines = p.read_text().splitlines()
    del lines[3]
    p.write_text("\n".join(lines) + "\n")
    assert any("chain broken" in e for e in verify_audit(p).errors)


def test_an_epoch_that_repeats_an_episode_fails_coverage(tmp_path):
    p = tmp_path / "audit.jsonl"
    write_two_epochs(p, epoch1=("c", "a", "c", "b"))
    errors = verify_audit(p).errors
    assert "epoch 1: episodes seen more than once: c" in errors
    assert "epoch 1: covered 3 distinct episodes, the run has 4 eligible" in errors


def test_resume_cuts_records_after_the_resumed_step(tmp_path):
    p = tmp_path / "audit.jsonl"
    write_two_epochs(p)
    w = AuditWriter(p, resume_step=2)
    w.write("resume", 2)
    w.close()
    kept = [(r["kind"], r["step"]) for r in map(json.loads, p.read_text().splitlines())]
    assert kept == [("start", 0), ("step", 1), ("step", 2), ("epoch_end", 2), ("resume", 2)]
    assert verify_audit(p).ok
