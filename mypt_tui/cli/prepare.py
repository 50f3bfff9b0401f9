"""`mypt prepare chat|tool`: gold episodes -> a prepared dataset (the guide's prepare scripts).

Results go to stdout, progress and warnings to stderr; the exit code is 0 only on success.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time

from mypt_tui.flags import flag
from mypt_tui.present.text import printable

SHOW_SKIPPED = 20  # skipped episodes listed on stdout; the rest are counted


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "prepare", help="prepare gold episodes (JSONL) into an episode-indexed SFT dataset",
        description="Render gold episodes with the one conversation renderer and write the "
                    "episode_indexed_sft_v1 dataset (tokens, loss mask, index, episode records).")
    p.add_argument("kind", choices=("chat", "tool", "pretrain"),
                   help="chat: conversations; tool: tool-calling episodes (the set must contain tool calls); "
                        "pretrain: plain text or JSONL text -> a token stream (sharded) for pretraining")
    flag(p, "--input", required=True, help="a JSONL/JSON file or a folder of them")
    flag(p, "--output", "--output_dir", "--output-dir", dest="output", required=True,
         help="the dataset folder to create")
    flag(p, "--tokenization", choices=("gpt2", "char"), default="gpt2", help="default: gpt2")
    flag(p, "--val_split", type=float, default=None,
         help="fraction of episodes drawn into val (default 0.1; ignored with --val_file)")
    flag(p, "--val_file", default=None, help="a separate validation input (no random split)")
    flag(p, "--seed", type=int, default=None, help="seed of the train/val split (default 1337)")
    flag(p, "--system_prompt", default=None, help="system text for episodes that have none of their own")
    flag(p, "--no_system_prompt", action="store_true", help="drop every system block")
    flag(p, "--strict", action="store_true",
         help="fail (exit 1, nothing written) at the first invalid episode instead of skipping it")
    flag(p, "--overwrite", action="store_true", help="replace an existing prepared dataset at --output")
    flag(p, "--workers", type=int, default=None,
         help="processes that render episodes (default: several for inputs of 20,000+ lines)")
    flag(p, "--val_only", action="store_true",
         help="put every --input episode in val/: an evaluation-only dataset (MyPT's --val_only)")
    flag(p, "--weighted_mask", action="store_true",
         help="also write per-token loss weights (mask_weighted.bin): stop, tool-call, think and cite tags "
              "weigh 1.5-2x (MyPT's --weighted_mask)")
    flag(p, "--enable_packing", action="store_true",
         help="train this dataset packed (MyPT's flag): mypt keeps episodes whole on disk and packs them "
              "when it trains (batching = \"pack\" unless the config says otherwise)")
    flag(p, "--pack_block_size", type=int, default=None,
         help="with --enable_packing: the packed row length it is meant for (a run with another "
              "block_size says so)")
    flag(p, "--text_field", default=None, help="pretrain: the JSONL field that holds a document (default text)")
    flag(p, "--tokens_per_shard", type=int, default=None,
         help="pretrain: tokens per shard file (MyPT's flag; default 10,000,000)")
    flag(p, "--verbose", "-v", action="store_true",
         help="also print per-file counts and the first episode rendered with its loss mask")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.kind == "pretrain":
        from mypt_tui.cli.prepare_text import run_pretrain

        return run_pretrain(args)
    for name in ("text_field", "tokens_per_shard"):
        if getattr(args, name) is not None:
            print(f"error: --{name} is for `mypt prepare pretrain`", file=sys.stderr)
            return 2
    from engine.prepare import DEFAULT_SEED, DEFAULT_VAL_SPLIT, PrepareError, PrepareOptions, prepare

    if args.val_split is not None and (args.val_file is not None or args.val_only):
        print(f"warning: --val_split is ignored with {'--val_file' if args.val_file else '--val_only'}",
              file=sys.stderr)
    opts = PrepareOptions(
        input=args.input, output=args.output, kind=args.kind, tokenization=args.tokenization,
        val_split=DEFAULT_VAL_SPLIT if args.val_split is None else args.val_split,
        val_file=args.val_file, seed=DEFAULT_SEED if args.seed is None else args.seed,
        system_prompt=args.system_prompt, no_system_prompt=args.no_system_prompt,
        strict=args.strict, overwrite=args.overwrite, workers=args.workers, val_only=args.val_only,
        weighted_mask=args.weighted_mask, enable_packing=args.enable_packing, pack_block_size=args.pack_block_size)
    progress = _Progress()
    previous = _sigterm_as_interrupt()
    try:
        report = prepare(opts, on_progress=progress)
    except PrepareError as e:
        progress.clear()
        print(f"error: {printable(str(e))}", file=sys.stderr)
        if args.strict:
            print("--strict: nothing was written", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        progress.clear()
        print("interrupted: nothing was written", file=sys.stderr)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    progress.clear()
    for w in report.warnings:
        print(f"warning: {printable(w)}", file=sys.stderr)
    print_summary(report, args.output)
    if args.verbose:
        print_verbose(report)
    return 0


def print_summary(report, output: str) -> None:
    """The guide's "Expected output" block, then our figures."""
    out = output.rstrip("/\\") + "/"
    print("Dataset preparation complete!")
    print(f"  Format: {report.metadata['format']}")
    print(f"  Train episodes: {report.train_episodes}")
    print(f"  Val episodes:   {report.val_episodes}")
    print(f"  Output: {out}")
    print(f"  Tokenization: {report.tokenization}")
    print(f"  Train tokens:   {report.train_tokens:,} ({report.train_supervised:,} supervised, "
          f"mask ratio {report.train_mask_ratio:.1%})")
    print(f"  Val tokens:     {report.val_tokens:,} ({report.val_supervised:,} supervised, "
          f"mask ratio {report.val_mask_ratio:.1%})")
    meta = report.metadata
    if report.kind == "tool" or meta["episodes_with_tool_calls"]:
        tools = ", ".join(f"{k} {v}" for k, v in meta["tool_calls"].items())
        print(f"  Episodes with tool calls: {meta['episodes_with_tool_calls']} ({tools})")
    if meta["prepare_mode"] == "val_split":
        print(f"  Split: random, seed {meta['seed']}, val_split {meta['val_split']:g}")
    elif meta["prepare_mode"] == "val_only":
        print("  Split: val only (an evaluation dataset: every episode is in val/)")
    else:
        print(f"  Split: val from {meta['options']['val_file']}")
    if meta.get("weighted_mask"):
        print(f"  Loss weights: mask_weighted.bin (weighted supervised: train {meta['num_train_mask_weight']:,}, "
              f"val {meta['num_val_mask_weight']:,})")
    if meta.get("batching") == "pack":
        rows = f" of {meta['pack_block_size']} tokens" if meta.get("pack_block_size") else ""
        print(f"  Packing: trains packed (rows{rows}, made when training; episodes stay whole on disk)")
    print(f"  Train/val overlap: {report.overlap} val episodes with the same content as a train episode")
    rate = report.episodes / report.seconds if report.seconds else 0.0
    print(f"  Time: {report.seconds:.1f} s ({rate:,.0f} episodes/s)")
    if report.skipped_total:
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(report.skipped_by_reason.items(), key=lambda kv: -kv[1]))
        print(f"  Skipped episodes: {report.skipped_total} ({reasons})")
        for line in report.skipped[:SHOW_SKIPPED]:
            print(f"    {printable(line)}")  # file names and reasons come from the input: data, not commands
        if report.skipped_total > SHOW_SKIPPED:
            print(f"    ... and {report.skipped_total - SHOW_SKIPPED} more")
    else:
        print("  Skipped episodes: 0")


