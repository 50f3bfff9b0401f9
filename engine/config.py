"""Training configuration: every key of the guide, its metadata, loading, flags and saving.

One flat namespace of keys (the guide's names) reaches the trainer through three doors, each
checked by the same rules so a mistake reads the same wherever it was made:

- a config file: TOML (mypt's format, flat, groups are comments) or MyPT's JSON;
- command-line flags `--<key>` (made from FIELDS by mypt_tui.flags), which override the file;
- the Config screen, which validates a field as it is typed and saves TOML back with the
  user's comments and key order (tomlkit).

`FIELDS` describes every key (type, default, group, help, allowed values, architecture or
not); the dataclass `TrainConfig` holds the values. A `TrainConfig` remembers which keys were
set explicitly (`explicit`) and where (`origins`), because continuing from a checkpoint takes
the architecture from the checkpoint and only an explicit contradiction is an error.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import tomli

__all__ = [
    "ARCHITECTURE_KEYS", "ConfigError", "FIELDS", "Field", "GROUPS", "GROUP_TITLES", "TrainConfig",
    "adopt_architecture", "apply_overrides", "architecture_conflicts",
    "edit_toml", "field_error", "format_value", "load_config", "load_config_text",
    "parse_field", "parse_flag", "resolve_config_path", "save_config_preserving",
    "to_toml", "validate_values",
]


class ConfigError(ValueError):
    """A config problem, worded for the user: names the file (or flag), key, allowed values.

    `problems` holds one line per problem (str() joins them); `by_key` maps each key a problem
    is about to its message, so a form can mark the fields in question.
    """

    def __init__(self, problems: list[str], by_key: dict[str, str] | None = None):
        self.problems = list(problems)
        self.by_key = dict(by_key or {})
        super().__init__("\n".join(self.problems))


# ---------------------------------------------------------------------------------------------
# The keys
# ---------------------------------------------------------------------------------------------

@dataclass
class TrainConfig:
    """Every training key with its default (the guide's phase 3a values where it gives one).

    Construction validates (a `TrainConfig` is always consistent). `warmup_iters` given as a
    fraction < 1 is resolved to steps of `max_iters` (the fraction is kept in
    `warmup_fraction` so a `--max_iters` override re-resolves it). `min_lr`, `vocab_size` and
    `pad_token_id` may be None (unset): see `lr_floor` and the trainer for what they become.
    """

    # metadata
    name: str = ""
    description: str = ""
    # architecture
    n_layer: int = 32
    n_embd: int = 1280
    n_head: int = 20
    block_size: int = 1024
    dropout: float = 0.15
    vocab_size: int | None = None
    bias: bool = False
    pos_encoding: str = "learned"
    mlp_type: str = "gelu"
    norm_type: str = "layernorm"
    tie_weights: bool = False
    rope_theta: float = 10000.0
    rope_scale: float = 1.0
    # training
    learning_rate: float = 5e-5
    min_lr: float | None = None
    batch_size: int = 10
    max_iters: int = 5000
    warmup_iters: int = 150
    eval_interval: int = 500
    eval_iters: int = 200
    save_every: int = 1000
    weight_decay: float = 0.05
    beta1: float = 0.9
    beta2: float = 0.95
    gradient_accumulation_steps: int = 1
    grad_clip: float = 1.0
    seed: int = 1337
    device: str = "auto"
    precision: str = "auto"
    compile: bool = False
    log_interval: int = 10
    # loss masking
    use_loss_mask: bool = True
    # episode sampling
    batch_sampling_mode: str = "epoch"
    epoch_seed: int = 3301
    epoch_shuffle: bool = True
    epoch_drop_last: bool = True
    episode_min_tokens: int = 10
    batching: str = "pad"
    overlong: str = "truncate"
    pad_token_id: int | None = None

    # bookkeeping, not keys: which keys were set explicitly, and where (file:line or --flag);
    # underscored so that asdict() users can drop them. Read them as .origins, .warmup_fraction
    explicit: set[str] = field(default_factory=set, compare=False, repr=False)
    _origins: dict[str, str] = field(default_factory=dict, compare=False, repr=False)
    _warmup_fraction: float | None = field(default=None, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        values = {name: getattr(self, name) for name in FIELDS}
        clean, problems, by_key = _check_fields(values, where=lambda k: "")
        if not problems:
            problems, by_key = _check_together(clean, self._origins)
        if problems:
            raise ConfigError(problems, by_key)
        for name, value in clean.items():
            setattr(self, name, value)
        if isinstance(values["warmup_iters"], float) and values["warmup_iters"] < 1:
            self._warmup_fraction = values["warmup_iters"]

    @property
    def origins(self) -> dict[str, str]:
        """Where each explicit key was set: "path:line", "--flag", "checkpoint"."""
        return self._origins

    @property
    def warmup_fraction(self) -> float | None:
        """The fraction of max_iters warmup_iters was given as (None: given in steps)."""
        return self._warmup_fraction

    @property
    def lr_floor(self) -> float:
        """Where the cosine schedule ends: `min_lr`, or learning_rate / 10 when unset."""
        return self.learning_rate / 10 if self.min_lr is None else self.min_lr

    @property
    def effective_batch_size(self) -> int:
        """Episodes (pad) or rows (pack) per optimizer step."""
        return self.batch_size * self.gradient_accumulation_steps

    def to_dict(self) -> dict[str, Any]:
        """Every key and its value, in FIELDS order (JSON-ready)."""
        return {name: getattr(self, name) for name in FIELDS}

    def architecture(self) -> dict[str, Any]:
        """The architecture keys and their values (None: unset, e.g. vocab_size)."""
        return {name: getattr(self, name) for name in ARCHITECTURE_KEYS}


@dataclass(frozen=True)
class Field:
    """What the Config screen, the flags and the loader know about one key.

    kind: "int", "float", "bool", "choice", "str", or "steps" (an int, or a fraction < 1 of
    max_iters). low/high bound numbers (open ends when low_open/high_open). nullable keys may
    be unset (None); `unset` says what unset means. `guide` is the guide's one-line reason
    for its phase 3a value, where the guide gives one.
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
        elif self.kind == "steps":
            text = "an integer >= 0 (steps) or a fraction in [0, 1) of max_iters"
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
)
GROUP_TITLES: dict[str, str] = dict(GROUPS)

