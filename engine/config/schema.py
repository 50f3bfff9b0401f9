"""The keys: one table declares each key once (type, default, range, group, help, the guide's
note, choices, unset meaning, architecture or not). `TrainConfig`'s fields, the flags, the
Config form and the TOML writer are all made from it, so a key cannot drift between them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ..layout import (
    DEVICES,
    MAX_BATCH,
    MAX_BLOCK_SIZE,
    MAX_EMBD,
    MAX_HEADS,
    MAX_LAYERS,
    MAX_VOCAB,
    MLP_TYPES,
    NORM_TYPES,
    POS_ENCODINGS,
    PRECISIONS,
)
from .curriculum import ALLOWED as CURRICULUM_ALLOWED
from .evaluation import check_eval_sets, check_gold_selection, check_saturation

# The Python type a TrainConfig holds for each kind ("steps" may be given as a fraction, but is
# held as steps).
_TYPES: dict[str, type] = {"int": int, "steps": int, "float": float, "bool": bool, "str": str, "choice": str,
                           "curriculum": dict, "table": dict}


@dataclass(frozen=True)
class Field:
    """What the Config screen, the flags and the loader know about one key.

    kind: "int", "float", "bool", "choice", "str", "steps" (an int, or a fraction < 1 of
    max_iters), "curriculum" (phases of datasets, engine.config.curriculum) or "table" (MyPT's
    nested blocks; `table` checks and completes one, raising ValueError worded to follow the key's
    name). low/high bound numbers (open ends when low_open/high_open). nullable keys may be unset
    (None); `unset` says what unset means. `guide` is the guide's one-line reason for its phase 3a
    value, where the guide gives one. `aliases` are other spellings of a choice (MyPT's "bfloat16"
    for "bf16").
    """

    name: str
    kind: str
    group: str
    help: str
    default: Any = None
    guide: str = ""
    choices: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    nullable: bool = False
    unset: str = ""
    architecture: bool = False
    aliases: tuple[tuple[str, str], ...] = ()
    ceiling: int | None = None  # past any size this trainer can hold: refused, though not shown as a range
    table: Callable[[Any], Any] | None = None

    @property
    def type(self) -> Any:
        """The type of the key's TrainConfig field (`int | None` for a nullable int)."""
        held = _TYPES[self.kind]
        return held | None if self.nullable else held

    @property
    def note(self) -> str:
        """The line to show beside the key: the guide's reason, else what the key does."""
        return self.guide or self.help

    @property
    def allowed(self) -> str:
        """The allowed values in words, e.g. 'an integer >= 1' or 'one of "pad", "pack"'."""
        if self.kind == "bool":
            text = "true or false"
        elif self.kind == "choice":
            text = "one of " + ", ".join(f'"{c}"' for c in self.choices)
        elif self.kind == "str":
            text = "a string"
        elif self.kind == "table":
            text = "a table (TOML: key = { ... }; flags: a JSON object)"
        elif self.kind == "steps":
            text = "an integer >= 0 (steps) or a fraction in [0, 1) of max_iters"
        elif self.kind == "curriculum":
            text = CURRICULUM_ALLOWED
        else:
            noun = "an integer" if self.kind == "int" else "a number"
            text = noun + _range_text(self)
        if self.nullable:
            text += f", or unset ({self.unset})"
        return text


def _range_text(f: Field) -> str:
    if f.low is not None and f.high is not None:
        if f.kind == "int":
            return f" from {_num(f.low)} to {_num(f.high)}"
        return f" in {'(' if f.low_open else '['}{_num(f.low)}, {_num(f.high)}{')' if f.high_open else ']'}"
    if f.low is not None:
        return f" {'>' if f.low_open else '>='} {_num(f.low)}"
    if f.high is not None:
        return f" {'<' if f.high_open else '<='} {_num(f.high)}"
    return ""


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)


