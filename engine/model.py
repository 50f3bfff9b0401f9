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
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn as nn
from torch.nn import functional as F
from torch.utils.checkpoint import checkpoint

from .layout import MAX_BLOCK_SIZE, MAX_EMBD, MAX_HEADS, MAX_LAYERS, MAX_VOCAB, MLP_TYPES, NORM_TYPES, POS_ENCODINGS

try:  # torch >= 2.5
    from torch.nn.attention.flex_attention import BlockMask, create_block_mask, flex_attention
except ImportError:  # pragma: no cover - an older torch: packed rows keep the dense mask
    BlockMask = create_block_mask = flex_attention = None

# gelu: exact GELU (nanoGPT, MyPT); gelu_tanh: GPT-2's tanh approximation (imported GPT-2
# weights were trained with it); swiglu: gated SiLU MLP (LLaMA, MyPT's modern variant).
RMSNORM_EPS = 1e-6  # MyPT's RMSNorm epsilon
LAYERNORM_EPS = 1e-5  # torch's and GPT-2's


@dataclass
class GPTConfig:
    """Architecture of a GPT. The guide's keys plus the MyPT variants; validated on creation."""

    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    block_size: int = 1024
    vocab_size: int = 50304
    dropout: float = 0.0
    bias: bool = True  # biases in every Linear and LayerNorm of the blocks (GPT-2: true)
    pos_encoding: str = "learned"
    mlp_type: str = "gelu"
    norm_type: str = "layernorm"
    tie_weights: bool = False  # share the token embedding with the output layer
    rope_theta: float = 10000.0  # rotary base frequency (pos_encoding = "rope")
    rope_scale: float = 1.0  # rotary position interpolation factor (MyPT's rope_scale)
    lm_head_bias: bool = False  # MyPT's output layer has a bias; GPT-2's and nanoGPT's do not

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            want = {"int": int, "float": float, "bool": bool, "str": str}[str(f.type)]
            if want is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
                setattr(self, f.name, value)
            if not isinstance(value, want) or (want is int and isinstance(value, bool)):
                raise ValueError(f"model config key {f.name!r} must be {f.type}, got {value!r}")
        for key, top in (("n_layer", MAX_LAYERS), ("n_head", MAX_HEADS), ("n_embd", MAX_EMBD),
                         ("block_size", MAX_BLOCK_SIZE), ("vocab_size", MAX_VOCAB)):
            if not 1 <= getattr(self, key) <= top:  # a bad file must not make us allocate terabytes
                raise ValueError(f"model config key {key!r} must be from 1 to {top}, got {getattr(self, key)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"model config key 'dropout' must be in [0, 1), got {self.dropout}")
        for key, allowed in (("pos_encoding", POS_ENCODINGS), ("mlp_type", MLP_TYPES), ("norm_type", NORM_TYPES)):
            if getattr(self, key) not in allowed:
                raise ValueError(f"model config key {key!r} must be one of {', '.join(allowed)}, "
                                 f"got {getattr(self, key)!r}")
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})")
        if self.pos_encoding == "rope" and self.head_dim % 2:
            raise ValueError(f"rope needs an even head size, got n_embd/n_head = {self.head_dim}")
        if not (0 < self.rope_theta < math.inf and 0 < self.rope_scale < math.inf):
            raise ValueError("rope_theta and rope_scale must be positive and finite")

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    @property
    def mlp_hidden(self) -> int:
        """Width of the MLP: 4x for GELU; for SwiGLU 8/3 x rounded up to 64 (same parameter count, MyPT's rule)."""
        if self.mlp_type == "swiglu":
            return (int(8 * self.n_embd / 3) + 63) // 64 * 64
        return 4 * self.n_embd

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "GPTConfig":
        """Build from a dict (a checkpoint's meta.json); unknown keys are an error, not ignored."""
        unknown = sorted(set(d) - set(cls.keys()))
        if unknown:
            raise ValueError(f"unknown model config key(s) {', '.join(map(repr, unknown))}; "
                             f"known keys are {', '.join(cls.keys())}")
        return cls(**d)


# -- building blocks --------------------------------------------------------------------------

def make_norm(cfg: GPTConfig) -> nn.Module:
    if cfg.norm_type == "rmsnorm":
        return nn.RMSNorm(cfg.n_embd, eps=RMSNORM_EPS)
    return nn.LayerNorm(cfg.n_embd, eps=LAYERNORM_EPS, bias=cfg.bias)


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
        if flex_attention is None or self.packed_attention == "dense":
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