_SEED_MAX = 2**32 - 1  # numpy's RandomState takes seeds below 2**32

_FIELD_LIST: tuple[Field, ...] = (
    Field("name", "str", "metadata", "Display name of this config"),
    Field("description", "str", "metadata", "What this config is for"),

    Field("n_layer", "int", "architecture", "Transformer blocks", low=1, architecture=True,
          guide="Keep same depth as pretrained model"),
    Field("n_embd", "int", "architecture", "Embedding width (a multiple of n_head)", low=1,
          architecture=True, guide="Keep same embedding dimension"),
    Field("n_head", "int", "architecture", "Attention heads per block", low=1, architecture=True,
          guide="Keep same attention heads"),
    Field("block_size", "int", "architecture", "Context length in tokens", low=2,
          architecture=True, guide="Keep long context (good for conversations)"),
    Field("dropout", "float", "architecture", "Dropout probability while training", low=0,
          high=1, high_open=True,
          guide="Slightly increased from 0.1 to prevent overfitting on small dataset"),
    Field("vocab_size", "int", "architecture",
          "Rows of the token embedding and output layer (50304 for gpt2: 50257 + the myPT tags, padded)",
          low=1, nullable=True, unset="the tokenizer's model vocabulary size", architecture=True),
    Field("bias", "bool", "architecture", "Bias terms in the linear and norm layers",
          architecture=True),
    Field("pos_encoding", "choice", "architecture",
          "Positions: learned absolute embeddings (GPT-2) or rotary (RoPE)",
          choices=("learned", "rope"), architecture=True),
    Field("mlp_type", "choice", "architecture",
          "Feed-forward block: GELU MLP, GELU with GPT-2's tanh approximation, or SwiGLU",
          choices=("gelu", "gelu_tanh", "swiglu"), architecture=True),
    Field("norm_type", "choice", "architecture", "Normalisation: LayerNorm or RMSNorm",
          choices=("layernorm", "rmsnorm"), architecture=True),
    Field("tie_weights", "bool", "architecture",
          "Share the token embedding with the output layer", architecture=True),
    Field("rope_theta", "float", "architecture", 'RoPE base frequency (pos_encoding = "rope")',
          low=0, low_open=True, architecture=True),
    Field("rope_scale", "float", "architecture",
          'RoPE position interpolation: positions are divided by this (pos_encoding = "rope")',
          low=0, low_open=True, architecture=True),

    Field("learning_rate", "float", "training", "Peak learning rate (after warmup)", low=0,
          low_open=True,
          guide="Lower LR for fine-tuning - prevents catastrophic forgetting of pretrained knowledge"),
    Field("min_lr", "float", "training", "Learning rate at the end of the cosine decay", low=0,
          nullable=True, unset="learning_rate / 10"),
    Field("batch_size", "int", "training", "Rows per micro-batch (pad: episodes; pack: packed rows)",
          low=1, guide="Slightly smaller for SFT (more stable with loss masking)"),
    Field("max_iters", "int", "training", "Optimizer steps to train", low=1,
          guide="Much fewer iterations - gold dataset is small, high-quality. ~10-20 epochs."),
    Field("warmup_iters", "steps", "training",
          "Linear warmup steps, or a fraction of max_iters (0.03 = 3%)", low=0,
          guide="Shorter warmup for fine-tuning"),
    Field("eval_interval", "int", "training", "Evaluate every this many steps", low=1,
          guide="More frequent eval - catch overfitting early on small dataset"),
    Field("eval_iters", "int", "training",
          "Batches per evaluation, from the fixed validation set (and a fixed train subset)", low=1),
    Field("save_every", "int", "training", "Save a checkpoint every this many steps", low=1,
          guide="Save more frequently to track progress"),
    Field("weight_decay", "float", "training",
          "AdamW weight decay (not on biases, norms, embeddings)", low=0,
          guide="Moderate regularization for SFT"),
    Field("beta1", "float", "training", "AdamW beta1", low=0, high=1, high_open=True),
    Field("beta2", "float", "training", "AdamW beta2", low=0, high=1, high_open=True),
    Field("gradient_accumulation_steps", "int", "training",
          "Micro-batches per optimizer step: effective batch = batch_size x this", low=1,
          guide="Use when batch_size does not fit in memory (10 x 2 = effective 20)"),
    Field("grad_clip", "float", "training", "Clip the gradient norm to this (0 = off)", low=0),
    Field("seed", "int", "training", "Seed for weight init and dropout", low=0, high=_SEED_MAX),
    Field("device", "choice", "training", "auto = cuda when available, else cpu",
          choices=("auto", "cpu", "cuda")),
    Field("precision", "choice", "training",
          "auto = bf16 on GPUs that support it, fp16 on other GPUs, fp32 on CPU",
          choices=("auto", "fp32", "bf16", "fp16")),
    Field("compile", "bool", "training", "torch.compile the model (slow start, faster steps)"),
    Field("log_interval", "int", "training", "Print progress every this many steps", low=1),

    Field("use_loss_mask", "bool", "loss_masking",
          "Loss only on assistant tokens (false: on every token)",
          guide="CRITICAL: Train only on assistant responses"),

    Field("batch_sampling_mode", "choice", "episode_sampling",
          "epoch: each episode once per epoch; random: with replacement",
          choices=("epoch", "random"), guide="Deterministic epoch-based sampling"),
    Field("epoch_seed", "int", "episode_sampling", "Seed of the episode order", low=0,
          high=_SEED_MAX, guide="Fixed seed for reproducibility (phase 3a = 3301)"),
    Field("epoch_shuffle", "bool", "episode_sampling",
          "Shuffle episodes each epoch (false: file order)", guide="Shuffle episodes each epoch"),
    Field("epoch_drop_last", "bool", "episode_sampling",
          "Drop an epoch's incomplete last batch", guide="Drop incomplete final batch"),
    Field("episode_min_tokens", "int", "episode_sampling",
          "Skip episodes shorter than this many tokens", low=0,
          guide="Skip episodes shorter than 10 tokens"),
    Field("batching", "choice", "episode_sampling",
          "pad: one episode per row (MyPT's shape); pack: whole episodes packed into rows",
          choices=("pad", "pack")),
    Field("overlong", "choice", "episode_sampling",
          "Episodes longer than block_size + 1 tokens: drop them, or truncate keeping the head",
          choices=("drop", "truncate")),
    Field("pad_token_id", "int", "episode_sampling", "Token id that fills padding", low=0,
          nullable=True, unset="the tokenizer's <myPT_eot>"),
)

