"""Checkpoints by name: resolve `--model X`, list them for pickers, read either kind (ours or a
MyPT folder), build the model, and check a checkpoint fits a dataset's tokenizer.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..layout import META_FILE, WEIGHTS_FILE
from ..model import GPT
from ..tokenizer import TokenizerError, from_state
from .myPT import load_myPT, myPT_source
from .native import Checkpoint, CheckpointError, load_native

STEP_DIR = re.compile(r"^step_(\d+)$")


@dataclass(frozen=True)
class CheckpointInfo:
    """One entry of `list_checkpoints`: what a picker shows."""

    name: str  # what `--model` accepts: path relative to the checkpoints root
    path: Path
    step: int | None
    run: str | None  # the run folder it belongs to, if any
    modified: float  # mtime of its metadata, seconds since the epoch
    kind: str = field(default="mypt")  # "mypt" or "myPT" (a MyPT folder)


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint folder (ours or MyPT's, or MyPT's single .pt file) onto the CPU without
    building the model."""
    path = Path(path)
    if (path / META_FILE).is_file():
        return load_native(path)
    if myPT_source(path) is not None:
        return load_myPT(path)
    raise CheckpointError(f"{path} is not a checkpoint: it has neither {META_FILE} + {WEIGHTS_FILE} "
                          "nor MyPT's config.json + model.pt (or latest.pt / final.pt)")


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


# -- finding checkpoints ----------------------------------------------------------------------

def is_checkpoint(path: Path) -> bool:
    return (path / META_FILE).is_file() or myPT_source(path) is not None


def _newest_step(run: Path) -> Path | None:
    steps = [(int(m.group(1)), p) for p in run.iterdir()
             if p.is_dir() and (m := STEP_DIR.match(p.name)) and is_checkpoint(p)]
    return max(steps)[1] if steps else None


def resolve_checkpoint(name_or_path: str | Path, root: str | Path = "checkpoints") -> Path:
    """`--model X`: the path X, else ROOT/X; a run folder gives its newest step_* checkpoint."""
    given = Path(name_or_path)
    candidates = [given] if given.is_absolute() else [given, Path(root) / given]
    for c in candidates:
        if c.is_file() and myPT_source(c) is not None:
            return c  # MyPT's single-file checkpoint, named by its path
        if not c.is_dir():
            continue
        if is_checkpoint(c):
            return c
        newest = _newest_step(c)
        if newest is not None:
            return newest
        raise CheckpointError(f"{c} holds no checkpoint: no {META_FILE} (or MyPT's config.json + model.pt, "
                              "latest.pt, final.pt) and no step_* checkpoint folders")
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
        f, kind, step = myPT_source(path) or path, "myPT", None
        if f.is_dir():
            f = f / "model.pt"
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
