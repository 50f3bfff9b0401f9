"""Our checkpoint folder (`mypt_checkpoint_v1`): written atomically, read back without unpickling code.

    step_000500/
        model.safetensors   the weights (nanoGPT key names; a tied output matrix stored once)
        meta.json           {"format": "mypt_checkpoint_v1", "model_config", "tokenizer", "step",
                             "metrics", "created", ...extra}
        train_state.pt      optional: optimizer / sampler / RNG state for resuming

A save is written to a hidden temp folder beside the target, fsynced, then renamed into place
(on Linux an existing folder is swapped atomically), so a crash never damages the previous
checkpoint. Loading never unpickles arbitrary objects: weights come from safetensors, and any
`.pt` file is read with `torch.load(weights_only=True)`, which refuses code-running pickles.
`Checkpoint` and the safe readers serve MyPT folders (engine.checkpoint.myPT) as well.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import re
import shutil
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from .. import jsonio
from ..atomic import fsync_path, replace_folder
from ..errors import MyptError
from ..layout import META_FILE, TRAIN_STATE_FILE, WEIGHTS_FILE
from ..model import GPT, GPTConfig

FORMAT = "mypt_checkpoint_v1"
RESERVED_META = ("format", "model_config", "tokenizer", "step", "metrics", "created")


class CheckpointError(MyptError, ValueError):
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

    @property
    def base_model(self) -> bool:
        """Never fine-tuned on chat episodes: imported GPT-2 weights, a MyPT checkpoint trained
        without a loss mask, or ours trained on a token stream (meta "kind": "pretrain"). Generation,
        chat and eval continue its prompts as plain text."""
        return "imported_from" in self.meta or self.meta.get("sft") is False or self.meta.get("kind") == "pretrain"


# -- saving -----------------------------------------------------------------------------------

SAVE_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def save_checkpoint(path: str | Path, model: torch.nn.Module, *, tokenizer_state: dict, step: int,
                    metrics: dict | None = None, extra: dict | None = None,
                    train_state: dict | None = None, dtype: str | None = None) -> Path:
    """Write a checkpoint folder atomically; an existing folder of that name is replaced whole.
    `dtype` ("fp32", "bf16", "fp16") is what the floating-point weights are stored as."""
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
        **({"weights_dtype": dtype} if dtype else {}),
    }
    meta_text = json.dumps(meta, indent=2)  # fails before anything is written if not JSON-able
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".mypt-tmp-{path.name}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        weights = gpt.weights_for_saving()
        if dtype is not None:
            weights = {k: v.to(SAVE_DTYPES[dtype]) if v.is_floating_point() else v for k, v in weights.items()}
        _write_weights(weights, tmp / WEIGHTS_FILE, path)
        (tmp / META_FILE).write_text(meta_text + "\n", encoding="utf-8")
        if train_state is not None:
            try:
                torch.save(train_state, tmp / TRAIN_STATE_FILE)
            except RuntimeError as e:  # torch reports a failed write (disk full) as a RuntimeError
                raise CheckpointError(f"{path}: the training state could not be written "
                                      f"({str(e).splitlines()[0]}): is the disk full?") from None
        for f in tmp.iterdir():
            fsync_path(f)
        fsync_path(tmp)
        replace_folder(tmp, path, aside=path.parent / f".mypt-tmp-old-{path.name}-{uuid.uuid4().hex[:8]}")
    except OSError as e:  # a full disk, a size limit: name the checkpoint, not our temp folder
        shutil.rmtree(tmp, ignore_errors=True)
        raise OSError(e.errno, e.strerror or str(e), str(path)) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def _write_weights(weights: dict[str, torch.Tensor], f: Path, path: Path) -> None:
    """model.safetensors; safetensors reports a failed write (a full disk, a size limit) as its own
    error with the OS error in its text: turn it back into the OSError it is, naming the checkpoint."""
    from safetensors import SafetensorError
    from safetensors.torch import save_file

    try:
        save_file(weights, str(f), metadata={"format": "pt"})
    except SafetensorError as e:
        code = re.search(r"(?:code: |os error )(\d+)", str(e))
        if code is None:
            raise CheckpointError(f"{path}: the weights could not be written ({e})") from None
        raise OSError(int(code.group(1)), os.strerror(int(code.group(1))), str(path / WEIGHTS_FILE)) from None


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

def load_native(path: Path) -> Checkpoint:
    """Our folder: meta.json checked against FORMAT, the weights from safetensors (nothing unpickled)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    meta = _read_json(path / META_FILE)
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path / META_FILE}: format is {meta.get('format')!r}, expected {FORMAT!r}")
    if not isinstance(meta.get("model_config"), dict):
        raise CheckpointError(f"{path / META_FILE}: model_config must be an object of the model's sizes")
    try:
        config = GPTConfig.from_dict(meta["model_config"])
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{path / META_FILE}: model_config: {e}") from None
    if not isinstance(meta.get("tokenizer"), dict):
        raise CheckpointError(f"{path / META_FILE}: no tokenizer state")
    weights = path / WEIGHTS_FILE
    if not weights.is_file():
        raise CheckpointError(f"{weights} is missing")
    try:
        with open(weights, "rb"):  # safetensors words a file it may not open as missing
            pass
        state_dict = load_file(str(weights))
    except OSError as e:
        raise CheckpointError(f"{weights} cannot be read: {e.strerror or e}") from None
    except SafetensorError as e:
        raise CheckpointError(f"{weights} cannot be read: {e}") from None
    check_fits(config, state_dict, path / META_FILE, weights)
    return Checkpoint(path, config, state_dict, meta["tokenizer"], meta, (path / TRAIN_STATE_FILE).is_file())


