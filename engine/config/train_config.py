"""`TrainConfig`, the values, made from the key table and checked once, on construction; and the
ways to make one from another: whole form values, flags on top, a checkpoint's architecture.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from .checks import (
    ConfigError,
    Invalid,
    check_fields,
    check_together,
    coerce,
    did_you_mean,
    parse_field,
    show,
    warmup_steps,
)
from .schema import ARCHITECTURE_KEYS, FIELDS


class _TrainConfigMethods:
    """Every training key (FIELDS) with its value; the fields are made from the table below.

    Construction checks (a `TrainConfig` is always consistent), so `TrainConfig(n_layer=2)` and
    `dataclasses.replace` raise ConfigError like a config file. `warmup_iters` given as a
    fraction < 1 is resolved to steps of `max_iters` (the fraction is kept in `warmup_fraction`
    so a `--max_iters` override re-resolves it). `min_lr`, `vocab_size` and `pad_token_id` may
    be None (unset): see `lr_floor` and the trainer for what they become.
    """

    def __post_init__(self, _where: Mapping[str, str] | None) -> None:
        """The one check: each key on its own (problems prefixed with `_where`), then the rules
        between keys; warmup_iters given as a fraction becomes steps, the fraction is kept."""
        values = check_fields({name: getattr(self, name) for name in FIELDS}, _where or {})
        steps, self._warmup_fraction = warmup_steps(values["warmup_iters"], values["max_iters"])
        values["warmup_iters"] = steps
        check_together(values, self._origins)
        for name, value in values.items():
            setattr(self, name, value)

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

    def to_dict(self) -> dict[str, Any]:
        """Every key and its value, in FIELDS order (JSON-ready)."""
        return {name: getattr(self, name) for name in FIELDS}

    def architecture(self) -> dict[str, Any]:
        """The architecture keys and their values (None: unset, e.g. vocab_size)."""
        return {name: getattr(self, name) for name in ARCHITECTURE_KEYS}


_BOOKKEEPING = dict(compare=False, repr=False)

# Each key's field (type, default) comes from its one line in the table.
TrainConfig = dataclasses.make_dataclass(
    "TrainConfig",
    [*((f.name, f.type, dataclasses.field(default=f.default)) for f in FIELDS.values()),
     # bookkeeping, not keys (underscored, or `explicit`, so asdict() users can drop them):
     # which keys were set explicitly, where (file:line or --flag), the warmup fraction, and
     # where each given value was read (construction only: prefixes its problems)
     ("explicit", set[str], dataclasses.field(default_factory=set, **_BOOKKEEPING)),
     ("_origins", dict[str, str], dataclasses.field(default_factory=dict, **_BOOKKEEPING)),
     ("_warmup_fraction", float | None, dataclasses.field(default=None, init=False, **_BOOKKEEPING)),
     ("_where", dataclasses.InitVar[Mapping[str, str] | None], dataclasses.field(default=None))],
    bases=(_TrainConfigMethods,),
    namespace={"__module__": __name__, "__doc__": _TrainConfigMethods.__doc__})


def build(values: Mapping[str, Any], origins: dict[str, str], base: TrainConfig | None = None,
          where: Mapping[str, str] | None = None) -> TrainConfig:
    """A config: explicit `values` over a base (defaults, or an earlier config whose warmup
    fraction is re-resolved unless warmup_iters is among `values`). `where` prefixes problems."""
    merged = base.to_dict() if base is not None else {}
    if base is not None and base.warmup_fraction is not None:
        merged["warmup_iters"] = base.warmup_fraction
    merged.update(values)
    explicit = set(base.explicit if base is not None else ()) | set(values)
    return TrainConfig(**merged, explicit=explicit, _origins=dict(origins), _where=where)


def validate_values(values: Mapping[str, Any], source: str = "form") -> TrainConfig:
    """Check a whole set of key -> value (typed, or text as typed) as one config.

    Keys not given take their defaults; ConfigError.by_key says which fields are wrong.
    """
    unknown = [k for k in values if k not in FIELDS]
    if unknown:
        raise ConfigError([f"{source}: unknown key '{k}'{did_you_mean(k, FIELDS)}" for k in unknown],
                          {k: "unknown key" for k in unknown})
    typed: dict[str, Any] = {}
    problems: list[str] = []
    by_key: dict[str, str] = {}
    for k, v in values.items():
        try:
            typed[k] = parse_field(k, v)
        except ConfigError as e:
            problems.append(f"{source}: {e}")
            by_key.update(e.by_key)
    if problems:
        raise ConfigError(problems, by_key)
    return build(typed, {k: source for k in typed})


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
    typed: dict[str, Any] = {}
    for key, value in overrides.items():
        f = FIELDS.get(key)
        if f is None:
            msg = f"unknown flag --{key}{did_you_mean('--' + key, [f'--{k}' for k in FIELDS])}"
            problems.append(f"{source}: {msg}")
            by_key[key] = msg
            continue
        try:
            typed[key] = coerce(f, value)
        except Invalid as e:
            msg = f"--{key} {e}"
            problems.append(f"{source}: {msg}")
            by_key[key] = msg
    if problems:
        raise ConfigError(problems, by_key)
    origins = {**cfg.origins, **{k: f"--{k}" for k in typed}}
    try:
        return build(typed, origins, base=cfg)
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
            out.append(f"{key}: the config says {show(mine)}" + (f" ({origin})" if origin else "")
                       + f", the checkpoint has {show(theirs)}")
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
