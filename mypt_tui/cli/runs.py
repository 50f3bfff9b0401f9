"""`mypt runs`: every run under checkpoints/ with its status and last metrics (what the Runs screen shows)."""

from __future__ import annotations

import argparse
import json
import sys

from mypt_tui.flags import flag


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("runs", help="list the runs under checkpoints/ with status and last metrics",
                       description="Every run folder under the checkpoints root, newest first: status (running, "
                                   "completed, stopped, failed, interrupted), step, last train and val loss, best "
                                   "val loss, and the best checkpoint's exact match and format on the probes. An "
                                   "interrupted run continues with `mypt train --resume --output RUN`.")
    flag(p, "--checkpoints", default="checkpoints", help="the folder holding the runs (default: checkpoints)")
    flag(p, "--json", action="store_true", help="one JSON object per run on stdout, for scripts")
    p.set_defaults(handler=run)


def table(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    fmt = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    return [fmt(header), *(fmt(r) for r in rows)]


def run(args: argparse.Namespace) -> int:
    from engine.events import json_safe
    from engine.runs import list_runs
    from mypt_tui.present.run_rows import COLUMNS, cells

    runs = list_runs(args.checkpoints)
    if args.json:
        for r in runs:
            print(json.dumps(json_safe({
                "name": r.name, "path": str(r.path), "status": r.status, "step": r.step, "max_iters": r.max_iters,
                "loss": r.loss, "val_loss": r.val_loss, "best_val_loss": r.best_val_loss, "updated": r.updated,
                "pid": r.pid, "message": r.message, "best_step": r.best_step, "best_exact_match": r.best_exact_match,
                "best_format": r.best_format, "report": r.report}), ensure_ascii=False))
        return 0
    if not runs:
        print(f"no runs in {args.checkpoints}/", file=sys.stderr)
        return 0
    for line in table([cells(r) for r in runs], tuple(c.upper() for c in COLUMNS)):
        print(line)
    for r in runs:
        if r.status == "interrupted":
            print(f"{r.name}: interrupted; continue with `mypt train --resume --output {r.path}`", file=sys.stderr)
        elif r.status == "failed" and r.message:
            print(f"{r.name}: failed: {r.message.splitlines()[0]}", file=sys.stderr)
    return 0
