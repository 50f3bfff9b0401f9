"""MyPT's checkpoints read as a Checkpoint, its keys mapped onto ours, so MyPT runs continue here:
a folder of `model.pt` + `config.json` [+ `tokenizer.json`, `training_state.json`, `optimizer.pt`]
(model.pt a state dict, or {"state_dict", "checkpoint_dtype", "model_dtype"}), or a legacy single
file (`latest.pt` / `final.pt`). Everything is read with torch.load(weights_only=True): a pickle
that would run code is refused. Its AdamW state is mapped by engine.checkpoint.myPT_optim.
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


def our_key(key: str) -> str | None:
    """MyPT's name of a parameter as ours, or None when it is not part of a MyPT GPT."""
    key = normalize_key(key)
    for pattern, repl in _MYPT_RENAMES:
        if re.fullmatch(pattern, key):
            return re.sub(pattern, repl, key)
    return None


def map_myPT_keys(state_dict: dict[str, torch.Tensor], source: Path | str = "model.pt") -> dict[str, torch.Tensor]:
    """Rename MyPT's state-dict keys to ours; an unknown key is an error naming it."""
    out: dict[str, torch.Tensor] = {}
    unknown = []
    for key, value in state_dict.items():
        ours = our_key(key)
        if ours is None:
            unknown.append(normalize_key(key))
        else:
            out[ours] = value
    if any(".sa.heads." in k for k in unknown):
        raise CheckpointError(f"{source}: this is an early MyPT layout (one module per attention head); "
                              "mypt reads MyPT checkpoints with fused qkv attention")
    if unknown:
        raise CheckpointError(f"{source}: keys that are not part of a MyPT GPT: {', '.join(unknown[:6])}")
    return out


LEGACY_FILES = ("latest.pt", "final.pt")  # MyPT's single-file checkpoints, in the order its loader tries them


def myPT_source(path: Path) -> Path | None:
    """The MyPT checkpoint at `path`: the folder (config.json + model.pt), a legacy single file
    (`latest.pt` / `final.pt` in the folder, or the .pt file itself); None when there is none."""
    if path.is_file() and path.suffix == ".pt":
        return path
    if (path / "config.json").is_file() and (path / "model.pt").is_file():
        return path
    for name in LEGACY_FILES:
        if (path / name).is_file():
            return path / name
    return None


def load_myPT(path: Path) -> Checkpoint:
    """Any of MyPT's checkpoint formats as a Checkpoint: keys renamed, bias flags read off the
    weights. Its optimizer state is not train state of ours: `carry_optimizer` maps it."""
    source = myPT_source(path) or path
    if source.is_file():
        return _load_legacy(source)
    raw = _read_json(source / "config.json")
    obj = _safe_torch_load(source / "model.pt")
    sd = obj["state_dict"] if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict) else obj
    training = _read_json(source / "training_state.json") if (source / "training_state.json").is_file() else {}
    optimizer = source / str(training.get("optimizer_file") or "optimizer.pt")
    return _checkpoint(source, source / "model.pt", source / "config.json", raw, sd, _myPT_tokenizer_file(source),
                       training.get("step"),
                       {"file": str(optimizer)} if optimizer.is_file() else None)


def _load_legacy(f: Path) -> Checkpoint:
    """MyPT's legacy single file: {"model_state_dict", "config", "tokenizer", "step", "optimizer_state_dict"}."""
    obj = _safe_torch_load(f)
    if not isinstance(obj, dict) or not isinstance(obj.get("model_state_dict"), dict) \
            or not isinstance(obj.get("config"), dict):
        raise CheckpointError(f"{f}: not a MyPT checkpoint (expected model_state_dict and config)")
    optimizer = obj.get("optimizer_state_dict")
    return _checkpoint(f, f, f, obj["config"], obj["model_state_dict"], obj.get("tokenizer"), obj.get("step"),
                       {"file": str(f), "key": "optimizer_state_dict"} if isinstance(optimizer, dict) else None)


def _checkpoint(path: Path, weights: Path, config_file: Path, raw: dict, sd: object, tokenizer: dict | None,
                step: object, optimizer: dict | None) -> Checkpoint:
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise CheckpointError(f"{weights}: expected a state dict of tensors")
    state_dict = map_myPT_keys(sd, weights)
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
        raise CheckpointError(f"{config_file}: {e}") from None
    check_fits(config, state_dict, config_file, weights, whole=False)
    if has_block_bias:
        with torch.device("meta"):
            expected = GPT(config).state_dict()
        for k, v in expected.items():
            if k.endswith(".bias") and k not in state_dict and not k.startswith("lm_head."):
                state_dict[k] = torch.zeros(v.shape, dtype=next(iter(state_dict.values())).dtype)
    check_fits(config, state_dict, config_file, weights)
    tokenizer_state = _myPT_tokenizer(path, tokenizer, config)
    meta = {
        "format": MYPT_FORMAT,
        "model_config": config.to_dict(),
        "tokenizer": tokenizer_state,
        "step": step if isinstance(step, int) else None,
        "metrics": {},
        "created": datetime.fromtimestamp(weights.stat().st_mtime, timezone.utc).isoformat(timespec="seconds"),
        "myPT_config": raw,
        # what carry_optimizer needs: MyPT's parameter order (its optimizer indexes parameters by it)
        "myPT_params": _param_order(sd, raw),
        "myPT_optimizer": optimizer,
        "sft": raw.get("use_loss_mask") is True,
    }
    return Checkpoint(path, config, state_dict, tokenizer_state, meta, has_train_state=False)


def _param_order(sd: dict, raw: dict) -> list[list]:
    """(MyPT name, shape) of each parameter in the order MyPT's named_parameters() gives them:
    the state dict's order, a tied output matrix counted once (as the embedding)."""
    tied = raw.get("tie_weights") is True
    return [[normalize_key(k), list(v.shape)] for k, v in sd.items()
            if not (tied and normalize_key(k) == "lm_head.weight")]


def _myPT_tokenizer_file(path: Path) -> dict | None:
    return _read_json(path / "tokenizer.json") if (path / "tokenizer.json").is_file() else None


def _myPT_tokenizer(path: Path, state: dict | None, config: GPTConfig) -> dict:
    if state is None and config.vocab_size == 50304:
        state = {"token_kind": "gpt2"}  # MyPT's default tokenization for a 50304-row model
    elif state is None:
        raise CheckpointError(f"{path} has no tokenizer state and its vocab_size ({config.vocab_size}) is not "
                              "GPT-2's: cannot tell which tokenizer it was trained with")
    try:
        return from_state(state).state()
    except (TokenizerError, TypeError, ValueError) as e:
        where = path / "tokenizer.json" if (path / "tokenizer.json").is_file() else path
        raise CheckpointError(f"{where}: {e}") from None