_DEFAULTS = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
FIELDS: dict[str, Field] = {f.name: dataclasses.replace(f, default=_DEFAULTS[f.name])
                            for f in _FIELD_LIST}
assert list(FIELDS) == [f.name for f in dataclasses.fields(TrainConfig) if f.init][:len(FIELDS)]

ARCHITECTURE_KEYS: tuple[str, ...] = tuple(n for n, f in FIELDS.items() if f.architecture)

# MyPT JSON spellings that mean one of our keys.
_MYPT_RENAMED = {"grad_accum_steps": "gradient_accumulation_steps"}
# MyPT JSON keys mypt does not implement: an error that says so, rather than "unknown key".
_MYPT_UNSUPPORTED = {
    "eval_sets": "extra evaluation datasets are not supported",
    "eval_seed": "evaluation uses the same fixed batches every time, no seed",
    "log_file": "mypt logs to <run>/events.jsonl",
    "use_checkpoint": "activation checkpointing is not supported",
}
_AMP_DTYPES = {"bf16": "bf16", "bfloat16": "bf16", "fp16": "fp16", "float16": "fp16",
               "fp32": "fp32", "float32": "fp32"}


# ---------------------------------------------------------------------------------------------
# Checking values
# ---------------------------------------------------------------------------------------------

class _Invalid(Exception):
    """One value is wrong; the text continues "<key> must be ..."."""