# Groups in file order: (id, title as the guide heads them).
GROUPS: tuple[tuple[str, str], ...] = (
    ("metadata", "Metadata"),
    ("architecture", "Architecture (unchanged from the base model)"),
    ("training", "Training parameters"),
    ("loss_masking", "Loss masking (SFT-specific)"),
    ("episode_sampling", "Episode-indexed settings (reproducibility)"),
    ("sft_pipeline", "SFT pipeline (MyPT's phases): memory, noise, freezing, curriculum"),
    ("run_outputs", "Logs and saved checkpoints"),
    ("evaluation", "Evaluation"),
)
GROUP_TITLES: dict[str, str] = dict(GROUPS)

_SEED_MAX = 2**32 - 1  # numpy's RandomState takes seeds below 2**32

# Every key, in file order. Defaults are the guide's phase 3a values where it gives one.
_KEYS: tuple[Field, ...] = (
    Field("name", "str", "metadata", "Display name of this config", default=""),
    Field("description", "str", "metadata", "What this config is for", default=""),

    Field("n_layer", "int", "architecture", "Transformer blocks", default=32, low=1, ceiling=MAX_LAYERS,
          architecture=True, guide="Keep same depth as pretrained model"),
    Field("n_embd", "int", "architecture", "Embedding width (a multiple of n_head)", default=1280, low=1,
          ceiling=MAX_EMBD, architecture=True, guide="Keep same embedding dimension"),
    Field("n_head", "int", "architecture", "Attention heads per block", default=20, low=1, ceiling=MAX_HEADS,
          architecture=True, guide="Keep same attention heads"),
    Field("block_size", "int", "architecture", "Context length in tokens", default=1024, low=2,
          ceiling=MAX_BLOCK_SIZE, architecture=True, guide="Keep long context (good for conversations)"),
    Field("dropout", "float", "architecture", "Dropout probability while training", default=0.15, low=0,
          high=1, high_open=True,
          guide="Slightly increased from 0.1 to prevent overfitting on small dataset"),
    Field("vocab_size", "int", "architecture",
          "Rows of the token embedding and output layer (50304 for gpt2: 50257 + the myPT tags, padded)",
          low=1, ceiling=MAX_VOCAB, nullable=True, unset="the tokenizer's model vocabulary size", architecture=True),
    Field("bias", "bool", "architecture", "Bias terms in the linear and norm layers", default=False,
          architecture=True),
    Field("pos_encoding", "choice", "architecture",
          "Positions: learned absolute embeddings (GPT-2) or rotary (RoPE)", default="learned",
          choices=POS_ENCODINGS, architecture=True),
    Field("mlp_type", "choice", "architecture",
          "Feed-forward block: GELU MLP, GELU with GPT-2's tanh approximation, or SwiGLU", default="gelu",
          choices=MLP_TYPES, architecture=True),
    Field("norm_type", "choice", "architecture", "Normalisation: LayerNorm or RMSNorm", default="layernorm",
          choices=NORM_TYPES, architecture=True),
    Field("tie_weights", "bool", "architecture", "Share the token embedding with the output layer",
          default=False, architecture=True),
    Field("rope_theta", "float", "architecture", 'RoPE base frequency (pos_encoding = "rope")',
          default=10000.0, low=0, low_open=True, architecture=True),
    Field("rope_scale", "float", "architecture",
          'RoPE position interpolation: positions are divided by this (pos_encoding = "rope")',
          default=1.0, low=0, low_open=True, architecture=True),

    Field("learning_rate", "float", "training", "Peak learning rate (after warmup)", default=5e-5, low=0,
          low_open=True,
          guide="Lower LR for fine-tuning - prevents catastrophic forgetting of pretrained knowledge"),
    Field("min_lr", "float", "training", "Learning rate at the end of the cosine decay", low=0,
          nullable=True, unset="learning_rate / 10"),
    Field("batch_size", "int", "training", "Rows per micro-batch (pad: episodes; pack: packed rows)",
          default=10, low=1, ceiling=MAX_BATCH, guide="Slightly smaller for SFT (more stable with loss masking)"),
    Field("max_iters", "int", "training", "Optimizer steps to train", default=5000, low=1,
          guide="Much fewer iterations - gold dataset is small, high-quality. ~10-20 epochs."),
    Field("warmup_iters", "steps", "training",
          "Linear warmup steps, or a fraction of max_iters (0.03 = 3%)", default=150, low=0,
          guide="Shorter warmup for fine-tuning"),
    Field("eval_interval", "int", "training", "Evaluate every this many steps", default=500, low=1,
          guide="More frequent eval - catch overfitting early on small dataset"),
    Field("eval_iters", "int", "training",
          "Batches per evaluation, from the fixed validation set (and a fixed train subset)", default=200, low=1),
    Field("save_every", "int", "training", "Save a checkpoint every this many steps", default=1000, low=1,
          guide="Save more frequently to track progress"),
    Field("weight_decay", "float", "training",
          "AdamW weight decay (not on biases, norms, embeddings)", default=0.05, low=0,
          guide="Moderate regularization for SFT"),
    Field("beta1", "float", "training", "AdamW beta1", default=0.9, low=0, high=1, high_open=True),
    Field("beta2", "float", "training", "AdamW beta2", default=0.95, low=0, high=1, high_open=True),
    Field("gradient_accumulation_steps", "int", "training",
          "Micro-batches per optimizer step: effective batch = batch_size x this", default=1, low=1, ceiling=MAX_BATCH,
          guide="Use when batch_size does not fit in memory (10 x 2 = effective 20)"),
    Field("grad_clip", "float", "training", "Clip the gradient norm to this (0 = off)", default=1.0, low=0),
    Field("seed", "int", "training", "Seed for weight init and dropout", default=1337, low=0, high=_SEED_MAX),
    Field("device", "choice", "training", "auto = cuda when available, else cpu", default="auto",
          choices=DEVICES),
    Field("precision", "choice", "training",
          "auto = bf16 on GPUs that support it, fp16 on other GPUs, fp32 on CPU", default="auto",
          choices=PRECISIONS),
    Field("compile", "choice", "training",
          "torch.compile the training step (slower start, faster steps): auto = on for a CUDA GPU, off on the CPU",
          default="auto", choices=("auto", "true", "false")),
    Field("peak_tflops", "float", "training", "Peak TFLOP/s of one device, for the MFU figure", low=0, low_open=True,
          nullable=True, unset="the GPU's bf16 peak from a table of common GPUs; no MFU on the CPU"),
    Field("log_interval", "int", "training", "Print progress every this many steps", default=10, low=1),

    Field("use_loss_mask", "bool", "loss_masking",
          "Loss only on assistant tokens (false: on every token)", default=True,
          guide="CRITICAL: Train only on assistant responses"),

    Field("batch_sampling_mode", "choice", "episode_sampling",
          "epoch: each episode once per epoch; random: with replacement", default="epoch",
          choices=("epoch", "random"), guide="Deterministic epoch-based sampling"),
    Field("epoch_seed", "int", "episode_sampling", "Seed of the episode order", default=3301, low=0,
          high=_SEED_MAX, guide="Fixed seed for reproducibility (phase 3a = 3301)"),
    Field("epoch_shuffle", "bool", "episode_sampling",
          "Shuffle episodes each epoch (false: file order)", default=True, guide="Shuffle episodes each epoch"),
    Field("epoch_drop_last", "bool", "episode_sampling",
          "Drop an epoch's incomplete last batch", default=True, guide="Drop incomplete final batch"),
    Field("episode_min_tokens", "int", "episode_sampling",
          "Skip episodes shorter than this many tokens", default=10, low=0,
          guide="Skip episodes shorter than 10 tokens"),
    Field("batching", "choice", "episode_sampling",
          "pad: one episode per row (MyPT's shape); pack: whole episodes packed into rows", default="pad",
          choices=("pad", "pack")),
    Field("overlong", "choice", "episode_sampling",
          "Episodes longer than block_size + 1 tokens: drop them, or truncate keeping the head",
          default="truncate", choices=("drop", "truncate")),
    Field("pad_token_id", "int", "episode_sampling", "Token id that fills padding", low=0,
          nullable=True, unset="the tokenizer's <myPT_eot>"),

    Field("use_checkpoint", "bool", "sft_pipeline",
          "Activation checkpointing: keep each block's input only and recompute the block in backward "
          "(less memory, about a third more compute)", default=False),
    Field("neftune_alpha", "float", "sft_pipeline",
          "NEFTune: uniform noise of alpha / sqrt(block_size x n_embd) on the token embeddings while "
          "training (0 = off; the pipeline guide: 5 to 10)", default=0.0, low=0),
    Field("freeze_layers", "int", "sft_pipeline",
          "The first N transformer blocks get no updates and no optimizer state", default=0, low=0),
    Field("freeze_embeddings", "bool", "sft_pipeline",
          "The token (and position) embeddings get no updates and no optimizer state; with "
          "tie_weights the output layer is that matrix too", default=False),
    Field("segment_position_reset", "bool", "sft_pipeline",
          "Packed rows: positions restart at 0 in each episode (false: absolute positions across the "
          "row, MyPT's context extension)", default=True),
    Field("curriculum", "curriculum", "sft_pipeline",
          "Datasets switched at given steps within one run: phases of name, dataset_dir, until_iter",
          nullable=True, unset="one dataset (--dataset) for the whole run"),

    Field("log_file", "str", "run_outputs",
          "Also write MyPT's JSONL training log here (relative to the current folder)", nullable=True,
          unset="only <run>/events.jsonl"),
    Field("terminal_log_file", "str", "run_outputs",
          "Also write the console output (pre-flight, progress lines) here (relative to the current folder)",
          nullable=True, unset="no console log file"),
    Field("save_dtype", "choice", "run_outputs",
          "Dtype of the weights in saved checkpoints (fp32 keeps a resume exact)", default="fp32",
          choices=("fp32", "bf16", "fp16"), aliases=(("float32", "fp32"), ("bfloat16", "bf16"), ("float16", "fp16"))),

    Field("eval_sets", "table", "evaluation",
          'More sets to evaluate at every eval: name = "path/to/prepared" (val split, else train)',
          nullable=True, unset="only the run's own val split", table=check_eval_sets),
    Field("eval_dataset_dir", "str", "evaluation",
          "One more eval set, named after its folder (MyPT's --eval_dataset_dir)",
          nullable=True, unset="none"),
    Field("eval_seed", "int", "evaluation",
          "Seed of the fixed sample each eval set is scored on (loss batches and probe episodes)",
          default=1337, low=0, high=_SEED_MAX),
    Field("eval_prompts_file", "str", "evaluation",
          "MyPT prompts JSON ({prompts, expected_outputs}) probed at every probe round",
          nullable=True, unset="no prompts file"),
    Field("eval_max_new_tokens", "int", "evaluation",
          "Most tokens a probe reply may take (a reply also stops at gold length + 16)", default=64, low=1),
    Field("probe_interval", "int", "evaluation",
          "Greedy probe replies every this many evals (0 = no probes)", default=1, low=0),
    Field("probe_episodes", "int", "evaluation",
          "Episodes per eval set in the fixed probe sample", default=16, low=1),
    Field("probe_budget", "float", "evaluation",
          "Largest share of the run's time probes may take (a round that would exceed it is skipped)",
          default=0.1, low=0, high=1, low_open=True),
    Field("gold_selection", "table", "evaluation",
          "MyPT's checkpoint choice for best/: strategy (val_loss, hybrid, external_gate), guards, external_gate",
          nullable=True, unset="val_loss with MyPT's guards", table=check_gold_selection),
    Field("token_accuracy_saturation", "table", "evaluation",
          "MyPT's saturation detector on masked token accuracy; action log_and_flag or stop",
          nullable=True, unset="off", table=check_saturation),
    Field("early_stopping_patience", "int", "evaluation",
          "Stop when early_stopping_metric has not improved for this many evals (0 = off)", default=0, low=0),
    Field("early_stopping_metric", "str", "evaluation",
          "val_loss, train_loss, or <set>.loss / .token_accuracy / .exact_match / .format", default="val_loss"),
)

FIELDS: dict[str, Field] = {f.name: f for f in _KEYS}

ARCHITECTURE_KEYS: tuple[str, ...] = tuple(n for n, f in FIELDS.items() if f.architecture)
