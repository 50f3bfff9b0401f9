"""Training configuration: every key of the guide, its metadata, loading, flags and saving.

One flat namespace of keys (the guide's names) reaches the trainer through three doors, each
checked by the same rules so a mistake reads the same wherever it was made:

- a config file: TOML (mypt's format, flat, groups are comments) or MyPT's JSON;
- command-line flags `--<key>` (made from FIELDS by mypt_tui.flags), which override the file;
- the Config screen, which validates a field as it is typed and saves TOML back with the
  user's comments and key order (tomlkit).

What lives where (import from here, not from the modules):

- schema.py: `Field` and the table that declares each key once; `FIELDS`, `GROUPS`,
  `GROUP_TITLES`, `ARCHITECTURE_KEYS`.
- checks.py: `ConfigError`; one value checked or parsed from text (`parse_field`, `parse_flag`,
  `field_error`, `format_value`); the rules between keys.
- train_config.py: `TrainConfig`, made from the table and checked once, on construction (it
  remembers which keys were set explicitly, `explicit`, and where, `origins`, because continuing
  from a checkpoint takes the architecture from the checkpoint and only an explicit
  contradiction is an error); `validate_values`, `apply_overrides`, `architecture_conflicts`,
  `adopt_architecture`.
- files.py: `resolve_config_path`, `load_config`, `load_config_text` (TOML and MyPT's JSON).
- toml_edit.py: `to_toml`, `edit_toml`, `save_config_preserving`.
"""

from .checks import ConfigError, field_error, format_value, parse_field, parse_flag
from .files import load_config, load_config_text, resolve_config_path
from .schema import ARCHITECTURE_KEYS, FIELDS, GROUP_TITLES, GROUPS, Field
from .toml_edit import edit_toml, save_config_preserving, to_toml
from .train_config import (
    TrainConfig,
    adopt_architecture,
    apply_overrides,
    architecture_conflicts,
    validate_values,
)

__all__ = [
    "ARCHITECTURE_KEYS", "ConfigError", "FIELDS", "Field", "GROUPS", "GROUP_TITLES", "TrainConfig",
    "adopt_architecture", "apply_overrides", "architecture_conflicts",
    "edit_toml", "field_error", "format_value", "load_config", "load_config_text",
    "parse_field", "parse_flag", "resolve_config_path", "save_config_preserving",
    "to_toml", "validate_values",
]
