"""The `curriculum` key: datasets switched at given steps within one run (MyPT's `curriculum.phases`).

Written as MyPT writes it, `{"description": ..., "phases": [{"name", "dataset_dir", "until_iter",
"description"}, ...]}`, or as the list of phases alone. A phase ends after `until_iter` optimizer
steps (the last may leave it unset: it trains to the end); a phase may instead say where it starts
with `switch_iter` (the steps done before it, so phase k's switch_iter is phase k-1's until_iter).
The value is normalised to the first form with every phase's until_iter, so a config written back
(config.toml) reads the same.
"""

from __future__ import annotations

import json
from typing import Any


class Invalid(ValueError):
    """The curriculum is wrong; the text continues "curriculum ..." (checks.py adds the key)."""


def show(value: Any) -> str:
    """A value as the user wrote it (JSON spelling)."""
    return json.dumps(value, ensure_ascii=False) if not isinstance(value, float) else repr(value)


_PHASE_KEYS = ("name", "dataset_dir", "until_iter", "switch_iter", "description")
ALLOWED = ('a list of phases [{"name": ..., "dataset_dir": ..., "until_iter": N}, ...] '
           '(or MyPT\'s {"phases": [...], "description": ...})')


def check_curriculum(value: Any) -> dict[str, Any]:
    """The curriculum normalised (see the module), or Invalid naming the phase and key at fault."""
    description = ""
    if isinstance(value, dict):
        extra = sorted(set(value) - {"phases", "description"})
        if extra:
            raise Invalid(f"has unknown key(s) {', '.join(map(repr, extra))}: a curriculum has "
                          '"phases" and an optional "description"')
        description = _text(value.get("description", ""), "description")
        value = value.get("phases")
    if not isinstance(value, list) or not value:
        raise Invalid(f"must be {ALLOWED}, got {show(value) if not isinstance(value, list) else 'an empty list'}")
    phases = [_phase(p, k) for k, p in enumerate(value)]
    _resolve_switches(phases)
    names = [p["name"] for p in phases]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise Invalid(f"phase names must differ: {', '.join(map(repr, twice))} appears more than once")
    return {"description": description, "phases": phases}


def _text(value: Any, key: str, where: str = "", required: bool = False) -> str:
    if not isinstance(value, str) or (required and not value.strip()):
        raise Invalid(f"{where}{key} must be {'a non-empty' if required else 'a'} string, got {show(value)}")
    return value


def _step(value: Any, key: str, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or float(value) != int(value) or value < 0:
        raise Invalid(f"{where}{key} must be a whole number of steps, got {show(value)}")
    return int(value)


def _phase(raw: Any, k: int) -> dict[str, Any]:
    where = f"phase {k + 1}: "
    if not isinstance(raw, dict):
        raise Invalid(f"{where}must be an object with name and dataset_dir, got {show(raw)}")
    extra = sorted(set(raw) - set(_PHASE_KEYS))
    if extra:
        raise Invalid(f"{where}unknown key(s) {', '.join(map(repr, extra))} (a phase has "
                      f"{', '.join(_PHASE_KEYS)})")
    return {
        "name": _text(raw.get("name"), "name", where, required=True),
        "dataset_dir": _text(raw.get("dataset_dir"), "dataset_dir", where, required=True),
        "until_iter": _step(raw.get("until_iter"), "until_iter", where),
        "switch_iter": _step(raw.get("switch_iter"), "switch_iter", where),
        "description": _text(raw.get("description", ""), "description", where),
    }


def _resolve_switches(phases: list[dict[str, Any]]) -> None:
    """Every phase but the last gets its until_iter (from the next one's switch_iter if need be);
    the ends must rise. switch_iter is dropped: until_iter says the same."""
    first = phases[0].pop("switch_iter")
    if first not in (None, 0):
        raise Invalid(f"phase 1 ({phases[0]['name']!r}) starts the run: its switch_iter must be 0 or unset, "
                      f"got {first}")
    for k in range(1, len(phases)):
        switch = phases[k].pop("switch_iter")
        prev = phases[k - 1]
        if switch is not None:
            if prev["until_iter"] is not None and prev["until_iter"] != switch:
                raise Invalid(f"phase {k + 1} ({phases[k]['name']!r}) has switch_iter {switch} but phase {k} "
                              f"({prev['name']!r}) has until_iter {prev['until_iter']}: give one, or the same")
            prev["until_iter"] = switch
        if prev["until_iter"] is None:
            raise Invalid(f"phase {k} ({prev['name']!r}) needs until_iter (the step it ends at), or phase {k + 1} "
                          "a switch_iter: only the last phase may run to the end")
    ends = [p["until_iter"] for p in phases if p["until_iter"] is not None]
    if any(e < 1 for e in ends):
        raise Invalid("until_iter must be at least 1 (a phase that ends at step 0 never trains)")
    for a, b in zip(phases, phases[1:]):
        if b["until_iter"] is not None and b["until_iter"] <= a["until_iter"]:
            raise Invalid(f"phase {b['name']!r} ends at until_iter {b['until_iter']}, not after phase "
                          f"{a['name']!r} (until_iter {a['until_iter']}): the phases must come in order")


def phase_starts(curriculum: dict[str, Any]) -> list[int]:
    """Steps done before each phase begins: 0, then each previous phase's until_iter."""
    phases = curriculum["phases"]
    return [0] + [p["until_iter"] for p in phases[:-1]]


def curriculum_text(curriculum: dict[str, Any] | None) -> str:
    """The value as one line of JSON (a flag, a form field)."""
    return "" if curriculum is None else json.dumps(curriculum, ensure_ascii=False)