def _show(value: Any) -> str:
    """A value as the user wrote it (TOML/JSON spelling)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _type_word(value: Any) -> str:
    return {bool: "a boolean", str: "a string", int: "an integer", float: "a number",
            list: "a list", dict: "a table"}.get(type(value), type(value).__name__)


def _check_value(f: Field, value: Any) -> Any:
    """Check a value from a file or from code; return it normalised (int 5.0 -> 5)."""
    def bad(type_hint: bool = False) -> _Invalid:
        hint = f" ({_type_word(value)})" if type_hint else ""
        return _Invalid(f"must be {f.allowed}, got {_show(value)}{hint}")

    if value is None:
        if f.nullable:
            return None
        raise bad()
    if f.kind == "bool":
        if not isinstance(value, bool):
            raise bad(type_hint=True)
        return value
    if f.kind in ("str", "choice"):
        if not isinstance(value, str):
            raise bad(type_hint=True)
        if f.kind == "choice" and value not in f.choices:
            close = difflib.get_close_matches(value.lower(), f.choices, n=1, cutoff=0.5)
            err = bad()
            if close:
                err = _Invalid(f'{err} (did you mean "{close[0]}"?)')
            raise err
        return value
    # numbers
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise bad(type_hint=True)
    if isinstance(value, float) and not math.isfinite(value):
        raise bad()
    if f.kind == "steps":
        if isinstance(value, float) and value < 1:
            if value < 0:
                raise bad()
            return value
        if isinstance(value, float) and not value.is_integer():
            raise bad()
        value = int(value)
        if value < 0:
            raise bad()
        return value
    if f.kind == "int":
        if isinstance(value, float):
            if not value.is_integer():
                raise bad(type_hint=True)
            value = int(value)
    else:
        value = float(value)
    if f.low is not None and (value < f.low or (f.low_open and value == f.low)):
        raise bad()
    if f.high is not None and (value > f.high or (f.high_open and value == f.high)):
        raise bad()
    return value


_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")


def _parse_text(f: Field, raw: str, allow_unset: bool = True) -> Any:
    """Parse a value typed by a user (flag or form field), then check it like a file value."""
    text = raw.strip()
    if f.nullable and allow_unset and text.lower() in ("", "none", "null"):
        return None
    shown = _Invalid(f"must be {f.allowed}, got {raw!r}")
    if f.kind in ("str", "choice"):
        value: Any = raw if f.kind == "str" else text
    elif f.kind == "bool":
        if text.lower() in _TRUE:
            value = True
        elif text.lower() in _FALSE:
            value = False
        else:
            raise _Invalid(f"must be true or false (or 1/0, yes/no, on/off), got {raw!r}")
    else:  # int, float, steps: "5", "5.0", "1e-4" (an int field takes a whole float such as 1e3)
        try:
            value = int(text)
        except ValueError:
            try:
                value = float(text)
            except ValueError:
                raise shown from None
            if f.kind == "int" and not value.is_integer():
                raise shown from None
    try:
        return _check_value(f, value)
    except _Invalid as e:
        if f.kind == "choice":
            raise
        raise shown from e


def _coerce(f: Field, value: Any) -> Any:
    """A value as typed (text, for a non-text key) or as given (typed), checked."""
    if isinstance(value, str) and f.kind not in ("str", "choice"):
        return _parse_text(f, value)
    return _check_value(f, value)


def _check_fields(values: Mapping[str, Any], where: Callable[[str], str],
                  ) -> tuple[dict[str, Any], list[str], dict[str, str]]:
    """Check each value on its own. Returns (normalised values, problems, by_key)."""
    clean: dict[str, Any] = {}
    problems: list[str] = []
    by_key: dict[str, str] = {}
    for name, value in values.items():
        try:
            clean[name] = _check_value(FIELDS[name], value)
        except _Invalid as e:
            msg = f"{name} {e}"
            problems.append(_prefix(where(name), msg))
            by_key[name] = msg
    return clean, problems, by_key


def _prefix(where: str, msg: str) -> str:
    return f"{where}: {msg}" if where else msg


def _resolve_warmup(values: Mapping[str, Any]) -> int:
    w = values["warmup_iters"]
    if isinstance(w, float) and w < 1:
        return round(w * values["max_iters"])
    return int(w)


def _check_together(values: dict[str, Any], origins: Mapping[str, str],
                    ) -> tuple[list[str], dict[str, str]]:
    """Rules between keys. Each problem names every key involved, its value and its origin.

    Resolves warmup_iters in `values` to steps as a side effect.
    """
    problems: list[str] = []
    by_key: dict[str, str] = {}

    def said(key: str) -> str:
        origin = origins.get(key)
        return f"{key} = {_show(values[key])}" + (f" ({origin})" if origin else "")

    def problem(keys: tuple[str, ...], msg: str) -> None:
        problems.append(msg)
        for k in keys:
            by_key.setdefault(k, msg)

    if values["n_embd"] % values["n_head"]:
        problem(("n_embd", "n_head"),
                f"{said('n_embd')} must be divisible by {said('n_head')}")
    elif values["pos_encoding"] == "rope" and (values["n_embd"] // values["n_head"]) % 2:
        problem(("n_embd", "n_head", "pos_encoding"),
                f"pos_encoding \"rope\" needs an even head size, but n_embd / n_head = "
                f"{values['n_embd'] // values['n_head']}")
    warmup = _resolve_warmup(values)
    if warmup > values["max_iters"]:
        problem(("warmup_iters", "max_iters"),
                f"{said('warmup_iters')} exceeds {said('max_iters')}: lower warmup_iters, or "
                f"give it as a fraction of max_iters (e.g. 0.03)")
    values["warmup_iters"] = warmup
    if values["min_lr"] is not None and values["min_lr"] > values["learning_rate"]:
        problem(("min_lr", "learning_rate"),
                f"{said('min_lr')} exceeds {said('learning_rate')}: the cosine decay ends at min_lr")
    if (values["pad_token_id"] is not None and values["vocab_size"] is not None
            and values["pad_token_id"] >= values["vocab_size"]):
        problem(("pad_token_id", "vocab_size"),
                f"{said('pad_token_id')} must be below {said('vocab_size')}")
    return problems, by_key


def _did_you_mean(key: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(key.lower(), list(candidates), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _build(raw: Mapping[str, Any], origins: dict[str, str], where: Callable[[str], str],
           base: TrainConfig | None = None,
           warmup_fraction: float | None = None) -> TrainConfig:
    """Validate explicit values over a base (defaults or an earlier config); collect problems."""
    clean, problems, by_key = _check_fields(raw, where)
    if problems:
        raise ConfigError(problems, by_key)
    values = base.to_dict() if base is not None else dict(_DEFAULTS_KEYS)
    if base is not None and warmup_fraction is not None and "warmup_iters" not in clean:
        values["warmup_iters"] = warmup_fraction
    values.update(clean)
    fraction = values["warmup_iters"] if isinstance(values["warmup_iters"], float) and values["warmup_iters"] < 1 else None
    problems, by_key = _check_together(values, origins)
    if problems:
        raise ConfigError(problems, by_key)
    explicit = set(base.explicit if base is not None else ()) | set(clean)
    cfg = TrainConfig(**values, explicit=explicit, _origins=dict(origins))
    cfg._warmup_fraction = fraction
    return cfg


_DEFAULTS_KEYS = {name: FIELDS[name].default for name in FIELDS}


# ---------------------------------------------------------------------------------------------
# Loading files
# ---------------------------------------------------------------------------------------------

def resolve_config_path(path: str | os.PathLike) -> Path:
    """The file to read for `path`. A `.json` path that does not exist falls back to the `.toml`
    of the same name, so the guide's `--config configs/sft1/..._phase3a.json` works as written."""
    p = Path(path)
    if not p.exists() and p.suffix == ".json" and p.with_suffix(".toml").exists():
        return p.with_suffix(".toml")
    return p


