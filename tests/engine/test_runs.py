"""Listing runs: a rescan reads only what a live run appended to its events.jsonl since the last
scan, and answers exactly what reading the whole file answers (a resume, a half-written line, a
run folder replaced by a new run of the same name)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from engine.events import Done, Eval, RunStart, Step
from engine.runs import RunScanner, run_info


def run_start(run: Path, step: int = 0, resumed: bool = False) -> RunStart:
    return RunStart(step=step, run_dir=str(run), max_iters=100, config={}, model={}, preflight={}, resumed=resumed,
                    pid=0)


def step(n: int, loss: float) -> Step:
    return Step(step=n, loss=loss, lr=1e-3, grad_norm=1.0, tokens=10, supervised=5, tokens_per_s=1.0,
                supervised_per_s=1.0, epoch=0, epoch_progress=0.1, elapsed=float(n), eta_s=1.0)


def append(run: Path, *events, partial: str = "") -> None:
    run.mkdir(parents=True, exist_ok=True)
    with open(run / "events.jsonl", "a", encoding="utf-8") as fh:
        fh.write("".join(json.dumps(e.to_dict()) + "\n" for e in events) + partial)


def row(info) -> tuple:
    return (info.status, info.step, info.max_iters, info.loss, info.val_loss, info.best_val_loss, info.best_step)


def test_a_rescan_folds_only_what_was_appended_and_agrees_with_a_whole_read(tmp_path):
    run = tmp_path / "runs" / "live"
    scanner = RunScanner()
    append(run, run_start(run), *(step(n, 5.0 - n / 10) for n in range(1, 11)))
    assert row(scanner.scan(tmp_path / "runs")[0]) == row(run_info(run))

    # what the first scan read is never parsed again: spoil it in place (same size), then append
    text = (run / "events.jsonl").read_bytes()
    first_line = text.index(b"\n")
    (run / "events.jsonl").write_bytes(b" " * first_line + text[first_line:])
    evals = Eval(step=10, val_loss=2.5, train_loss=4.0, val_accuracy=0.5, val_tokens=10)
    append(run, evals, step(11, 3.0), partial='{"type": "step", "step": 12, "lo')
    info = scanner.scan(tmp_path / "runs")[0]
    assert (info.max_iters, info.step, info.loss, info.val_loss, info.best_val_loss) == (100, 11, 3.0, 2.5, 2.5)

    # the half-written line is read once it is whole; a resume's steps replace the redone ones
    with open(run / "events.jsonl", "a", encoding="utf-8") as fh:
        fh.write('ss": 2.9}\n')
    append(run, run_start(run, step=10, resumed=True), step(11, 2.8), Done(step=11, reason="completed", elapsed=2.0))
    info = scanner.scan(tmp_path / "runs")[0]
    assert (info.status, info.step, info.loss) == ("completed", 11, 2.8)


def test_a_run_replaced_by_a_new_one_of_the_same_name_is_read_afresh(tmp_path):
    run = tmp_path / "runs" / "r"
    scanner = RunScanner()
    append(run, run_start(run), *(step(n, 4.0) for n in range(1, 30)))
    assert scanner.scan(tmp_path / "runs")[0].step == 29
    shutil.rmtree(run)
    append(run, run_start(run), step(1, 9.0))
    assert row(scanner.scan(tmp_path / "runs")[0]) == row(run_info(run))
    assert scanner.scan(tmp_path / "runs")[0].loss == 9.0

    # cut in place (same file, shorter): read from the start as well
    (run / "events.jsonl").write_text(json.dumps(run_start(run).to_dict()) + "\n")
    os.utime(run / "events.jsonl", ns=(1, 1))
    assert (scanner.scan(tmp_path / "runs")[0].step, scanner.scan(tmp_path / "runs")[0].loss) == (0, None)
