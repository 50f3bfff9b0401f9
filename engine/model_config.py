"""The GPT's architecture as data: what a checkpoint's meta.json records and a config's keys set,
checked on construction (importable without building a model)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from .layout import MAX_BLOCK_SIZE, MAX_EMBD, MAX_HEADS, MAX_LAYERS, MAX_VOCAB, MLP_TYPES, NORM_TYPES, POS_ENCODINGS


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
