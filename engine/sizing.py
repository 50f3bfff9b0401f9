"""Sizes of a GPT from its config alone, no model built: parameters, FLOPs, training memory.

What the pre-flight report prints before a run allocates anything, and what `mypt import`
shows of an imported model. `count_params` must agree with `GPT.num_params` (tested), so a
change to the model's layers changes both.
"""

from __future__ import annotations

from typing import Any

import torch

from .model_config import GPTConfig


def _lookup_params(cfg: GPTConfig) -> int:
    """Input lookup tables: positions, and tokens unless tied (then they are the output layer)."""
    n = cfg.block_size * cfg.n_embd if cfg.pos_encoding == "learned" else 0
    return n + (0 if cfg.tie_weights else cfg.vocab_size * cfg.n_embd)


def count_params(cfg: GPTConfig, non_embedding: bool = False) -> int:
    """What `GPT(cfg).num_params()` returns, from the config alone (no allocation)."""
    C, H, b = cfg.n_embd, cfg.mlp_hidden, int(cfg.bias)
    norm = C if cfg.norm_type == "rmsnorm" else C * (1 + b)
    attn = 3 * C * C + 3 * C * b + C * C + C * b
    n_in = 2 if cfg.mlp_type == "swiglu" else 1
    mlp = n_in * (C * H + H * b) + H * C + C * b
    n = cfg.n_layer * (2 * norm + attn + mlp) + norm
    n += cfg.vocab_size * C + (cfg.block_size * C if cfg.pos_encoding == "learned" else 0)
    n += (0 if cfg.tie_weights else cfg.vocab_size * C) + (cfg.vocab_size if cfg.lm_head_bias else 0)
    return n - (_lookup_params(cfg) if non_embedding else 0)


def flops_per_token(cfg: GPTConfig, seq_len: int | None = None) -> float:
    """Training FLOPs per token (forward + backward): 6 N + 12 L C T (PaLM appendix, nanoGPT's MFU)."""
    T = seq_len or cfg.block_size
    return 6 * count_params(cfg, non_embedding=True) + 12 * cfg.n_layer * cfg.n_embd * T


def output_params(cfg: GPTConfig) -> int:
    """Parameters of the output layer (vocab x width, and its bias)."""
    return cfg.vocab_size * cfg.n_embd + (cfg.vocab_size if cfg.lm_head_bias else 0)


def training_flops(cfg: GPTConfig, *, positions: int, outputs: int, attention_pairs: int) -> float:
    """Model FLOPs of one training pass (forward + backward) over a batch, for MFU.

    `flops_per_token`'s accounting, split where a batch of chat rows differs from pretraining:
    6 x (non-embedding parameters less the output layer) per computed position (padding
    included: the device computes it, as nanoGPT and nanochat count a row); 6 x the output
    layer's parameters per position it runs at (the supervised ones when the loss computes only
    those); 12 L C per attended pair, where `attention_pairs` sums span^2 over attention spans
    (a whole row of T in pad mode, as 12 L C T per token does; an episode in pack mode, since
    the document mask needs no more). A full row with every position output equals
    `flops_per_token(cfg, T) * T`.
    """
    trunk = count_params(cfg, non_embedding=True) - output_params(cfg)
    return (6 * trunk * positions + 6 * output_params(cfg) * outputs
            + 12 * cfg.n_layer * cfg.n_embd * attention_pairs)


_DTYPE_BYTES = {"float32": 4, "fp32": 4, "bfloat16": 2, "bf16": 2, "float16": 2, "fp16": 2}


def model_report(cfg: GPTConfig, batch_size: int, dtype: str | torch.dtype = "float32",
                 checkpointing: bool = False) -> dict[str, Any]:
    """Parameters and the training memory one micro-batch needs (estimates, in bytes).

    Weights, gradients and AdamW's two moments are fp32 (mixed precision keeps fp32 masters);
    activations are counted in `dtype`, the autocast dtype. Activations assume attention that
    does not store the T x T scores (PyTorch's fused kernels on GPU); `logits_bytes` is the
    worst case where every position is supervised. With activation `checkpointing` only each
    block's input is kept, plus one block's activations while backward recomputes it.
    """
    name = str(dtype).replace("torch.", "")
    if name not in _DTYPE_BYTES:
        raise ValueError(f"unknown dtype {dtype!r}: use float32, bfloat16 or float16")
    act = _DTYPE_BYTES[name]
    n = count_params(cfg)
    tokens = batch_size * cfg.block_size
    C, H = cfg.n_embd, cfg.mlp_hidden
    # Per layer and token, tensors kept for backward: two norm inputs, the q/k/v input and
    # q, k, v, the attention output, the MLP input and its hidden activations.
    mlp_saved = 4 * H if cfg.mlp_type == "swiglu" else 2 * H
    per_layer = 2 * C + C + 3 * C + C + C + mlp_saved
    kept = cfg.n_layer * C + per_layer if checkpointing else cfg.n_layer * per_layer
    activations = tokens * (kept + 2 * C) * act
    logits = tokens * cfg.vocab_size * 4 * 2  # fp32 logits and their gradient
    report = {
        "params": n,
        "params_non_embedding": count_params(cfg, non_embedding=True),
        "flops_per_token": flops_per_token(cfg),
        "batch_size": batch_size,
        "block_size": cfg.block_size,
        "dtype": name,
        "checkpointing": checkpointing,
        "weights_bytes": 4 * n,
        "grads_bytes": 4 * n,
        "optimizer_bytes": 8 * n,
        "activations_bytes": activations,
        "logits_bytes": logits,
    }
    report["total_bytes"] = sum(report[k] for k in ("weights_bytes", "grads_bytes", "optimizer_bytes",
                                                     "activations_bytes", "logits_bytes"))
    return report


def format_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    raise AssertionError


def format_report(r: dict[str, Any]) -> str:
    """One paragraph for a pre-flight print or the app."""
    return (f"model: {r['params'] / 1e6:.1f}M parameters ({r['params_non_embedding'] / 1e6:.1f}M without "
            f"input embeddings)\nmemory for a micro-batch of {r['batch_size']} x {r['block_size']} tokens "
            f"({r['dtype']} activations{', checkpointed' if r.get('checkpointing') else ''}): weights "
            f"{format_bytes(r['weights_bytes'])}, gradients "
            f"{format_bytes(r['grads_bytes'])}, AdamW state {format_bytes(r['optimizer_bytes'])}, "
            f"activations ~{format_bytes(r['activations_bytes'])}, logits up to "
            f"{format_bytes(r['logits_bytes'])}; total ~{format_bytes(r['total_bytes'])}")