def load_config(path: str | os.PathLike) -> TrainConfig:
    """Load a TOML (mypt) or JSON (MyPT) config; raise ConfigError naming file, line and key."""
    p = resolve_config_path(path)
    if p.suffix not in (".toml", ".json"):
        raise ConfigError([f"{path}: a config file must end in .toml (mypt) or .json (MyPT)"])
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{path}: config file not found"]) from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError([f"{path}: cannot read config file: {e}"]) from None
    return load_config_text(text, str(p), fmt=p.suffix[1:])


def load_config_text(text: str, source: str, fmt: str = "toml") -> TrainConfig:
    """Parse and validate config text; `source` names it in messages (a path, or "form")."""
    renamed: dict[str, str] = {}  # key -> origin, for keys spelled differently in the file
    if fmt == "toml":
        raw = _read_toml(text, source)
    elif fmt == "json":
        raw, renamed = _read_json(text, source)
    else:
        raise ValueError(f"unknown config format {fmt!r}")

    def where(key: str) -> str:
        line = _key_line(text, key, fmt)
        return f"{source}:{line}" if line else source

    origins = {key: where(key) for key in raw}
    origins.update(renamed)
    return _build(raw, origins, where=lambda k: origins[k])


def _read_toml(text: str, source: str) -> dict[str, Any]:
    try:
        data = tomli.loads(text)
    except tomli.TOMLDecodeError as e:
        line = getattr(e, "lineno", None)
        msg = getattr(e, "msg", None) or str(e)
        col = getattr(e, "colno", None)
        at = f":{line}:{col}" if line and col else (f":{line}" if line else "")
        raise ConfigError([f"{source}{at}: invalid TOML: {msg}"]) from None
    problems: list[str] = []
    by_key: dict[str, str] = {}
    out: dict[str, Any] = {}
    for key, value in data.items():
        line = _key_line(text, key, "toml")
        at = f"{source}:{line}" if line else source
        if isinstance(value, dict):
            problems.append(f"{at}: [{key}] is a table, but mypt configs are flat: write the "
                            f"keys at top level (group headings are comments)")
        elif key not in FIELDS:
            hint = ""
            if key in ("use_amp", "amp_dtype"):
                hint = ' (MyPT\'s use_amp/amp_dtype: write precision = "bf16", "fp16" or "fp32")'
            elif key in _MYPT_RENAMED:
                hint = f" (did you mean '{_MYPT_RENAMED[key]}'?)"
            else:
                hint = _did_you_mean(key, FIELDS)
            msg = f"unknown key '{key}'{hint}"
            problems.append(f"{at}: {msg}")
            by_key[key] = msg
        else:
            out[key] = value
    if problems:
        raise ConfigError(problems, by_key)
    return out