def check_fits(config: GPTConfig, state_dict: dict[str, torch.Tensor], meta_file: Path, weights_file: Path,
               whole: bool = True) -> None:
    """The sizes a checkpoint's metadata gives, against the weights its file holds, before a model
    of those sizes is allocated: metadata saying 10,000 layers beside a file of two would
    otherwise ask for terabytes. `whole=False` skips the parameter total (MyPT's missing biases
    are filled in later)."""
    from ..model import normalize_key
    from ..sizing import count_params

    shapes = {normalize_key(k): tuple(v.shape) for k, v in state_dict.items()}
    wte = shapes.get("transformer.wte.weight", ())
    layers = {k.split(".")[2] for k in shapes if k.startswith("transformer.h.")}
    odd = sorted(set(map(str, range(config.n_layer))) ^ layers, key=lambda x: (len(x), x))[:1]
    which = f" ({'missing' if odd and odd[0] not in layers else 'unexpected'} transformer.h.{odd[0]})" if odd else ""
    facts = [("n_layer", config.n_layer, len(layers), "layers" + which)]
    if len(wte) == 2:
        facts += [("vocab_size", config.vocab_size, wte[0], "token rows"), ("n_embd", config.n_embd, wte[1], "columns")]
    if config.pos_encoding == "learned" and len(shapes.get("transformer.wpe.weight", ())) == 2:
        facts.append(("block_size", config.block_size, shapes["transformer.wpe.weight"][0], "positions"))
    for key, said, held, what in facts:
        if said != held:
            raise CheckpointError(f"{meta_file}: {key} is {said}, but {weights_file} holds {held} {what}: "
                                  "the metadata does not describe these weights")
    if config.tie_weights and shapes.get("lm_head.weight") == wte:
        shapes.pop("lm_head.weight")  # a tied output layer stored beside the embedding is the same matrix
    held = sum(math.prod(s) for s in shapes.values())
    if whole and count_params(config) != held:
        raise CheckpointError(f"{meta_file}: the model config makes {count_params(config):,} parameters, but "
                              f"{weights_file} holds {held:,}: the metadata does not describe these weights")


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
    """A checkpoint's JSON file, which must hold an object (CheckpointError naming the place)."""
    try:
        obj = jsonio.read_json(f)
    except jsonio.JsonError as e:
        raise CheckpointError(str(e)) from None
    except OSError as e:
        raise CheckpointError(f"{f} cannot be read: {e.strerror or e}") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{f}: expected a JSON object")
    return obj
