"""Checkpoints: one folder per save, weights in safetensors, metadata in JSON.

    step_000500/
        model.safetensors   the weights (nanoGPT key names; a tied output matrix stored once)
        meta.json           {"format": "mypt_checkpoint_v1", "model_config", "tokenizer", "step",
                             "metrics", "created", ...extra}
        train_state.pt      optional: optimizer / sampler / RNG state for resuming

A save is written to a hidden temp folder beside the target, fsynced, then renamed into place
(on Linux an existing folder is swapped atomically), so a crash never damages the previous
checkpoint. Loading never unpickles arbitrary objects: weights come from safetensors, and any
`.pt` file is read with `torch.load(weights_only=True)`, which refuses code-running pickles.

A MyPT checkpoint folder (`model.pt` + `config.json` [+ `tokenizer.json`,
`training_state.json`]) is read as well, its keys mapped onto ours, so MyPT runs continue here.
"""

from __future__ import annotations

import json
import pickle
import re
import shutil
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from .atomic import fsync_path, replace_folder
from .model import GPT, GPTConfig, normalize_key
from .tokenizer import TokenizerError, from_state
from .layout import META_FILE, TRAIN_STATE_FILE, WEIGHTS_FILE

FORMAT = "mypt_checkpoint_v1"
RESERVED_META = ("format", "model_config", "tokenizer", "step", "metrics", "created")
STEP_DIR = re.compile(r"^step_(\d+)$")
MYPT_FORMAT = "myPT_folder"  # meta["format"] of a checkpoint read from a MyPT folder


class CheckpointError(ValueError):
    """A checkpoint that is missing, unreadable, unsafe, or does not fit what it is used for."""


@dataclass
class Checkpoint:
    path: Path
    config: GPTConfig
    state_dict: dict[str, torch.Tensor]
    tokenizer_state: dict
    meta: dict
    has_train_state: bool

    @property
    def step(self) -> int | None:
        return self.meta.get("step")


@dataclass(frozen=True)
class CheckpointInfo:
    """One entry of `list_checkpoints`: what a picker shows."""

    name: str  # what `--model` accepts: path relative to the checkpoints root
    path: Path
    step: int | None
    run: str | None  # the run folder it belongs to, if any
    modified: float  # mtime of its metadata, seconds since the epoch
    kind: str = field(default="mypt")  # "mypt" or "myPT" (a MyPT folder)


# -- saving -----------------------------------------------------------------------------------

def save_checkpoint(path: str | Path, model: torch.nn.Module, *, tokenizer_state: dict, step: int,
                    metrics: dict | None = None, extra: dict | None = None,
                    train_state: dict | None = None) -> Path:
    """Write a checkpoint folder atomically; an existing folder of that name is replaced whole."""
    from safetensors.torch import save_file

    path = Path(path)
    gpt = unwrap(model)
    clash = sorted(set(extra or {}) & set(RESERVED_META))
    if clash:
        raise ValueError(f"extra metadata may not override {', '.join(clash)}")
    if train_state is not None:
        _check_plain(train_state, "train_state")
    meta = {
        "format": FORMAT,
        "model_config": gpt.config.to_dict(),
        "tokenizer": tokenizer_state,
        "step": int(step),
        "metrics": metrics or {},
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **(extra or {}),
    }
    meta_text = json.dumps(meta, indent=2)  # fails before anything is written if not JSON-able
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".mypt-tmp-{path.name}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        save_file(gpt.weights_for_saving(), str(tmp / WEIGHTS_FILE), metadata={"format": "pt"})
        (tmp / META_FILE).write_text(meta_text + "\n", encoding="utf-8")
        if train_state is not None:
            torch.save(train_state, tmp / TRAIN_STATE_FILE)
        for f in tmp.iterdir():
            fsync_path(f)
        fsync_path(tmp)
        replace_folder(tmp, path, aside=path.parent / f".mypt-tmp-old-{path.name}-{uuid.uuid4().hex[:8]}")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def unwrap(model: torch.nn.Module) -> GPT:
    """The GPT inside a torch.compile or DDP wrapper."""
    while not isinstance(model, GPT):
        inner = getattr(model, "_orig_mod", None) or getattr(model, "module", None)
        if inner is None:
            raise TypeError(f"expected a GPT model, got {type(model).__name__}")
        model = inner
    return model


_PLAIN = (str, int, float, bool, type(None), torch.Tensor, torch.Size, torch.dtype, torch.device)