def _read_json(text: str, source: str) -> tuple[dict[str, Any], dict[str, str]]:
    """MyPT's JSON: `comment*` keys are comments; use_amp/amp_dtype become precision."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError([f"{source}:{e.lineno}:{e.colno}: invalid JSON: {e.msg}"]) from None
    if not isinstance(data, dict):
        raise ConfigError([f"{source}: a JSON config must be an object {{...}} of keys"])
    problems: list[str] = []
    by_key: dict[str, str] = {}
    out: dict[str, Any] = {}
    renamed: dict[str, str] = {}

    def at(key: str) -> str:
        line = _key_line(text, key, "json")
        return f"{source}:{line}" if line else source

    amp: dict[str, Any] = {}
    for key, value in data.items():
        if key.startswith("comment"):
            continue
        if key in ("use_amp", "amp_dtype"):
            amp[key] = value
            continue
        target = _MYPT_RENAMED.get(key, key)
        if target != key and target in data:
            problems.append(f"{at(key)}: give {target} or MyPT's {key}, not both")
            continue
        if target in FIELDS:
            out[target] = value
            if target != key:
                renamed[target] = f"{at(key)} ({key})"
        elif key in _MYPT_UNSUPPORTED:
            msg = f"MyPT key '{key}' is not supported by mypt ({_MYPT_UNSUPPORTED[key]}); remove it"
            problems.append(f"{at(key)}: {msg}")
            by_key[key] = msg
        else:
            msg = f"unknown key '{key}'{_did_you_mean(key, [*FIELDS, *_MYPT_RENAMED, 'use_amp', 'amp_dtype'])}"
            problems.append(f"{at(key)}: {msg}")
            by_key[key] = msg
    if amp:
        if "precision" in out:
            problems.append(f"{at('use_amp' if 'use_amp' in amp else 'amp_dtype')}: give precision "
                            f"or MyPT's use_amp/amp_dtype, not both")
        else:
            try:
                out["precision"] = _precision_from_amp(amp)
                renamed["precision"] = at("use_amp" if "use_amp" in amp else "amp_dtype") + " (use_amp/amp_dtype)"
            except _Invalid as e:
                problems.append(f"{at(next(iter(amp)))}: {e}")
    if problems:
        raise ConfigError(problems, by_key)
    return out, renamed


def _precision_from_amp(amp: Mapping[str, Any]) -> str:
    """MyPT's use_amp + amp_dtype as our precision.

    use_amp false -> "fp32"; use_amp true with amp_dtype -> that dtype; use_amp true alone ->
    "auto"; amp_dtype alone -> that dtype.
    """
    use_amp = amp.get("use_amp")
    if use_amp is not None and not isinstance(use_amp, bool):
        raise _Invalid(f"use_amp must be true or false, got {_show(use_amp)}")
    dtype = amp.get("amp_dtype")
    if dtype is not None and (not isinstance(dtype, str) or dtype.lower() not in _AMP_DTYPES):
        raise _Invalid(f'amp_dtype must be one of "bf16", "fp16", "fp32", got {_show(dtype)}')
    if use_amp is False:
        return "fp32"
    if dtype is None:
        return "auto"
    return _AMP_DTYPES[dtype.lower()]


def _key_line(text: str, key: str, fmt: str) -> int | None:
    """1-based line where `key` is set in the text, if it can be found."""
    k = re.escape(key)
    if fmt == "toml":
        pattern = rf"^[ \t]*(?:(?:{k}|\"{k}\"|'{k}')[ \t]*[=.]|\[[ \t]*{k}[ \t]*[\].])"
    else:
        pattern = rf"\"{k}\"\s*:"
    m = re.search(pattern, text, flags=re.MULTILINE)
    return None if m is None else text.count("\n", 0, m.start()) + 1


# ---------------------------------------------------------------------------------------------
# One field at a time (the Config screen) and whole value sets
# ---------------------------------------------------------------------------------------------

def parse_field(name: str, raw: Any) -> Any:
    """The value of one field as typed (a string) or given (a typed value); ConfigError if bad.

    For a nullable key, "" / "none" / "null" mean unset (None).
    """
    f = FIELDS.get(name)
    if f is None:
        raise ConfigError([f"unknown key '{name}'{_did_you_mean(name, FIELDS)}"],
                          {name: "unknown key"})
    try:
        return _coerce(f, raw)
    except _Invalid as e:
        raise ConfigError([f"{name} {e}"], {name: f"{name} {e}"}) from None


def parse_flag(name: str, raw: str) -> Any:
    """The value of `--name RAW` on a command line: like parse_field, but unset is not a choice."""
    try:
        return _parse_text(FIELDS[name], raw, allow_unset=False)
    except _Invalid as e:
        raise ConfigError([f"--{name} {e}"], {name: str(e)}) from None


def field_error(name: str, raw_value: Any) -> str | None:
    """None if the value is allowed for the key on its own, else why not (for a form field)."""
    try:
        parse_field(name, raw_value)
    except ConfigError as e:
        return str(e)
    return None


def format_value(name: str, value: Any) -> str:
    """A value as text for a form field (the inverse of parse_field): true/false, "" for unset."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def validate_values(values: Mapping[str, Any], source: str = "form") -> TrainConfig:
    """Check a whole set of key -> value (typed, or text as typed) as one config.

    Keys not given take their defaults; ConfigError.by_key says which fields are wrong.
    """
    unknown = [k for k in values if k not in FIELDS]
    if unknown:
        raise ConfigError([f"{source}: unknown key '{k}'{_did_you_mean(k, FIELDS)}" for k in unknown],
                          {k: "unknown key" for k in unknown})
    raw: dict[str, Any] = {}
    problems: list[str] = []
    by_key: dict[str, str] = {}
    for k, v in values.items():
        try:
            raw[k] = parse_field(k, v)
        except ConfigError as e:
            problems.append(f"{source}: {e}")
            by_key.update(e.by_key)
    if problems:
        raise ConfigError(problems, by_key)
    return _build(raw, {k: source for k in raw}, where=lambda k: source)


