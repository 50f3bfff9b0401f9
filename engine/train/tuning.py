"""What the config asks of the model itself before the optimizer is made: frozen blocks and embeddings
(no updates, no optimizer state), NEFTune noise and activation checkpointing (both training only)."""

from __future__ import annotations

from ..config import TrainConfig
from ..model import GPT
from .job import TrainError


def tune_model(model: GPT, cfg: TrainConfig) -> tuple[list[str], list[str]]:
    """Apply freeze_layers, freeze_embeddings, neftune_alpha and use_checkpoint to `model`.
    Returns (notes, warnings) for the pre-flight report."""
    n_layer = model.config.n_layer
    if cfg.freeze_layers > n_layer:
        where = cfg.origins.get("freeze_layers")
        raise TrainError(f"freeze_layers = {cfg.freeze_layers}" + (f" ({where})" if where else "")
                         + f" exceeds the model's {n_layer} layers")
    frozen = list(model.transformer.h[:cfg.freeze_layers].parameters())
    if cfg.freeze_embeddings:
        frozen.append(model.transformer.wte.weight)
        if "wpe" in model.transformer:
            frozen.append(model.transformer.wpe.weight)
    for p in frozen:
        p.requires_grad_(False)
    model.neftune_alpha = cfg.neftune_alpha
    model.checkpointing = cfg.use_checkpoint
    notes, warnings = [], []
    if frozen:
        total = model.num_params()
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        notes.append(f"frozen: blocks 0-{cfg.freeze_layers - 1}" if cfg.freeze_layers else "frozen:")
        if cfg.freeze_embeddings:
            notes[-1] += (", " if cfg.freeze_layers else " ") + "the embeddings"
        notes[-1] += f"; {trainable:,} of {total:,} parameters train ({trainable / total:.1%})"
    if cfg.freeze_embeddings and model.config.tie_weights:
        warnings.append("freeze_embeddings with tie_weights: the output layer is the embedding matrix, so it "
                        "is frozen too (set freeze_embeddings = false to train it)")
    if cfg.neftune_alpha > 0:
        notes.append(f"NEFTune: embedding noise alpha {cfg.neftune_alpha:g} while training")
    if cfg.use_checkpoint:
        notes.append("activation checkpointing: each block is recomputed in backward")
    return notes, warnings
