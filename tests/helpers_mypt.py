"""Datasets and configs shaped the way MyPT's scripts write them, made by tests (never MyPT's files)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def write_split(folder: Path, rows: list[tuple[np.ndarray, np.ndarray]], segments: list[np.ndarray] | None = None,
                weights: list[np.ndarray] | None = None) -> None:
    """One MyPT split (or shard) folder: tokens.bin, mask.bin, episodes.idx [segment_ids.bin, mask_weighted.bin]."""
    folder.mkdir(parents=True, exist_ok=True)
    lengths = [len(ids) for ids, _ in rows]
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.uint64)
    np.concatenate([ids for ids, _ in rows]).astype(np.uint32).tofile(folder / "tokens.bin")
    np.concatenate([m for _, m in rows]).astype(np.uint8).tofile(folder / "mask.bin")
    np.stack([starts, np.asarray(lengths, dtype=np.uint64)], axis=1).tofile(folder / "episodes.idx")
    if segments is not None:
        np.concatenate(segments).astype(np.uint8).tofile(folder / "segment_ids.bin")
    if weights is not None:
        np.concatenate(weights).astype(np.float32).tofile(folder / "mask_weighted.bin")


def pack(episodes: list[tuple[np.ndarray, np.ndarray]], block: int, pad_id: int
         ) -> tuple[list[tuple[np.ndarray, np.ndarray]], list[np.ndarray]]:
    """MyPT's greedy packing: whole episodes in order into rows of `block` tokens, each row padded
    with `pad_id` (mask 0, segment 0); segment ids 1, 2, ... per episode in the row."""
    rows, segs = [], []
    ids: list[int] = []
    mask: list[int] = []
    seg: list[int] = []
    for e_ids, e_mask in episodes:
        if ids and len(ids) + len(e_ids) > block:
            rows.append((ids, mask))
            segs.append(seg)
            ids, mask, seg = [], [], []
        k = (seg[-1] if seg else 0) + 1
        ids, mask, seg = ids + list(e_ids), mask + list(e_mask), seg + [k] * len(e_ids)
    rows.append((ids, mask))
    segs.append(seg)
    padded = [(np.array(i + [pad_id] * (block - len(i))), np.array(m + [0] * (block - len(m)))) for i, m in rows]
    return padded, [np.array(s + [0] * (block - len(s))) for s in segs]


def write_dataset(root: Path, tokenizer_state: dict, train: dict, val: dict | None = None, **metadata) -> Path:
    """A MyPT dataset folder: `train`/`val` are write_split keyword arguments (a list of them: shards)."""
    counts = {}
    for name, split in (("train", train), ("val", val)):
        if split is None:
            continue
        shards = split if isinstance(split, list) else [split]
        for k, shard in enumerate(shards):
            write_split(root / name / (f"shard_{k:05d}" if isinstance(split, list) else ""), **shard)
        counts[f"num_{name}_episodes"] = sum(len(s["rows"]) for s in shards)
        counts[f"num_{name}_tokens"] = sum(len(ids) for s in shards for ids, _ in s["rows"])
    (root / "tokenizer_state.json").write_text(json.dumps(tokenizer_state))
    (root / "dataset_metadata.json").write_text(json.dumps({"schema": "episode_indexed_sft_v1", **counts,
                                                            **metadata}))
    return root


def myPT_params(ours) -> list[tuple[str, object]]:
    """A modern MyPT GPT's parameters (RoPE, SwiGLU, RMSNorm, tied, output bias) under MyPT's names,
    in MyPT's module order (blocks: sa, fwd, ln1, ln2), from our model of the same architecture."""
    sd = ours.state_dict()
    out = [("token_embedding_table.weight", sd["transformer.wte.weight"])]
    for i in range(ours.config.n_layer):
        h = f"transformer.h.{i}."
        out += [(f"blocks.{i}.sa.qkv.weight", sd[h + "attn.c_attn.weight"]),
                (f"blocks.{i}.sa.proj.weight", sd[h + "attn.c_proj.weight"]),
                (f"blocks.{i}.fwd.w_gate.weight", sd[h + "mlp.c_gate.weight"]),
                (f"blocks.{i}.fwd.w_up.weight", sd[h + "mlp.c_fc.weight"]),
                (f"blocks.{i}.fwd.w_down.weight", sd[h + "mlp.c_proj.weight"]),
                (f"blocks.{i}.ln1.weight", sd[h + "ln_1.weight"]), (f"blocks.{i}.ln2.weight", sd[h + "ln_2.weight"])]
    return out + [("ln_f.weight", sd["transformer.ln_f.weight"]), ("lm_head.weight", sd["lm_head.weight"]),
                  ("lm_head.bias", sd["lm_head.bias"])]


def myPT_optimizer(params: list[tuple[str, object]], skip: int = 0) -> tuple[dict, list[str]]:
    """(AdamW state as MyPT's configure_optimizer lays it out, MyPT's names in its numbering): decay
    group (matrices), then no-decay (vectors, embeddings, 'ln'), numbered across both; parameter k's
    moments are all k + 1 (a marker). The tied output matrix is the embedding (named_parameters gives
    it once); `skip` leaves out the first block's parameters (a run with freeze_layers)."""
    import torch

    named = [(n, p) for n, p in params if n != "lm_head.weight" and not (skip and n.startswith("blocks.0."))]
    no_decay = [(n, p) for n, p in named if p.dim() == 1 or "embedding" in n or "ln" in n]
    decay = [(n, p) for n, p in named if n not in {m for m, _ in no_decay}]
    state, groups, k = {}, [], 0
    for members, wd in ((decay, 0.05), (no_decay, 0.0)):
        ids = []
        for _, p in members:
            state[k] = {"step": torch.tensor(12.0), "exp_avg": torch.full_like(p, k + 1.0),
                        "exp_avg_sq": torch.full_like(p, (k + 1.0) ** 2)}
            ids.append(k)
            k += 1
        groups.append({"params": ids, "lr": 3e-5, "betas": (0.9, 0.95), "eps": 1e-8, "weight_decay": wd,
                       "amsgrad": False, "maximize": False, "foreach": None, "capturable": False,
                       "differentiable": False, "fused": None})
    return {"state": state, "param_groups": groups}, [n for n, _ in decay + no_decay]