def print_verbose(report) -> None:
    from engine.dataset import open_dataset
    from mypt_tui.cli.inspect import show_episode

    print("\nPer file:")
    for fc in report.files:
        print(f"  [{fc.input}] {printable(fc.file)}: {fc.episodes} episodes, {fc.skipped} skipped")
    ds = open_dataset(report.output)
    print()
    show_episode(ds, ds.split("train") or ds.split("val"), 0)


class _Progress:
    """Progress on stderr: a line rewritten in place on a terminal, nothing when redirected."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.last = 0.0
        self.shown = False

    def __call__(self, done: int, total: int | None) -> None:
        now = time.monotonic()
        if not self.tty or now - self.last < 0.2:
            return
        self.last = now
        of = f" of ~{total:,}" if total else ""
        print(f"\rprepare: {done:,}{of} episodes read", end="", file=sys.stderr, flush=True)
        self.shown = True

    def clear(self) -> None:
        if self.shown:
            print("\r\033[K", end="", file=sys.stderr, flush=True)
            self.shown = False


def _sigterm_as_interrupt():
    """A SIGTERM (kill, a closed SSH session's hangup) cleans up like ctrl+c does."""
    def raise_interrupt(signum, frame):
        raise KeyboardInterrupt
    try:
        return signal.signal(signal.SIGTERM, raise_interrupt)
    except ValueError:  # not the main thread
        return None