def _check_plain(obj: Any, where: str) -> None:
    """Refuse, at save time, what `torch.load(weights_only=True)` would refuse at resume time."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if not isinstance(k, (str, int)):
                raise TypeError(f"{where} has a key of type {type(k).__name__}; use str or int keys")
            _check_plain(v, f"{where}[{k!r}]")
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            _check_plain(v, f"{where}[{i}]")
    elif not isinstance(obj, _PLAIN):
        raise TypeError(f"{where} is a {type(obj).__module__}.{type(obj).__name__}: train state may hold only "
                        "tensors, numbers, strings, lists and dicts (it is loaded with weights_only=True)")


# -- loading ----------------------------------------------------------------------------------

def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint folder (ours or MyPT's) onto the CPU without building the model."""
    path = Path(path)
    if (path / META_FILE).is_file():
        return _load_native(path)
    if (path / "config.json").is_file() and (path / "model.pt").is_file():
        return _load_myPT(path)
    raise CheckpointError(f"{path} is not a checkpoint: it has neither {META_FILE} + {WEIGHTS_FILE} "
                          "nor MyPT's config.json + model.pt")


def _load_native(path: Path) -> Checkpoint:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    meta = _read_json(path / META_FILE)
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path / META_FILE}: format is {meta.get('format')!r}, expected {FORMAT!r}")
    try:
        config = GPTConfig.from_dict(meta.get("model_config") or {})
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{path / META_FILE}: model_config: {e}") from None
    if not isinstance(meta.get("tokenizer"), dict):
        raise CheckpointError(f"{path / META_FILE}: no tokenizer state")
    weights = path / WEIGHTS_FILE
    if not weights.is_file():
        raise CheckpointError(f"{weights} is missing")
    try:
        state_dict = load_file(str(weights))
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{weights} cannot be read: {e}") from None
    return Checkpoint(path, config, state_dict, meta["tokenizer"], meta, (path / TRAIN_STATE_FILE).is_file())


def load_train_state(path: str | Path) -> dict:
    """Optimizer / sampler / RNG state saved with a checkpoint (weights_only loading)."""
    f = Path(path) / TRAIN_STATE_FILE
    if not f.is_file():
        raise CheckpointError(f"{Path(path)} has no {TRAIN_STATE_FILE}: it cannot be resumed, only used to initialise")
    state = _safe_torch_load(f)
    if not isinstance(state, dict):
        raise CheckpointError(f"{f} holds a {type(state).__name__}, expected a dict")
    return state


