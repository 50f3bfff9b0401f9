"""`mypt import gpt2 --from DIR --output NAME`: a Hugging Face GPT-2 folder becomes a checkpoint.

NAME without a slash is a checkpoint name (checkpoints/NAME); anything else is a path.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mypt_tui.flags import flag


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("import", help="turn pretrained weights into a mypt checkpoint",
                       description="Turn pretrained weights into a mypt checkpoint.")
    kinds = p.add_subparsers(dest="kind", metavar="KIND", required=True)
    g = kinds.add_parser(
        "gpt2", help="a Hugging Face GPT-2 folder (config.json + model.safetensors)",
        description="Convert a Hugging Face GPT-2 folder (config.json and model.safetensors, or "
                    "pytorch_model.bin read without unpickling code) into a mypt checkpoint with the "
                    "myPT tag rows added (vocabulary 50,257 -> 50,304).")
    g.add_argument("--from", dest="source", required=True, help="the Hugging Face model folder")
    g.add_argument("--output", "--output_dir", "--output-dir", dest="output", required=True,
                   help="checkpoint name (saved as checkpoints/NAME) or a path")
    g.add_argument("--checkpoints", default="checkpoints", help="folder a plain --output name is saved in")
    flag(g, "--seed", type=int, default=0, help="seed of the noise in the new tag rows")
    g.set_defaults(handler=run)


def output_path(name: str, root: str) -> Path:
    p = Path(name)
    return p if p.is_absolute() or len(p.parts) > 1 else Path(root) / p


def run(args: argparse.Namespace) -> int:
    from engine.checkpoint import CheckpointError
    from engine.gpt2_import import import_gpt2
    from engine.layout import META_FILE
    from engine.model_config import GPTConfig
    from engine.sizing import count_params

    try:
        path = import_gpt2(args.source, output_path(args.output, args.checkpoints), seed=args.seed)
    except CheckpointError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    cfg = GPTConfig.from_dict(json.loads((path / META_FILE).read_text(encoding="utf-8"))["model_config"])
    print(f"imported {args.source} -> {path} ({count_params(cfg) / 1e6:.1f}M parameters, {cfg.n_layer} layers, "
          f"{cfg.n_embd} wide, context {cfg.block_size}, vocabulary {cfg.vocab_size})")
    print(f"use it with: mypt generate --model {args.output} --prompt \"Hello\"  "
          f"or  mypt train --model {args.output} ...")
    return 0