def apply_overrides(cfg: TrainConfig, overrides: Mapping[str, Any],
                    source: str = "command line") -> TrainConfig:
    """A new config: `cfg` with `overrides` (typed values or text) on top, validated as a whole.

    Problems name the flag (`--max_iters`) and, for rules between keys, where each value came
    from. A warmup given as a fraction is re-resolved against an overridden max_iters.
    """
    if not overrides:
        return cfg
    problems: list[str] = []
    by_key: dict[str, str] = {}
    raw: dict[str, Any] = {}
    for key, value in overrides.items():
        f = FIELDS.get(key)
        if f is None:
            cands = [f"--{k}" for k in FIELDS]
            msg = f"unknown flag --{key}{_did_you_mean('--' + key, cands)}"
            problems.append(f"{source}: {msg}")
            by_key[key] = msg
            continue
        try:
            raw[key] = _coerce(f, value)
        except _Invalid as e:
            msg = f"--{key} {e}"
            problems.append(f"{source}: {msg}")
            by_key[key] = msg
    if problems:
        raise ConfigError(problems, by_key)
    origins = dict(cfg.origins)
    origins.update({k: f"--{k}" for k in raw})
    try:
        return _build(raw, origins, where=lambda k: f"{source}: --{k}", base=cfg,
                      warmup_fraction=cfg.warmup_fraction)
    except ConfigError as e:
        raise ConfigError([f"{source}: {p}" for p in e.problems], e.by_key) from None


# ---------------------------------------------------------------------------------------------
# Architecture against a checkpoint
# ---------------------------------------------------------------------------------------------

def architecture_conflicts(cfg: TrainConfig, model_config: Mapping[str, Any]) -> list[str]:
    """One line per architecture key that the config set explicitly to something other than
    the checkpoint's value ("n_layer: the config says 12 (file:3), the checkpoint has 32").
    Keys the config left at their default, or the checkpoint does not record, never conflict.
    """
    out = []
    for key in ARCHITECTURE_KEYS:
        if key not in cfg.explicit or key not in model_config:
            continue
        mine, theirs = getattr(cfg, key), model_config[key]
        if mine != theirs or type(mine) is bool and not isinstance(theirs, bool):
            origin = cfg.origins.get(key)
            out.append(f"{key}: the config says {_show(mine)}"
                       + (f" ({origin})" if origin else "")
                       + f", the checkpoint has {_show(theirs)}")
    return out


def adopt_architecture(cfg: TrainConfig, model_config: Mapping[str, Any], where: str = "") -> TrainConfig:
    """The config to continue a checkpoint with: the checkpoint's architecture, the config's
    training keys. The one architecture check: ConfigError lists every key the config set
    explicitly to something else. A shorter block_size than the checkpoint's is not a conflict
    (the guide's advice for running out of memory); a longer one is.
    """
    ckpt_block = model_config.get("block_size")
    shorter = ckpt_block is not None and cfg.block_size <= ckpt_block
    checked = dataclasses.replace(cfg, block_size=ckpt_block) if shorter else cfg
    conflicts = architecture_conflicts(checked, model_config)
    if conflicts:
        at = f" ({where})" if where else ""
        raise ConfigError(
            [f"the config contradicts the checkpoint's architecture{at}:", *("  " + c for c in conflicts),
             "The architecture comes from the checkpoint: remove these keys or match them."],
            {c.split(":", 1)[0]: c for c in conflicts})
    if ckpt_block is not None and cfg.block_size > ckpt_block:
        raise ConfigError([f"block_size {cfg.block_size} is larger than the checkpoint's {ckpt_block}"],
                          {"block_size": f"block_size is larger than the checkpoint's {ckpt_block}"})
    taken = {k: model_config[k] for k in ARCHITECTURE_KEYS if k in model_config}
    if shorter and "block_size" in cfg.explicit:
        taken["block_size"] = cfg.block_size
    origins = dict(cfg.origins)
    origins.update({k: "checkpoint" for k in taken if k not in cfg.explicit or k != "block_size"})
    return dataclasses.replace(cfg, **taken, _origins=origins)


# ---------------------------------------------------------------------------------------------
# Writing TOML
# ---------------------------------------------------------------------------------------------

def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a valid TOML basic string
    if isinstance(value, float):
        return repr(value)
    return str(value)


def to_toml(cfg: TrainConfig, header: str = "mypt training config (resolved: file, flags, defaults)") -> str:
    """Every key with its value, grouped under comment headings, each with what it does.

    Unset nullable keys appear as a comment saying what they resolve to. load_config on the
    result gives back an equal config (warmup_iters as steps).
    """
    lines = [f"# {line}" for line in header.splitlines()]
    for group_id, title in GROUPS:
        lines += ["", f"# --- {title} ---"]
        for f in FIELDS.values():
            if f.group != group_id:
                continue
            value = getattr(cfg, f.name)
            note = f.help
            if f.name == "warmup_iters" and cfg.warmup_fraction is not None:
                note = f"{cfg.warmup_fraction!r} x max_iters. {note}"
            if value is None:
                lines.append(f"# {f.name} is unset: {f.unset}. {f.help}")
            else:
                lines.append(f"{f.name} = {_toml_value(value)}  # {note}")
    return "\n".join(lines) + "\n"


