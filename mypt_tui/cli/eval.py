"""`mypt eval --model M --dataset D`: score a checkpoint on held-out episodes, per skill family.

Every assistant turn is generated greedily from the gold conversation before it and scored:
exact match with the gold answer (whitespace trimmed), format compliance (closes with
</myPT_assistant>, no stray tags), tool-call validity where the gold turn calls a tool, plus the
teacher-forced masked loss and token accuracy. `--model A --model B` scores two checkpoints on
the same episodes side by side (base vs fine-tuned) with the difference B - A; a base model
(pretrained, never fine-tuned on chat) is asked in plain text, and the header says so.

Progress goes to stderr, the table (or with --json one JSON object) to stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Callable

from mypt_tui.present.eval_table import compare_table, describe, failure_lines, single_table

SCHEMA = "mypt_eval_v1"  # the --json layout (documented in the README)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval", help="score checkpoints on held-out episodes (exact match, format, tool calls, loss)",
        description="Generate every assistant turn of the held-out episodes greedily from the gold "
                    "conversation before it and score it: exact match, format compliance, tool-call "
                    "validity, masked loss and token accuracy, per skill family and overall. Give "
                    "--model twice to compare two checkpoints on the same episodes.")
    p.add_argument("--model", "--model_name", "--model-name", dest="models", action="append", required=True,
                   metavar="MODEL", help="checkpoint name under --checkpoints, a path or a run folder (its "
                                         "newest step); give it twice to compare (A, then B)")
    p.add_argument("--dataset", required=True, help="prepared dataset folder (mypt prepare)")
    p.add_argument("--split", choices=("val", "train"), default="val", help="the split to score (default val)")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="score only the first N episodes")
    p.add_argument("--json", action="store_true", help="print one JSON object (schema mypt_eval_v1) instead "
                                                       "of tables")
    p.add_argument("--failures", type=int, default=0, metavar="N",
                   help="also show up to N failed turns per model (gold vs generated, and why)")
    p.add_argument("--device", default="auto", help="auto (cuda when available), cpu, cuda, cuda:N, mps")
    p.add_argument("--checkpoints", default="checkpoints", help="folder that --model names are looked up in")
    p.set_defaults(handler=run)


# -- progress ------------------------------------------------------------------------------------

def progress_printer(label: str, stream=None) -> Callable:
    """On a terminal one line rewritten in place; otherwise a line per quarter of each phase."""
    stream = stream or sys.stderr
    tty = stream.isatty()
    shown: dict[str, int] = {}

    def show(p) -> None:
        if p.phase == "loss":
            text = f"{label}teacher-forced loss: batch {p.done}/{p.total}"
        else:
            rate = f", exact so far {p.exact / p.turns:.0%}" if p.turns else ""
            text = f"{label}generating: episode {p.done}/{p.total} ({p.turns} turns{rate})"
        if tty:
            stream.write("\r\033[K" + text + ("\n" if p.phase == "generate" and p.done == p.total else ""))
            stream.flush()
            return
        quarter = 4 * p.done // max(p.total, 1)
        if shown.get(p.phase) != quarter and (quarter > 0 or p.done == p.total):
            shown[p.phase] = quarter
            print(text, file=stream, flush=True)

    return show


# -- the command ---------------------------------------------------------------------------------

def run(args: argparse.Namespace) -> int:
    from engine.checkpoint import CheckpointError
    from engine.device import pick_device
    from engine.eval import EvalOptions, difference, evaluate_checkpoint

    if len(args.models) > 2:
        print("error: --model takes one checkpoint, or two to compare", file=sys.stderr)
        return 2
    if args.limit is not None and args.limit < 1:
        print(f"error: --limit must be at least 1, got {args.limit}", file=sys.stderr)
        return 2
    options = EvalOptions(split=args.split, limit=args.limit)
    reports = []
    try:
        device = str(pick_device(args.device))
        for k, name in enumerate(args.models):
            label = f"{'AB'[k]}: " if len(args.models) == 2 else ""
            print(f"{label}evaluating {name} on {args.dataset} ({args.split})", file=sys.stderr)
            reports.append(evaluate_checkpoint(name, args.dataset, options, device=device, root=args.checkpoints,
                                               on_progress=progress_printer(label)))
    except (CheckpointError, ValueError, KeyError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130

    if args.json:
        out = {"schema": SCHEMA, "dataset": str(args.dataset), "split": args.split, "limit": args.limit,
               "episodes": reports[0].overall.episodes,
               "models": [{"model": name, **r.to_dict(args.failures)} for name, r in zip(args.models, reports)],
               "difference": difference(*reports) if len(reports) == 2 else None}
        print(json.dumps(out, indent=2))
        return 0
    first = reports[0]
    print(f"Eval on {first.dataset}, split {first.split}: {first.overall.episodes} episodes, "
          f"{first.overall.turns} assistant turns")
    if len(reports) == 1:
        print(f"Model: {describe(first)}  ({first.seconds:.1f} s)")
        print()
        print(single_table(first))
    else:
        a, b = reports
        print(f"A: {describe(a)}  ({a.seconds:.1f} s)")
        print(f"B: {describe(b)}  ({b.seconds:.1f} s)")
        print()
        print(compare_table(a, b))
    for name, r in zip(args.models, reports):
        if args.failures and r.failures():
            print()
            failed = len(r.failures())
            print(f"Failed turns of {name} ({failed} in all, first {min(args.failures, failed)}):")
            print("\n".join(failure_lines(r, args.failures)))
    return 0
