"""`mypt audit RUN [--episode ID] [--verify]`: when did an episode train; is the audit intact."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mypt_tui.flags import flag


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("audit", help="query and verify a run's episode audit (audit.jsonl)",
                       description="Which steps trained an episode, and whether the audit chain and the "
                                   "epoch coverage are intact.")
    p.add_argument("run", help="a run folder, or a run name under checkpoints/")
    flag(p, "--episode", help="list the steps where this episode id trained")
    flag(p, "--verify", action="store_true",
         help="check the hash chain and that every completed epoch trained each eligible episode once")
    flag(p, "--checkpoints", default="checkpoints", help="where run names are looked up (default: checkpoints)")
    p.set_defaults(handler=run)


def resolve_run(name: str, root: str) -> Path:
    for cand in (Path(name), Path(root) / name):
        if (cand / "audit.jsonl").exists():
            return cand
    raise FileNotFoundError(f"{name}: no audit.jsonl there or under {root}/")


def run(args: argparse.Namespace) -> int:
    from engine.audit import find_episode, read_audit
    from engine.audit_verify import verify_run
    from engine.layout import AUDIT_FILE

    try:
        run_dir = resolve_run(args.run, args.checkpoints)
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    path = run_dir / AUDIT_FILE
    status = 0
    if args.episode is not None:
        hits = find_episode(path, args.episode)
        if not hits:
            print(f"episode {args.episode!r} never trained in {run_dir}", file=sys.stderr)
            status = 1
        else:
            print(f"episode {args.episode} trained {len(hits)} time(s) in {run_dir}:")
            print(f"{'step':>8} {'epoch':>6} {'position':>9} {'rank':>5} {'micro-batch':>12}")
            for h in hits:
                print(f"{h.step:>8} {h.epoch:>6} {h.position:>9} {h.rank:>5} {h.micro_batch:>12}")
    if args.verify:
        rep = verify_run(run_dir)
        for err in rep.errors:
            print(f"FAIL {err}")
        for note in rep.notes:
            print(f"note: {note}")
        verdict = "OK" if rep.ok else "FAILED"
        print(f"audit {verdict}: {rep.records} records, {rep.steps} step records, "
              f"{rep.epochs_checked} completed epoch(s) checked for coverage, "
              f"{rep.anchors_checked} anchor(s) checked")
        status = status or (0 if rep.ok else 1)
    if args.episode is None and not args.verify:
        kinds: dict[str, int] = {}
        last = 0
        for rec in read_audit(path):
            kinds[rec.get("kind", "?")] = kinds.get(rec.get("kind", "?"), 0) + 1
            step = rec.get("step", 0)
            last = max(last, step if isinstance(step, int) else 0)
        print(f"{path}: " + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) + f"; last step {last}")
        print("use --episode ID to find an episode, --verify to check the chain and coverage")
    return status