def _safe_torch_load(f: Path) -> Any:
    try:
        return torch.load(f, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(f"refusing {f}: it holds objects other than tensors and plain data, which could "
                              f"run code when loaded ({str(e).splitlines()[0]})") from None
    except (RuntimeError, EOFError, OSError) as e:
        raise CheckpointError(f"{f} cannot be read: {e}") from None


def _read_json(f: Path) -> dict:
    try:
        obj = json.loads(f.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{f}:{e.lineno}: not valid JSON: {e.msg}") from None
    except OSError as e:
        raise CheckpointError(f"{f} cannot be read: {e}") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{f}: expected a JSON object")
    return obj


def load_model(name_or_path: str | Path, device: str | torch.device = "cpu",
               root: str | Path = "checkpoints") -> tuple[GPT, Checkpoint]:
    """Resolve, read and build: the model in eval mode on `device`, and its checkpoint.

    The returned Checkpoint's state_dict is emptied (the weights live in the model), so a large
    model is not held in memory twice.
    """
    ckpt = load_checkpoint(resolve_checkpoint(name_or_path, root))
    model = GPT(ckpt.config)
    try:
        model.load_weights(ckpt.state_dict)
    except ValueError as e:
        raise CheckpointError(f"{ckpt.path}: {e}") from None
    ckpt.state_dict = {}
    return model.to(device).eval(), ckpt


# -- MyPT folders -----------------------------------------------------------------------------

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


def _load_myPT(path: Path) -> Checkpoint:
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
    if has_block_bias:
        with torch.device("meta"):
            expected = GPT(config).state_dict()
        for k, v in expected.items():
            if k.endswith(".bias") and k not in state_dict and not k.startswith("lm_head."):
                state_dict[k] = torch.zeros(v.shape, dtype=next(iter(state_dict.values())).dtype)
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


# -- finding checkpoints ----------------------------------------------------------------------

def is_checkpoint(path: Path) -> bool:
    return (path / META_FILE).is_file() or ((path / "config.json").is_file() and (path / "model.pt").is_file())


def _newest_step(run: Path) -> Path | None:
    steps = [(int(m.group(1)), p) for p in run.iterdir()
             if p.is_dir() and (m := STEP_DIR.match(p.name)) and is_checkpoint(p)]
    return max(steps)[1] if steps else None


def resolve_checkpoint(name_or_path: str | Path, root: str | Path = "checkpoints") -> Path:
    """`--model X`: the path X, else ROOT/X; a run folder gives its newest step_* checkpoint."""
    given = Path(name_or_path)
    candidates = [given] if given.is_absolute() else [given, Path(root) / given]
    for c in candidates:
        if not c.is_dir():
            continue
        if is_checkpoint(c):
            return c
        newest = _newest_step(c)
        if newest is not None:
            return newest
        raise CheckpointError(f"{c} holds no checkpoint: no {META_FILE} (or MyPT's config.json + model.pt) "
                              "and no step_* checkpoint folders")
    existing = [info.name for info in list_checkpoints(root)]
    where = " or ".join(str(c) for c in dict.fromkeys(candidates))
    if existing:
        shown = ", ".join(existing[:20]) + (f" and {len(existing) - 20} more" if len(existing) > 20 else "")
        listing = f"checkpoints in {root}/: {shown}"
    else:
        listing = f"there are no checkpoints in {root}/ yet (train one, or `mypt import gpt2`)"
    raise CheckpointError(f"no checkpoint {str(name_or_path)!r} (looked for {where}); {listing}")


def list_checkpoints(root: str | Path = "checkpoints") -> list[CheckpointInfo]:
    """Every checkpoint under root: ROOT/NAME and ROOT/RUN/<step_*|best|...>, sorted by name."""
    root = Path(root)
    if not root.is_dir():
        return []
    found: list[CheckpointInfo] = []
    for top in sorted(root.iterdir()):
        if not top.is_dir() or top.name.startswith("."):
            continue
        if is_checkpoint(top):
            found.append(_info(top, top.name, None))
            continue
        for sub in sorted(top.iterdir()):
            if sub.is_dir() and not sub.name.startswith(".") and is_checkpoint(sub):
                found.append(_info(sub, f"{top.name}/{sub.name}", top.name))
    return found


def _info(path: Path, name: str, run: str | None) -> CheckpointInfo:
    if (path / META_FILE).is_file():
        f, kind = path / META_FILE, "mypt"
        try:
            step = json.loads(f.read_text(encoding="utf-8")).get("step")
        except (OSError, json.JSONDecodeError, AttributeError):
            step = None
    else:
        f, kind, step = path / "model.pt", "myPT", None
        try:
            step = json.loads((path / "training_state.json").read_text(encoding="utf-8")).get("step")
        except (OSError, json.JSONDecodeError, AttributeError):
            pass
    if step is None and (m := STEP_DIR.match(path.name)):
        step = int(m.group(1))
    return CheckpointInfo(name, path, step if isinstance(step, int) else None, run, f.stat().st_mtime, kind)


# -- fitness for a dataset --------------------------------------------------------------------

def _describe(state: dict) -> str:
    kind = state.get("tokenization") or state.get("token_kind")
    if kind == "char":
        return f"char ({len(state.get('chars') or [])} characters, vocabulary {state.get('model_vocab_size')})"
    return f"{kind} (vocabulary {state.get('model_vocab_size')})"


def check_tokenizer(checkpoint: Checkpoint, tokenizer_state: dict, source: str | Path = "the dataset") -> None:
    """Refuse a checkpoint whose tokenizer or vocabulary differs from a dataset's."""
    try:
        dataset_tok = from_state(tokenizer_state)
        same = from_state(checkpoint.tokenizer_state).same_as(tokenizer_state)
    except TokenizerError as e:
        raise CheckpointError(f"cannot compare the tokenizers of {checkpoint.path} and {source}: {e}") from None
    if not same:
        raise CheckpointError(
            f"tokenizer mismatch: checkpoint {checkpoint.path} uses {_describe(checkpoint.tokenizer_state)}, "
            f"but {source} was prepared with {_describe(dataset_tok.state())}; prepare the data with the "
            "checkpoint's tokenization (--tokenization) or pick a matching checkpoint")
    if checkpoint.config.vocab_size < dataset_tok.model_vocab_size:
        raise CheckpointError(
            f"vocabulary mismatch: checkpoint {checkpoint.path} has {checkpoint.config.vocab_size} embedding rows, "
            f"but {source} uses token ids up to {dataset_tok.model_vocab_size - 1}")
