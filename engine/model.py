"""The GPT: one file a reader can hold in their head (config, attention, MLP, block, model).

GPT-2's layout by default (learned positions, GELU MLP, LayerNorm, pre-norm blocks) with the
variants MyPT models use: rotary positions, a SwiGLU MLP, RMSNorm and tied embeddings.

Packing: with `segment_ids` a token attends only to earlier tokens of its own segment
(episode), and positions restart at 0 in each segment, so an episode's logits are the same
packed beside others or alone. Without segment ids attention is plain causal (the fast path:
SDPA's flash kernel on a GPU). Packed rows on a GPU use FlexAttention with a document-causal
block mask, built once per batch from the segment ids and shared by every layer, so no dense
(B, 1, T, T) mask exists and blocks of other episodes are skipped; the CPU keeps the dense
mask (FlexAttention has no backward pass on the CPU), and so does training with attention
dropout (FlexAttention has no dropout; SDPA's fused kernels take the mask and the dropout).
`GPT.packed_attention` chooses: "auto" (that rule), "flex" or "dense".

Generation passes a `KVCache`: keys and values of earlier tokens are kept per layer, so each
new token costs one position's work instead of re-running the whole context.

Two training settings live on the model, not in its config (they change no weight): NEFTune
noise on the token embeddings (`neftune_alpha`) and activation checkpointing (`checkpointing`),
both active only in training mode.

Sizes from the config alone (parameters, FLOPs, the memory report) are in engine.sizing.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn as nn
from torch.nn import functional as F
from torch.utils.checkpoint import checkpoint

from .attention import (  # noqa: F401 - KVCache and positions_from_segments are part of the model's face
    BlockMask,
    CausalSelfAttention,
    KVCache,
    apply_rope,
    document_block_mask,
    flex_available,
    positions_from_segments,
    rope_tables,
    segment_mask,
)
from .model_config import GPTConfig

# gelu: exact GELU (nanoGPT, MyPT); gelu_tanh: GPT-2's tanh approximation (imported GPT-2
# weights were trained with it); swiglu: gated SiLU MLP (LLaMA, MyPT's modern variant).
RMSNORM_EPS = 1e-6  # MyPT's RMSNorm epsilon
LAYERNORM_EPS = 1e-5  # torch's and GPT-2's


def make_norm(cfg: GPTConfig) -> nn.Module:
    if cfg.norm_type == "rmsnorm":
        return nn.RMSNorm(cfg.n_embd, eps=RMSNORM_EPS)
    return nn.LayerNorm(cfg.n_embd, eps=LAYERNORM_EPS, bias=cfg.bias)


class MLP(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.swiglu = cfg.mlp_type == "swiglu"
        self.approximate = "tanh" if cfg.mlp_type == "gelu_tanh" else "none"
        self.c_fc = nn.Linear(cfg.n_embd, cfg.mlp_hidden, bias=cfg.bias)
        if self.swiglu:
            self.c_gate = nn.Linear(cfg.n_embd, cfg.mlp_hidden, bias=cfg.bias)
        self.c_proj = nn.Linear(cfg.mlp_hidden, cfg.n_embd, bias=cfg.bias)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.swiglu:
            h = F.silu(self.c_gate(x)) * self.c_fc(x)
        else:
            h = F.gelu(self.c_fc(x), approximate=self.approximate)
        return self.dropout(self.c_proj(h))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.ln_1 = make_norm(cfg)
        self.attn = CausalSelfAttention(cfg)
        self.ln_2 = make_norm(cfg)
        self.mlp = MLP(cfg)

    def forward(self, x, rope, mask, causal, cache, layer):  # noqa: ANN001 - same as attention's
        x = x + self.attn(self.ln_1(x), rope, mask, causal, cache, layer)
        return x + self.mlp(self.ln_2(x))


# -- the model --------------------------------------------------------------------------------

class GPT(nn.Module):
    # Packed rows: "auto" = FlexAttention on a GPU unless attention dropout is active, else the
    # dense mask; "flex" = FlexAttention wherever it runs (the CPU: forward only); "dense".
    packed_attention: str = "auto"

    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.config = cfg
        layers: dict[str, nn.Module] = {"wte": nn.Embedding(cfg.vocab_size, cfg.n_embd)}
        if cfg.pos_encoding == "learned":
            layers["wpe"] = nn.Embedding(cfg.block_size, cfg.n_embd)
        layers["drop"] = nn.Dropout(cfg.dropout)
        layers["h"] = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        layers["ln_f"] = make_norm(cfg)
        self.transformer = nn.ModuleDict(layers)
        self.lm_head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=cfg.lm_head_bias)
        if cfg.tie_weights:
            self.transformer.wte.weight = self.lm_head.weight
        if cfg.pos_encoding == "rope":
            cos, sin = rope_tables(cfg)
            self.register_buffer("rope_cos", cos, persistent=False)
            self.register_buffer("rope_sin", sin, persistent=False)
        self.neftune_alpha = 0.0  # NEFTune (arXiv:2310.05914): uniform embedding noise while training
        self.checkpointing = False  # recompute each block in backward instead of keeping its activations
        self.apply(self._init_weights)
        # GPT-2's scaled init: each residual projection adds to the stream 2 * n_layer times.
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    # -- forward passes -----------------------------------------------------------------------
    def hidden(self, idx: torch.Tensor, *, segment_ids: torch.Tensor | None = None,
               position_ids: torch.Tensor | None = None, kv_cache: KVCache | None = None,
               blocks: list[nn.Module] | None = None) -> torch.Tensor:
        """Final-norm hidden states (B, T, C) of token ids (B, T). `blocks`: the layers to run in
        place of transformer.h (the trainer passes the same blocks compiled)."""
        cfg = self.config
        B, T = idx.shape
        start = kv_cache.pos if kv_cache is not None else 0
        if start + T > cfg.block_size:
            raise ValueError(f"sequence of {start + T} tokens is longer than block_size {cfg.block_size}")
        if position_ids is None:
            if segment_ids is not None:
                position_ids = positions_from_segments(segment_ids)
            else:
                position_ids = torch.arange(start, start + T, device=idx.device).unsqueeze(0)
        x = self.transformer.wte(idx)
        if self.training and self.neftune_alpha > 0:  # bound alpha / sqrt(L d): MyPT's and the paper's scale
            bound = self.neftune_alpha / math.sqrt(T * cfg.n_embd)
            x = x + torch.empty_like(x).uniform_(-bound, bound)
        if cfg.pos_encoding == "learned":
            x = x + self.transformer.wpe(position_ids)
        rope = None
        if cfg.pos_encoding == "rope":
            rope = (self.rope_cos[position_ids].unsqueeze(1).to(x.dtype),
                    self.rope_sin[position_ids].unsqueeze(1).to(x.dtype))
        x = self.transformer.drop(x)
        mask, causal = self._attention_mask(T, segment_ids, kv_cache, idx.device)
        recompute = self.checkpointing and self.training and kv_cache is None and torch.is_grad_enabled()
        for layer, block in enumerate(self.transformer.h if blocks is None else blocks):
            if recompute:  # keeps the block's input only; backward runs it again (same dropout)
                x = checkpoint(block, x, rope, mask, causal, None, layer, use_reentrant=False)
            else:
                x = block(x, rope, mask, causal, kv_cache, layer)
        if kv_cache is not None:
            kv_cache.pos += T
        return self.transformer.ln_f(x)

    def _attention_mask(self, T: int, segment_ids: torch.Tensor | None, cache: KVCache | None,
                        device: torch.device) -> tuple[torch.Tensor | Any | None, bool]:
        """(mask, is_causal) for the attention of every layer: plain causal when possible, since
        it is the fast path; packed rows get a BlockMask (FlexAttention) or the dense mask."""
        if segment_ids is not None:
            if cache is not None:
                raise ValueError("segment_ids cannot be combined with a KV cache")
            if self.uses_flex(segment_ids):
                return document_block_mask(segment_ids), False
            return segment_mask(segment_ids), False
        if cache is None or cache.pos == 0:
            return None, T > 1
        if T == 1:
            return None, False  # one new token sees every cached one
        # T new tokens after `pos` cached ones: query i sees keys 0 .. pos + i.
        q = torch.arange(T, device=device).unsqueeze(1) + cache.pos
        return q >= torch.arange(cache.pos + T, device=device).unsqueeze(0), False

    def uses_flex(self, segment_ids: torch.Tensor) -> bool:
        """Whether packed rows of this device take FlexAttention now (see `packed_attention`)."""
        if not flex_available() or self.packed_attention == "dense":
            return False
        if self.training and self.config.dropout > 0:
            return False  # FlexAttention has no attention dropout
        return self.packed_attention == "flex" or segment_ids.is_cuda

    def head(self, h: torch.Tensor) -> torch.Tensor:
        """Logits from hidden states (any leading shape)."""
        return self.lm_head(h)

    def forward(self, idx: torch.Tensor, *, segment_ids: torch.Tensor | None = None,
                position_ids: torch.Tensor | None = None, targets: torch.Tensor | None = None,
                mask: torch.Tensor | None = None, full_output: bool = False) -> torch.Tensor:
        """Logits (B, T, V) at every position: the full reference path.

        Given `targets` and `mask`, returns `supervised_loss` instead, so that wrappers which act
        on forward (DistributedDataParallel, torch.compile) see the training computation.
        """
        if targets is not None or mask is not None:
            if targets is None or mask is None:
                raise ValueError("pass both targets and mask to get the loss")
            return self.supervised_loss(idx, targets, mask, segment_ids=segment_ids, position_ids=position_ids,
                                        full_output=full_output)
        return self.head(self.hidden(idx, segment_ids=segment_ids, position_ids=position_ids))

    def supervised_loss(self, idx: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor, *,
                        segment_ids: torch.Tensor | None = None, position_ids: torch.Tensor | None = None,
                        full_output: bool = False, weight: torch.Tensor | None = None,
                        sup_index: torch.Tensor | None = None, sup_targets: torch.Tensor | None = None) -> torch.Tensor:
        """SUM of cross-entropy (fp32) over positions where mask == 1, each times its `weight`
        when given (MyPT's weighted masks).

        The output layer (vocab x width, the largest matmul of a small model) runs only at the
        supervised positions; `full_output=True` computes all logits then masks (same value).
        `sup_index`/`sup_targets` (from collate): those positions, flat, and their targets, known
        on the host, so that selecting them needs no device-to-host sync (a boolean index does).
        """
        h = self.hidden(idx, segment_ids=segment_ids, position_ids=position_ids)
        if full_output:
            return self.full_output_loss(h, targets, mask, weight)
        if sup_index is not None and sup_targets is not None:
            return self.gathered_loss(h, sup_index, sup_targets, weight)
        keep = mask.bool()
        logits = self.head(h[keep]).float()
        if weight is None:
            return F.cross_entropy(logits, targets[keep], reduction="sum")
        return (F.cross_entropy(logits, targets[keep], reduction="none") * weight[keep]).sum()

    def full_output_loss(self, h: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor,
                         weight: torch.Tensor | None = None) -> torch.Tensor:
        """The same sum with the output layer at every position, then masked (the slow reference)."""
        keep = mask.bool()
        logits = self.head(h).float()
        ce = F.cross_entropy(logits.flatten(0, 1), targets.masked_fill(~keep, 0).flatten(), reduction="none")
        return (ce * keep.flatten() * (1 if weight is None else weight.flatten())).sum()

    def gathered_loss(self, h: torch.Tensor, sup_index: torch.Tensor, sup_targets: torch.Tensor,
                      weight: torch.Tensor | None = None) -> torch.Tensor:
        """SUM of cross-entropy (fp32) of the output layer at flat positions `sup_index` (row * T + t) of
        h (B, T, C), against `sup_targets`: a gather whose size is known on the host (no sync)."""
        logits = self.head(h.flatten(0, 1).index_select(0, sup_index)).float()
        if weight is None:
            return F.cross_entropy(logits, sup_targets, reduction="sum")
        ce = F.cross_entropy(logits, sup_targets, reduction="none")
        return (ce * weight.flatten().index_select(0, sup_index)).sum()

    def set_dropout(self, p: float) -> None:
        """Change dropout everywhere (a fine-tune picks its own; the guide raises it for SFT)."""
        self.config.dropout = p
        for m in self.modules():
            if isinstance(m, nn.Dropout):
                m.p = p
            elif isinstance(getattr(m, "dropout", None), float):
                m.dropout = p

    def new_cache(self, batch_size: int = 1) -> KVCache:
        w = self.transformer.wte.weight
        return KVCache(self.config, batch_size=batch_size, device=w.device, dtype=w.dtype)

    # -- training helpers ---------------------------------------------------------------------
    def param_groups(self, weight_decay: float) -> list[dict]:
        """AdamW groups: decay on matmul weights; none on biases, norm weights and embeddings."""
        exempt = set()
        for module in self.modules():
            if isinstance(module, (nn.Embedding, nn.LayerNorm, nn.RMSNorm)):
                exempt.update(id(p) for p in module.parameters(recurse=False))
        decay, no_decay = [], []
        for name, p in self.named_parameters():
            if not p.requires_grad:
                continue
            (no_decay if id(p) in exempt or name.endswith(".bias") else decay).append(p)
        return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]

    def num_params(self, non_embedding: bool = False) -> int:
        """Parameters (shared ones once); non_embedding leaves out the input lookup tables."""
        n = sum(p.numel() for p in self.parameters())
        if non_embedding and "wpe" in self.transformer:
            n -= self.transformer.wpe.weight.numel()
        if non_embedding and not self.config.tie_weights:  # tied, the token table is the output layer
            n -= self.transformer.wte.weight.numel()
        return n

    # -- weights in and out -------------------------------------------------------------------
    def weights_for_saving(self) -> dict[str, torch.Tensor]:
        """State dict for safetensors: CPU, contiguous, a tied output matrix stored once."""
        sd = self.state_dict()
        if self.config.tie_weights:
            sd.pop("lm_head.weight")
        return {k: v.detach().to("cpu").contiguous() for k, v in sd.items()}

    def load_weights(self, state_dict: dict[str, torch.Tensor]) -> None:
        """Load a state dict (a `_orig_mod.` or `module.` prefix is stripped), with clear errors."""
        sd = {normalize_key(k): v for k, v in state_dict.items()}
        if self.config.tie_weights:
            sd.pop("lm_head.weight", None)  # the token embedding is the output matrix
        own = self.state_dict()
        expected = set(own) - ({"lm_head.weight"} if self.config.tie_weights else set())
        missing, unexpected = sorted(expected - set(sd)), sorted(set(sd) - expected)
        problems = []
        if missing:
            problems.append(f"missing {_some(missing)}")
        if unexpected:
            problems.append(f"unexpected {_some(unexpected)}")
        problems += [f"{k} has shape {list(sd[k].shape)}, the model expects {list(own[k].shape)}"
                     for k in sorted(expected & set(sd)) if sd[k].shape != own[k].shape]
        if problems:
            raise ValueError("weights do not fit this model config: " + "; ".join(problems))
        self.load_state_dict(sd, strict=False)


def normalize_key(key: str) -> str:
    for prefix in ("_orig_mod.", "module."):  # torch.compile, DDP
        while key.startswith(prefix):
            key = key[len(prefix):]
    return key.replace("._orig_mod.", ".")


def _some(keys: list[str], n: int = 6) -> str:
    return ", ".join(keys[:n]) + (f" and {len(keys) - n} more" if len(keys) > n else "")
