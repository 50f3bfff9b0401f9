"""The table-valued keys of evaluation while training: `eval_sets`, `gold_selection` and
`token_accuracy_saturation`, in MyPT's shapes, checked and completed with MyPT's defaults.

A config holds what the user gave, normalised (every sub-key present, typed); an unset key is
None and `gold_selection_of` / `saturation_of` give the defaults the trainer uses then. Each
checker raises ValueError with text that reads after the key's name ("gold_selection key
guards.overfit_ratio must be ..."), so a problem names the file, the key and the sub-key.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from pathlib import Path
from typing import Any, Callable

STRATEGIES = ("val_loss", "hybrid", "external_gate")
SATURATION_ACTIONS = ("log_and_flag", "stop")
GOALS = ("max", "min")
RESERVED_SETS = ("val", "train", "prompts")  # names the run's own sets and the prompts file take
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,40}$")

# sub-key -> (default, kind, low bound or choices); MyPT's defaults (core/gold_selection.py and
# docs/training/TOKEN_ACCURACY_SATURATION.md)
_GUARDS: dict[str, tuple[Any, str, Any]] = {
    "overfit_ratio": (5.0, "float", 0.0),
    "consecutive_rises": (2, "int", 1),
    "eval_regression": (0.20, "float", 0.0),
}
_GATE: dict[str, tuple[Any, str, Any]] = {
    "enabled": (False, "bool", None),
    "script": ("", "str", None),
    "args": ([], "list", None),
    "timeout_s": (1200, "int", 1),
    "run_interval_evals": (1, "int", 1),
    "run_on_final_eval": (True, "bool", None),
    "metric_path": ("", "str", None),
    "metric_goal": ("max", "choice", GOALS),
    "pass_path": ("gate_passed", "str", None),
    "require_pass": (False, "bool", None),
    "strict": (False, "bool", None),
}
_GOLD: dict[str, tuple[Any, str, Any]] = {
    "strategy": ("val_loss", "choice", STRATEGIES),
    "apply_loss_guards": (True, "bool", None),
}
_SATURATION: dict[str, tuple[Any, str, Any]] = {
    "enabled": (True, "bool", None),  # giving the block turns it on unless it says otherwise
    "window": (4, "int", 2),
    "min_steps_before_check": (200, "int", 0),
    "min_delta": (0.002, "float", 0.0),
    "gap_growth_threshold": (0.01, "float", 0.0),
    "action": ("log_and_flag", "choice", SATURATION_ACTIONS),
}


def _show(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False) if not isinstance(value, float) else repr(value)


def _typed(path: str, value: Any, kind: str, bound: Any) -> Any:
    """One sub-key's value, checked against its kind (ValueError naming the sub-key otherwise)."""
    def bad(allowed: str) -> ValueError:
        return ValueError(f"key {path} must be {allowed}, got {_show(value)}")

    if kind == "bool":
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if kind in ("str", "choice"):
        if not isinstance(value, str):
            raise bad("a string")
        if kind == "choice" and value.lower() not in bound:
            raise bad("one of " + ", ".join(f'"{c}"' for c in bound))
        return value.lower() if kind == "choice" else value
    if kind == "list":
        if not isinstance(value, list) or not all(isinstance(a, (str, int, float)) for a in value):
            raise bad("a list of strings")
        return [str(a) for a in value]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise bad("an integer" if kind == "int" else "a number")
    if kind == "int":
        if isinstance(value, float) and not value.is_integer():
            raise bad(f"an integer >= {bound}")
        value = int(value)
    else:
        value = float(value)
    if value < bound:
        raise bad(f"{'an integer' if kind == 'int' else 'a number'} >= {bound}")
    return value


