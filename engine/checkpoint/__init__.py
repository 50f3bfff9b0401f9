"""Checkpoints: one folder per save, weights in safetensors, metadata in JSON.

    native.py   our folder (`mypt_checkpoint_v1`): save_checkpoint, load_train_state, Checkpoint
    myPT.py     MyPT's checkpoints (a folder, or a legacy single .pt file) read as a Checkpoint
    myPT_optim.py  a MyPT run's AdamW state mapped onto our optimizer
    load.py     by name: resolve_checkpoint, list_checkpoints, load_checkpoint (either kind),
                load_model, check_tokenizer

Callers import from `engine.checkpoint`; the names below are the whole public surface.
"""

from .load import (
    STEP_DIR,
    CheckpointInfo,
    check_tokenizer,
    is_checkpoint,
    list_checkpoints,
    load_checkpoint,
    load_model,
    resolve_checkpoint,
)
from .myPT import MYPT_FORMAT, map_myPT_keys
from .myPT_optim import carry_optimizer
from .native import FORMAT, RESERVED_META, Checkpoint, CheckpointError, load_train_state, save_checkpoint, unwrap

__all__ = ["FORMAT", "MYPT_FORMAT", "RESERVED_META", "STEP_DIR", "Checkpoint", "CheckpointError", "CheckpointInfo",
           "carry_optimizer", "check_tokenizer", "is_checkpoint", "list_checkpoints", "load_checkpoint", "load_model",
           "load_train_state", "map_myPT_keys", "resolve_checkpoint", "save_checkpoint", "unwrap"]
