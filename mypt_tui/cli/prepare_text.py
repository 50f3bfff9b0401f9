"""`mypt prepare pretrain`: plain text, folders of it or JSONL -> a token stream for pretraining."""

from __future__ import annotations

import argparse
import sys

from mypt_tui.present.text import printable

# the flags of chat/tool preparing that mean nothing for a token stream
EPISODE_ONLY = ("val_file", "system_prompt", "no_system_prompt", "strict", "workers", "val_only", "weighted_mask",
                "enable_packing", "pack_block_size")


def run_pretrain(args: argparse.Namespace) -> int:
    from engine.corpus import DEFAULT_TOKENS_PER_SHARD, CorpusError, CorpusOptions, prepare_corpus

    given = [n for n in EPISODE_ONLY if getattr(args, n) not in (None, False)]
    if given:
        print(f"error: --{given[0]} is for episodes (mypt prepare chat|tool), not for pretrain", file=sys.stderr)
        return 2
    opts = CorpusOptions(
        input=args.input, output=args.output, tokenization=args.tokenization,
        val_split=0.05 if args.val_split is None else args.val_split, seed=1337 if args.seed is None else args.seed,
        tokens_per_shard=args.tokens_per_shard or DEFAULT_TOKENS_PER_SHARD, text_field=args.text_field or "text",
        overwrite=args.overwrite)
    try:
        report = prepare_corpus(opts)
    except CorpusError as e:
        print(f"error: {printable(str(e))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: nothing was written", file=sys.stderr)
        return 130
    print("Token stream prepared!")
    print(f"  Output: {report.output}")
    print(f"  Tokenization: {report.metadata['tokenization']} (vocab {report.metadata['vocab_size']:,})")
    for split in ("train", "val"):
        print(f"  {split.capitalize():<5} {report.documents[split]:,} documents, {report.tokens[split]:,} tokens, "
              f"{report.shards[split]} shard(s)")
    print(f"  Split: by document, seed {opts.seed}, val_split {opts.val_split:g}")
    print(f"  Time: {report.seconds:.1f} s")
    if report.skipped_total:
        print(f"  Skipped: {report.skipped_total} line(s)")
        for line in report.skipped[:20]:
            print(f"    {printable(line)}")
    return 0


def stream_of(request) -> str:  # noqa: ANN001 - engine.train.job.TrainRequest
    """MyPT's `train.py --input_file`: the text prepared as a token stream under data/prepared/,
    or the one prepared before from the same bytes. TrainError when --dataset is given too."""
    from pathlib import Path

    from engine.corpus import CorpusError, CorpusOptions, prepare_corpus
    from engine.provenance import prepared_from
    from engine.train.job import TrainError

    if request.dataset:
        raise TrainError("--input_file and --dataset both name the data: give one")
    src = Path(request.input_file)
    if not src.is_file():
        raise TrainError(f"--input_file {src}: no such file")
    out = Path("data") / "prepared" / f"{src.stem}_stream"
    meta = prepared_from(out, [src])
    if meta is not None and meta.get("tokenization") == (request.tokenization or "gpt2"):
        return str(out)
    print(f"preparing {src} as a token stream in {out} ...", file=sys.stderr)
    try:
        prepare_corpus(CorpusOptions(src, out, tokenization=request.tokenization or "gpt2", overwrite=out.exists()))
    except CorpusError as e:
        raise TrainError(f"--input_file {src}: {e}") from None
    return str(out)
