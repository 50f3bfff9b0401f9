"""A MyPT checkpoint folder (`model.pt` + `config.json` [+ `tokenizer.json`, `training_state.json`])
read as a Checkpoint, its keys mapped onto ours, so MyPT runs continue here.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path

import torch

from ..model import GPT, GPTConfig, normalize_key
from ..tokenizer import TokenizerError, from_state
from .native import Checkpoint, CheckpointError, _read_json, _safe_torch_load, check_fits

MYPT_FORMAT = "myPT_folder"  # meta["format"] of a checkpoint read from a MyPT folder

# MyPT's config.json keys that describe the architecture; the rest (batch_size, device,
# use_loss_mask, the sampler keys...) are training settings and are not part of a model.
_MYPT_MODEL_KEYS = ("n_layer", "n_head", "n_embd", "block_size", "vocab_size", "dropout", "pos_encoding",
                    "mlp_type", "norm_type", "tie_weights", "rope_theta", "rope_scale")
_MYPT_RENAMES = [  # (MyPT key pattern, ours)
    (r"token_embedding_table\.weight", "transformer.wte.weight"),
    (r"position_embedding_table\.weight", "transformer.wpe.weight"),
    (r"blocks\.(\d+)\.sa\.qkv\.(weight|bias)", r"transformer.h.\1.attn.c_attn.\2"),
    (r"blocks\.(\d+)\.sa\.proj\.(weight|bias)", r"transformer.h.\1.attn.c_proj.\2"),
    (r"blocks\.(\d+)\.fwd\.net\.0\.(weight|bias)", r"transformer.h.\1.mlp.c_fc.\2"),
    (r"blocks\.(\d+)\.fwd\.net\.2\.(weight|bias)", r"transformer.h.\1.mlp.c_proj.\2"),
    (r"blocks\.(\d+)\.fwd\.w_up\.(weight|bias)", r"transformer.h.\1.mlp.c_fc.\2"),
    (r"blocks\.(\d+)\.fwd\.w_gate\.(weight|bias)", r"transformer.h.\1.mlp.c_gate.\2"),
    (r"blocks\.(\d+)\.fwd\.w_down\.(weight|bias)", r"transformer.h.\1.mlp.c_proj.\2"),
    (r"blocks\.(\d+)\.ln([12])\.(weight|bias)", r"transformer.h.\1.ln_\2.\3"),
    (r"ln_f\.(weight|bias)", r"transformer.ln_f.\1"),
    (r"lm_head\.(weight|bias)", r"lm_head.\1"),
]


def map_myPT_keys(state_dict: dict[str, torch.Tensor], source: Path | str = "model.pt") -> dict[str, torch.Tensor]:
    """Rename MyPT's state-dict keys to ours; an unknown key is an error naming it."""
    out: dict[str, torch.Tensor] = {}
    unknown = []
    for key, value in state_dict.items():
        key = normalize_key(key)
        for pattern, repl in _MYPT_RENAMES:
            if re.fullmatch(pattern, key):
                out[re.sub(pattern, repl, key)] = value
                break
        else:
            unknown.append(key)
    if any(".sa.heads." in k for k in unknown):
        raise CheckpointError(f"{source}: this is an early MyPT layout (one module per attention head); "
                              "mypt reads MyPT checkpoints with fused qkv attention")
    if unknown:
        raise CheckpointError(f"{source}: keys that are not part of a MyPT GPT: {', '.join(unknown[:6])}")
    return out


def load_myPT(path: Path) -> Checkpoint:
    """A MyPT folder as a Checkpoint: keys renamed, bias flags read off the weights, no train state."""
    raw = _read_json(path / "config.json")
    obj = _safe_torch_load(path / "model.pt")
    sd = obj["state_dict"] if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict) else obj
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise CheckpointError(f"{path / 'model.pt'}: expected a state dict of tensors")
    state_dict = map_myPT_keys(sd, path / "model.pt")
    # MyPT's `bias` covers only the attention projections; its LayerNorms and GELU MLP always
    # have biases, and its output layer always has one. Ours: `bias` covers every block layer,
    # so a model with any block bias gets bias=true, the biases MyPT lacks filled with zeros
    # (the same function).
    has_block_bias = any(k.endswith(".bias") and not k.startswith("lm_head.") for k in state_dict)
    cfg_dict = {k: raw[k] for k in _MYPT_MODEL_KEYS if k in raw}
    cfg_dict.update(bias=has_block_bias, lm_head_bias="lm_head.bias" in state_dict)
    try:
        config = GPTConfig.from_dict(cfg_dict)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{path / 'config.json'}: {e}") from None
    check_fits(config, state_dict, path / "config.json", path / "model.pt", whole=False)
    if has_block_bias:
        with torch.device("meta"):
            expected = GPT(config).state_dict()
        for k, v in expected.items():
            if k.endswith(".bias") and k not in state_dict and not k.startswith("lm_head."):
                state_dict[k] = torch.zeros(v.shape, dtype=next(iter(state_dict.values())).dtype)
    check_fits(config, state_dict, path / "config.json", path / "model.pt")
    tokenizer_state = _myPT_tokenizer(path, config)
    step = None
    if (path / "training_state.json").is_file():
        step = _read_json(path / "training_state.json").get("step")
    meta = {
        "format": MYPT_FORMAT,
        "model_config": config.to_dict(),
        "tokenizer": tokenizer_state,
        "step": step,
        "metrics": {},
        "created": datetime.fromtimestamp((path / "model.pt").stat().st_mtime, timezone.utc)
        .isoformat(timespec="seconds"),
        "myPT_config": raw,
    }
    # MyPT's optimizer.pt indexes another model's parameter order: continuing starts a fresh optimizer.
    return Checkpoint(path, config, state_dict, tokenizer_state, meta, has_train_state=False)


def _myPT_tokenizer(path: Path, config: GPTConfig) -> dict:
    f = path / "tokenizer.json"
    if f.is_file():
        state = _read_json(f)
    elif config.vocab_size == 50304:
        state = {"token_kind": "gpt2"}  # MyPT's default tokenization for a 50304-row model
    else:
        raise CheckpointError(f"{path} has no tokenizer.json and its vocab_size ({config.vocab_size}) is not "
                              "GPT-2's: cannot tell which tokenizer it was trained with")
    try:
        return from_state(state).state()
    except TokenizerError as e:
        raise CheckpointError(f"{f}: {e}") from None
