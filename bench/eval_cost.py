"""What evaluation while training costs on the demo, and whether the probes agree with `mypt eval`.

    .venv/bin/python bench/eval_cost.py [--workdir DIR] [--max_iters N]

Prepares both demo gold sets into DIR/data/prepared (the demo chat config evaluates on the tool
set), trains `configs/demo/chat.toml` from scratch with its defaults (eval sets and probes on)
into DIR/checkpoints/eval_cost, and prints:
- the run's wall time and the shares of it spent in evals (loss passes) and in probes, from the
  run's report card (report.json), with the probe rounds run and skipped;
- the probes' exact match at the last probed step against `mypt eval`'s scoring function
  (engine.eval.evaluate) on the checkpoint of that step: turn by turn on the probed episodes
  (they must agree), and on the whole split for scale.
Run it on an otherwise idle machine for absolute figures; the load is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def prepare_demos(workdir: Path) -> None:
    from engine.prepare import PrepareOptions, prepare

    for kind in ("chat", "tool"):
        out = workdir / "data" / "prepared" / f"demo_{kind}"
        if not out.exists():
            prepare(PrepareOptions(input=ROOT / "data" / f"demo_{kind}.jsonl", output=out, kind=kind,
                                   tokenization="gpt2", val_file=ROOT / "data" / f"demo_{kind}_heldout.jsonl"))


def train(workdir: Path, max_iters: int | None) -> tuple[Path, float]:
    from engine.train.job import TrainRequest, build_job
    from engine.train.loop import run_training

    overrides = {"max_iters": max_iters} if max_iters else {}
    job = build_job(TrainRequest(output="eval_cost", dataset=str(workdir / "data/prepared/demo_chat"),
                                 config=str(ROOT / "configs/demo/chat.toml"), init="scratch", overwrite=True,
                                 checkpoints=str(workdir / "checkpoints"), overrides=overrides))
    t0 = time.time()
    result = run_training(job)
    return result.run_dir, time.time() - t0


def agreement(run: Path, workdir: Path, report: dict) -> list[str]:
    """Probe verdicts at the last probed step that has a checkpoint, against engine.eval.evaluate."""
    from engine.checkpoint import load_model
    from engine.dataset import open_dataset
    from engine.eval import EvalOptions, evaluate

    probed = [r for r in report["evals"] if r.get("probe") and not r["probe"]["skipped"]
              and (run / f"step_{r['step']:06d}").exists()]
    if not probed:
        return ["no probed step has a checkpoint to compare with"]
    step = probed[-1]["step"]
    replies = _replies_at(run, step)
    model, _ = load_model(run / f"step_{step:06d}")
    lines = [f"probes at step {step} against mypt eval's scoring (engine.eval.evaluate) on step_{step:06d}:"]
    paths = {"val": workdir / "data/prepared/demo_chat", "tool": workdir / "data/prepared/demo_tool"}
    for name, path in paths.items():
        ds = open_dataset(path)
        full = evaluate(model, ds.tokenizer(), ds.split("val"), EvalOptions())
        by_turn = {(t.episode, t.turn): t.score.exact for t in full.turns}
        mine = [r for r in replies if r["set"] == name]
        same = sum(by_turn.get((r["episode"], r["turn"])) == r["exact"] for r in mine)
        probe_em = sum(r["exact"] for r in mine) / len(mine) if mine else float("nan")
        eval_em = sum(by_turn[(r["episode"], r["turn"])] for r in mine) / len(mine) if mine else float("nan")
        lines.append(f"  {name:5s} {len(mine)} probed turns: probe exact {probe_em:.1%}, mypt eval on the same "
                     f"turns {eval_em:.1%}, verdicts equal on {same}/{len(mine)}; whole split "
                     f"({full.overall.turns} turns) {full.overall.exact_match:.1%}")
    return lines


def _replies_at(run: Path, step: int) -> list[dict]:
    from engine.events import Probe, read_events

    for ev in read_events(run / "events.jsonl"):
        if isinstance(ev, Probe) and ev.step == step and not ev.skipped:
            return ev.replies
    return []


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", default=".", help="where data/prepared and checkpoints/ go (default: .)")
    ap.add_argument("--max_iters", type=int, default=None, help="override the demo's 300 steps (a quick look)")
    args = ap.parse_args()
    workdir = Path(args.workdir).resolve()
    os.chdir(workdir)
    import torch

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs; load {load()}")
    prepare_demos(workdir)
    run, wall = train(workdir, args.max_iters)
    report = json.loads((run / "report.json").read_text())
    c = report["cost"]
    print(f"demo chat run: {wall:.0f} s wall, {c['run_seconds']:.0f} s of training loop; load after {load()}")
    print(f"  evals (loss passes, {len(report['evals'])} evals): {c['eval_seconds']:.1f} s = {c['eval_share']:.1%}")
    print(f"  probes ({c['probe_rounds']} rounds; {c['probe_rounds_skipped']} skipped: the budget, or step 0 "
          "from scratch): "
          f"{c['probe_seconds']:.1f} s = {c['probe_share']:.1%} (budget 10%)")
    print(f"  together: {c['eval_share'] + c['probe_share']:.1%} of the run")
    best = report["best"]
    if best:
        print(f"  best/ = step {best['step']} ({best['reason']}); exact match {best['exact_match']:.1%}, "
              f"format {best['format_compliance']:.1%} over its probed turns")
    for line in agreement(run, workdir, report):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
