"""Causal self-attention and what it needs: rotary positions, the masks of packed rows (dense, or a
FlexAttention block mask on a GPU), and the KV cache of generation (see engine.model's docstring)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
from torch.nn import functional as F

from .model_config import GPTConfig

try:  # torch >= 2.5
    from torch.nn.attention.flex_attention import BlockMask, create_block_mask, flex_attention
except ImportError:  # pragma: no cover - an older torch: packed rows keep the dense mask
    BlockMask = create_block_mask = flex_attention = None


def rope_tables(cfg: GPTConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of every (position, frequency) pair, (block_size, head_dim / 2), float32."""
    inv_freq = 1.0 / (cfg.rope_theta ** (torch.arange(0, cfg.head_dim, 2, dtype=torch.float32) / cfg.head_dim))
    angles = torch.outer(torch.arange(cfg.block_size, dtype=torch.float32) / cfg.rope_scale, inv_freq)
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate (B, nh, T, hd) by per-position angles; split-half pairing (LLaMA's, MyPT's)."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


def positions_from_segments(segment_ids: torch.Tensor) -> torch.Tensor:
    """Position of each token inside its segment: 0 where the segment id changes, then counting."""
    B, T = segment_ids.shape
    idx = torch.arange(T, device=segment_ids.device).expand(B, T)
    starts = torch.ones_like(segment_ids, dtype=torch.bool)
    starts[:, 1:] = segment_ids[:, 1:] != segment_ids[:, :-1]
    first = torch.where(starts, idx, torch.zeros_like(idx)).cummax(dim=1).values
    return idx - first


def segment_mask(segment_ids: torch.Tensor) -> torch.Tensor:
    """(B, 1, T, T) bool: query i sees key j iff j <= i and both are in the same segment."""
    T = segment_ids.shape[1]
    same = segment_ids.unsqueeze(2) == segment_ids.unsqueeze(1)
    causal = torch.ones(T, T, dtype=torch.bool, device=segment_ids.device).tril()
    return (same & causal).unsqueeze(1)


def document_mask_mod(segment_ids: torch.Tensor):
    """FlexAttention's mask_mod of packed rows: the dense mask of `segment_mask`, one pair at a time."""
    def mask_mod(b, h, q, kv):  # noqa: ANN001, ANN202 - FlexAttention's signature
        return (segment_ids[b, q] == segment_ids[b, kv]) & (q >= kv)
    return mask_mod


_COMPILED: dict[str, Any] = {}


def _compiled(name: str, fn: Any) -> Any:
    """`fn` under torch.compile, made once per process (FlexAttention's kernels are compiled code)."""
    if name not in _COMPILED:
        _COMPILED[name] = torch.compile(fn, dynamic=False)
    return _COMPILED[name]


def document_block_mask(segment_ids: torch.Tensor) -> Any:
    """The BlockMask of document-causal attention over (B, T) segment ids: built once per batch and
    shared by every layer. On a GPU outside compiled code it is built by a compiled function (one
    graph for every batch of a shape: the segment ids are its input)."""
    B, T = segment_ids.shape
    make = create_block_mask
    if segment_ids.is_cuda and not torch.compiler.is_compiling():
        make = _compiled("create_block_mask", create_block_mask)
    return make(document_mask_mod(segment_ids), B, None, T, T, device=segment_ids.device)


def flex_available() -> bool:
    """Whether this torch has FlexAttention (2.5 and later)."""
    return flex_attention is not None


def flex(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, block_mask: Any) -> torch.Tensor:
    """FlexAttention: traced into the caller's graph under torch.compile, else its compiled kernel on a
    GPU, and the reference (unfused, forward-only) implementation on the CPU."""
    if q.is_cuda and not torch.compiler.is_compiling():
        return _compiled("flex_attention", flex_attention)(q, k, v, block_mask=block_mask)
    return flex_attention(q, k, v, block_mask=block_mask)


class KVCache:
    """Keys and values of every layer, preallocated to block_size; `pos` tokens are filled."""

    def __init__(self, cfg: GPTConfig, *, batch_size: int = 1, device: torch.device | str | None = None,
                 dtype: torch.dtype = torch.float32) -> None:
        shape = (cfg.n_layer, 2, batch_size, cfg.n_head, cfg.block_size, cfg.head_dim)
        self.kv = torch.zeros(shape, device=device, dtype=dtype)
        self.size = cfg.block_size
        self.pos = 0

    def store(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Write this step's keys/values at `pos` and return all keys/values so far."""
        end = self.pos + k.shape[2]
        self.kv[layer, 0, :, :, self.pos:end] = k
        self.kv[layer, 1, :, :, self.pos:end] = v
        return self.kv[layer, 0, :, :, :end], self.kv[layer, 1, :, :, :end]

    def reset(self) -> None:
        self.pos = 0


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.n_head = cfg.n_head
        self.c_attn = nn.Linear(cfg.n_embd, 3 * cfg.n_embd, bias=cfg.bias)  # q, k, v in one matmul
        self.c_proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=cfg.bias)
        self.dropout = cfg.dropout
        self.resid_dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None,
                mask: torch.Tensor | Any | None, causal: bool, cache: KVCache | None, layer: int) -> torch.Tensor:
        """`mask`: None (plain causal when `causal`), a dense bool mask, or a FlexAttention BlockMask."""
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        if cache is not None:
            k, v = cache.store(layer, k, v)
        if BlockMask is not None and isinstance(mask, BlockMask):
            y = flex(q, k, v, mask)  # chosen only without attention dropout (GPT._attention_mask)
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal,
                                               dropout_p=self.dropout if self.training else 0.0)
        return self.resid_dropout(self.c_proj(y.transpose(1, 2).reshape(B, T, C)))
