"""The training curve and step timing of a run, from its events.jsonl, as plain text.

    python bench/demo_curve.py checkpoints/demo_chat [--width 70] [--height 18]

Prints the step timing (from each step's `elapsed`: total, seconds per step, tokens per second),
the eval points, and a terminal plot of train loss per step and val loss per eval (no colour, so
it pastes into a README).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.events import Done, Eval, RunStart, Step, read_events  # noqa: E402
from engine.layout import EVENTS_FILE  # noqa: E402

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def timing_lines(steps: list[Step]) -> list[str]:
    if not steps:
        return ["no steps"]
    total = steps[-1].elapsed
    tokens = sum(s.tokens for s in steps)
    lines = [f"steps: {len(steps)} (last {steps[-1].step}), elapsed {total:.1f} s, "
             f"{total / len(steps):.2f} s/step, {tokens / total:,.0f} tokens/s overall"]
    marks = sorted({min(len(steps), k) for k in (50, 100, 200, 300, 400, 500, len(steps))})
    lines.append("  elapsed at step: " + ", ".join(f"{steps[k - 1].step}: {steps[k - 1].elapsed:.0f} s" for k in marks))
    return lines


def plot(steps: list[Step], evals: list[Eval], width: int, height: int) -> str:
    import plotext as plt

    plt.clear_figure()
    plt.plotsize(width, height)
    plt.theme("clear")
    plt.plot([s.step for s in steps], [s.loss for s in steps], label="train loss", marker="dot")
    pts = [e for e in evals if e.val_loss is not None]
    if pts:
        plt.plot([e.step for e in pts], [e.val_loss for e in pts], label="val loss", marker="x")
    plt.xlabel("step")
    plt.yscale("log")
    plt.title("demo chat SFT from scratch: masked loss")
    return ANSI.sub("", plt.build())  # plain text: the theme still writes colour resets


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("run", type=Path, help="run folder (holds events.jsonl)")
    p.add_argument("--width", type=int, default=70)
    p.add_argument("--height", type=int, default=18)
    args = p.parse_args(argv)
    events = list(read_events(args.run / EVENTS_FILE))
    steps = [e for e in events if isinstance(e, Step)]
    evals = [e for e in events if isinstance(e, Eval)]
    start = next((e for e in events if isinstance(e, RunStart)), None)
    done = next((e for e in events if isinstance(e, Done)), None)
    if start is not None:
        m = start.model
        print(f"model: {m.get('n_layer')} layers x {m.get('n_embd')} wide, context {m.get('block_size')}, "
              f"{m.get('params', 0) / 1e6:.1f}M parameters; {start.preflight.get('epochs')} epochs planned")
    print("\n".join(timing_lines(steps)))
    if done is not None:
        print(f"done: {done.reason} after {done.elapsed:.1f} s (checkpoint {done.final_checkpoint})")
    for e in evals:
        acc = "" if e.val_accuracy is None else f", val token accuracy {e.val_accuracy:.1%}"
        val = "-" if e.val_loss is None else f"{e.val_loss:.4f}"
        print(f"  eval at step {e.step}: train {e.train_loss:.4f}, val {val}{acc}")
    print(plot(steps, evals, args.width, args.height))
    return 0


if __name__ == "__main__":
    sys.exit(main())