def edit_toml(text: str, values: Mapping[str, Any]) -> str:
    """`text` with `values` set, keeping every comment, blank line and key order.

    A changed key keeps its place and its end-of-line comment; an unchanged value keeps its
    spelling (5e-5 stays 5e-5); None removes the key (unset: back to its default); a key not in
    the file goes after the last key of its group, or under a new group heading at the end.
    Values are not validated here (save_config_preserving does).
    """
    import tomlkit
    from tomlkit.items import Comment, Trivia, Whitespace

    doc = tomlkit.parse(text)
    body = list(doc.body)
    present = {k.key: i for i, (k, _) in enumerate(body) if k is not None}
    added: dict[str, list[tuple[str, Any]]] = {}
    for name, value in values.items():
        if name in present:
            i = present[name]
            key, old = body[i]
            if value is None:
                body[i] = (None, None)
                continue
            if old.unwrap() == value and type(old.unwrap()) is type(value):
                continue
            new = tomlkit.item(value)
            new.trivia.indent = old.trivia.indent
            new.trivia.comment_ws = old.trivia.comment_ws
            new.trivia.comment = old.trivia.comment
            new.trivia.trail = old.trivia.trail
            body[i] = (key, new)
        elif value is not None:
            group = FIELDS[name].group if name in FIELDS else "metadata"
            added.setdefault(group, []).append((name, value))

    def new_item(name: str, value: Any) -> Any:
        item = tomlkit.item(value)
        if name in FIELDS:
            item.trivia.comment_ws = "  "
            item.trivia.comment = f"# {FIELDS[name].help}"
        return item

    out = tomlkit.document()
    tail: list[tuple[str, list[tuple[str, Any]]]] = []
    last_of_group: dict[str, int] = {}
    for i, (k, _) in enumerate(body):
        if k is not None and k.key in FIELDS:
            last_of_group[FIELDS[k.key].group] = i
    for group, items in added.items():
        if group not in last_of_group:
            tail.append((group, items))
    inserts = {last_of_group[g]: items for g, items in added.items() if g in last_of_group}
    for i, (k, item) in enumerate(body):
        if item is None:
            continue
        if isinstance(item, Whitespace):  # fixed: tomlkit would otherwise add keys above blank lines
            item = Whitespace(item.s, fixed=True)
        if k is None:
            out.add(item)
        else:
            out.add(k, item)
        for name, value in inserts.get(i, []):
            out.add(name, new_item(name, value))
    order = [g for g, _ in GROUPS]
    for group, items in sorted(tail, key=lambda t: order.index(t[0])):
        if out.body:
            out.add(Whitespace("\n", fixed=True))
        out.add(Comment(Trivia(comment_ws="", comment=f"# --- {GROUP_TITLES[group]} ---", trail="\n")))
        for name, value in items:
            out.add(name, new_item(name, value))
    return out.as_string()


def save_config_preserving(path: str | os.PathLike, values: Mapping[str, Any],
                           dest: str | os.PathLike | None = None) -> TrainConfig:
    """Set `values` (typed, or text as typed in a form; None = unset) in the TOML at `path`,
    keeping its comments and key order, and write it to `dest` ("save as") or back to `path`.

    `path` may be None or missing (a new file holding just `values`) or a MyPT .json
    (its explicit keys become the starting TOML). The result is validated as a whole before
    anything is written (ConfigError, nothing written), then written beside and renamed.
    Returns the saved config.
    """
    target = Path(dest if dest is not None else path)
    if target.suffix != ".toml":
        raise ConfigError([f"{target}: configs are saved as TOML: choose a name ending in .toml"])
    typed: dict[str, Any] = {}
    problems: list[str] = []
    by_key: dict[str, str] = {}
    for k, v in values.items():
        try:
            typed[k] = None if v is None else parse_field(k, v)
        except ConfigError as e:
            problems.append(f"{target}: {e}")
            by_key.update(e.by_key)
    if problems:
        raise ConfigError(problems, by_key)
    source = Path(path) if path is not None else None
    if source is None or not source.exists():
        base = "# mypt training config\n"
    elif source.suffix == ".json":
        loaded = load_config(source)
        base = _explicit_toml(loaded, f"converted from {source.name}")
    else:
        base = source.read_text(encoding="utf-8")
    text = edit_toml(base, typed)
    cfg = load_config_text(text, str(target), fmt="toml")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".mypt-tmp-{target.name}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, target)
    return cfg


def _explicit_toml(cfg: TrainConfig, header: str) -> str:
    """Only the explicitly set keys of cfg, grouped with comments (to start an edit from)."""
    lines = [f"# {header}"]
    for group_id, title in GROUPS:
        keys = [f for f in FIELDS.values() if f.group == group_id and f.name in cfg.explicit]
        if not keys:
            continue
        lines += ["", f"# --- {title} ---"]
        for f in keys:
            value = getattr(cfg, f.name)
            if f.name == "warmup_iters" and cfg.warmup_fraction is not None:
                value = cfg.warmup_fraction  # keep "a fraction of max_iters" as written
            if value is not None:
                lines.append(f"{f.name} = {_toml_value(value)}  # {f.help}")
    return "\n".join(lines) + "\n"