def _section(path: str, raw: Any, spec: dict[str, tuple[Any, str, Any]], nested: dict[str, Callable]) -> dict:
    """A table of known sub-keys (defaults filled in); an unknown sub-key is an error with a hint."""
    if not isinstance(raw, dict):
        raise ValueError(f"key {path} must be a table" if path else "must be a table")
    out: dict[str, Any] = {}
    for key, value in raw.items():
        where = f"{path}.{key}" if path else key
        if key in nested:
            out[key] = nested[key](where, value)
        elif key in spec:
            out[key] = _typed(where, value, spec[key][1], spec[key][2])
        elif not key.startswith("comment"):
            close = difflib.get_close_matches(key, [*spec, *nested], n=1, cutoff=0.6)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            known = ", ".join([*spec, *nested])
            raise ValueError(f"has an unknown key '{where}'{hint}; known: {known}")
    for key, (default, _, _) in spec.items():
        out.setdefault(key, list(default) if isinstance(default, list) else default)
    for key, make in nested.items():
        out.setdefault(key, make(f"{path}.{key}" if path else key, {}))
    return out


def check_gold_selection(raw: Any) -> dict:
    """MyPT's gold_selection block: strategy, apply_loss_guards, guards {...}, external_gate {...}."""
    out = _section("", raw, _GOLD, {
        "guards": lambda where, v: _section(where, v, _GUARDS, {}),
        "external_gate": lambda where, v: _section(where, v, _GATE, {}),
    })
    gate = out["external_gate"]
    if gate["enabled"] and not gate["script"]:
        raise ValueError("key external_gate.script is empty, but external_gate.enabled is true: "
                         "name the gate script (run with this Python, its JSON read back)")
    if out["strategy"] in ("hybrid", "external_gate") and not gate["enabled"]:
        raise ValueError(f'has strategy "{out["strategy"]}", which needs external_gate.enabled = true '
                         "and a script that rates each checkpoint")
    return out


def check_saturation(raw: Any) -> dict:
    """MyPT's token_accuracy_saturation block (plus action "stop": end the run early)."""
    return _section("", raw, _SATURATION, {})


def check_eval_sets(raw: Any) -> dict[str, str]:
    """name -> prepared dataset folder. Names become metric names (`<name>.loss`): letters,
    digits, _ and -; val, train and prompts are the run's own."""
    if not isinstance(raw, dict):
        raise ValueError('must be a table of name = "path/to/prepared", got ' + _show(raw))
    out: dict[str, str] = {}
    for name, path in raw.items():
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(f"name {_show(name)} is not allowed: use letters, digits, _ and - (at most 40)")
        if name in RESERVED_SETS:
            raise ValueError(f"name '{name}' is taken by the run's own sets ({', '.join(RESERVED_SETS)}): "
                             "choose another")
        if not isinstance(path, str) or not path.strip():
            raise ValueError(f"key {name} must be the path of a prepared dataset, got {_show(path)}")
        out[name] = path
    return out


def gold_selection_of(value: dict | None) -> dict:
    """The gold_selection the trainer uses: the config's, or MyPT's defaults when unset."""
    return value if value is not None else check_gold_selection({})


def saturation_of(value: dict | None) -> dict:
    """The saturation detector's settings; unset means off."""
    return value if value is not None else {**check_saturation({}), "enabled": False}


def config_file(origin: str | None) -> Path | None:
    """The config file an origin ("configs/x.toml:12") names; None for a flag or a form."""
    if not origin:
        return None
    head, _, line = origin.rpartition(":")
    path = Path(head if line.isdigit() else origin)
    return path if path.suffix in (".toml", ".json") else None


def eval_path_candidates(path: str, origin: str | None) -> list[Path]:
    """Where a path in a config is looked for: the current folder first (MyPT reads paths from
    its project root, where it runs), then the project of the config file that set it (the
    folder above its configs/ folder, else its own folder), so an installed demo finds its sets."""
    p = Path(path)
    if p.is_absolute():
        return [p]
    out = [p]
    cfg = config_file(origin)
    if cfg is not None:
        folder = cfg.parent.resolve()
        project = next((a.parent for a in (folder, *folder.parents) if a.name == "configs"), folder)
        if project / p != p.resolve():
            out.append(project / p)
    return out


def find_eval_path(path: str, origin: str | None) -> Path:
    """The first candidate that exists, else the path as written (its error names it)."""
    return next((c for c in eval_path_candidates(path, origin) if c.exists()), Path(path))
