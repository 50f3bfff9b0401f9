"""The last stage: train/val overlap, dataset_metadata.json and tokenizer_state.json written into
the dataset, and the PrepareReport the caller shows."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .. import dataset as dsf
from ..tokenizer import Tokenizer
from .options import PrepareOptions, PrepareReport
from .skips import SkipTally
from .split import VAL
from .work import Rendered, RenderStats, WorkSplit
from .write import Written


def finish(opts: PrepareOptions, dataset: Path, tok: Tokenizer, inputs: list[dict], rendered: Rendered,
           targets: list[np.ndarray], written: Written, warnings: list[str]) -> PrepareReport:
    """Write the dataset's tokenizer and metadata files and say what was made."""
    skips = rendered.skips
    overlap, examples = _overlap(written, rendered.works[-1], targets[-1])
    if overlap:
        warnings.append(f"{overlap} val episodes have the same content as a train episode "
                        f"(e.g. {', '.join(examples[:3])})")
    metadata = _metadata(opts, tok, inputs, written, rendered.stats, skips, (overlap, examples))
    dsf.write_json(dataset / dsf.TOKENIZER_FILE, tok.state())
    dsf.write_json(dataset / dsf.METADATA_FILE, metadata)
    train, val = written.train, written.val
    return PrepareReport(
        output=Path(opts.output), kind=opts.kind, tokenization=tok.kind,
        train_episodes=train.episodes, val_episodes=val.episodes, train_tokens=train.tokens,
        val_tokens=val.tokens, train_supervised=train.supervised, val_supervised=val.supervised,
        skipped_total=skips.total, skipped=skips.messages(), skipped_by_reason=dict(skips.by_reason),
        overlap=overlap, overlap_examples=examples, files=[fc for work in rendered.works for fc in work.files],
        warnings=warnings, seconds=0.0, metadata=metadata)


def _overlap(written: Written, val_work: WorkSplit, val_target: np.ndarray) -> tuple[int, list[str]]:
    """Val episodes whose content hash (its first 64 bits) also occurs in train, and a few of
    their ids (val episodes come from the last input either way)."""
    train, val = written.train_content, written.val_content
    if len(val) == 0 or len(train) == 0:
        return 0, []
    hit = np.isin(val, train)
    n = int(hit.sum())
    if n == 0:
        return 0, []
    val_rows = np.flatnonzero(val_target == VAL)[np.flatnonzero(hit)[:5]]
    return n, [rec["id"] for _, rec in val_work.records(val_rows)]


def _metadata(opts: PrepareOptions, tok: Tokenizer, inputs: list[dict], written: Written, stats: RenderStats,
              skips: SkipTally, overlap: tuple[int, list[str]]) -> dict:
    """dataset_metadata.json, in the file's key order (MyPT's key names for the counts)."""
    train, val = written.train, written.val
    separate = opts.val_file is not None
    mode = "val_only" if opts.val_only else "explicit_val_file" if separate else "val_split"
    return {
        "format": dsf.FORMAT,
        "schema": dsf.FORMAT,  # the key MyPT's loader reads
        "kind": opts.kind,
        "tokenization": tok.kind,
        "vocab_size": tok.model_vocab_size,
        "has_loss_mask": True,
        "num_train_episodes": train.episodes,
        "num_val_episodes": val.episodes,
        "num_train_tokens": train.tokens,
        "num_val_tokens": val.tokens,
        "num_train_mask_tokens": train.supervised,  # supervised (trained) tokens
        "num_val_mask_tokens": val.supervised,
        "train_mask_ratio": train.supervised / train.tokens if train.tokens else 0.0,
        "val_mask_ratio": val.supervised / val.tokens if val.tokens else 0.0,
        "prepare_mode": mode,
        "val_only": opts.val_only,  # MyPT's key: an evaluation dataset, nothing to train on
        "val_split": opts.val_split if mode == "val_split" else 0.0,
        **({"weighted_mask": True, "num_train_mask_weight": round(train.weight_sum, 4),
            "num_val_mask_weight": round(val.weight_sum, 4)} if opts.weighted_mask else {}),
        **({"batching": "pack", "pack_block_size": opts.pack_block_size} if opts.enable_packing else {}),
        "seed": opts.seed,
        "inputs": inputs,
        "options": {
            "kind": opts.kind,
            "tokenization": opts.tokenization,
            "system_prompt": opts.system_prompt,
            "no_system_prompt": opts.no_system_prompt,
            "strict": opts.strict,
            "val_file": str(Path(opts.val_file).resolve()) if separate else None,
            "val_only": opts.val_only,
            "weighted_mask": opts.weighted_mask,
            "enable_packing": opts.enable_packing,
            "pack_block_size": opts.pack_block_size,
        },
        "episodes_with_system": stats.with_system,
        "episodes_with_tool_calls": stats.with_tools,
        "tool_calls": dict(sorted(stats.tool_calls.items())),
        "skipped": {"total": skips.total, "by_reason": skips.sorted_by_reason(), "first": skips.messages()[:100]},
        "train_val_overlap": overlap[0],
        "train_val_overlap_examples": overlap[1],
        "duplicate_content_in_train": int(len(written.train_content) - len(np.unique(written.train_content))),
        "created_by": "mypt prepare " + opts.kind,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
