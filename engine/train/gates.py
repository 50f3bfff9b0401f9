"""Which weights become `best/`, and when a run should stop early: MyPT's gold selection, its
token-accuracy saturation detector, and a plain patience on any tracked metric.

Every decision is a pure function of the run's eval history (the report card's records, see
engine.report) and the eval just made, so that a resumed run, which folds its events.jsonl back
into the same records, decides exactly as the uninterrupted run would have.

Gold selection (MyPT's core/gold_selection.py semantics):
- loss guards (unless apply_loss_guards is false) keep a candidate out of best/: val/train loss
  above `overfit_ratio` (memorising); val loss rising `consecutive_rises` evals in a row before
  this one (a dip after the sweet spot is noise); an eval set's loss above its first eval's by
  more than `eval_regression` (forgetting);
- strategy val_loss: the lowest val loss (with external_gate.require_pass, only gated passes);
  hybrid: the lowest val loss among the evals the external gate passed; external_gate: the best
  gate metric (metric_goal max or min), ties and a missing metric decided by val loss;
- external_gate.strict: a gate that failed to run blocks the candidate.
Step 0 is never chosen: it is the starting point the guards compare with.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..config.evaluation import gold_selection_of, saturation_of

Record = dict[str, Any]  # one eval of the report card: step, losses, accuracies, sets, probe, gate
METRIC_KEYS = {"loss": "loss", "token_accuracy": "token_accuracy", "exact_match": "exact_match",
               "format": "format_compliance"}


@dataclass
class Decision:
    chosen: bool
    reason: str
    blocked: bool = False
    guards: dict[str, str] = field(default_factory=dict)
    regressed: list[str] = field(default_factory=list)
    saturation: dict[str, Any] | None = None
    early_stop: str = ""


def _num(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) else None


# -- the loss guards -----------------------------------------------------------------------------

def guards(gs: dict, history: list[Record], current: Record) -> tuple[dict[str, str], list[str]]:
    """The guards that fire on this eval (code -> what was seen), and the regressed eval sets."""
    g = gs["guards"]
    fired: dict[str, str] = {}
    val, train = _num(current.get("val_loss")), _num(current.get("train_loss"))
    if val is not None and train is not None and train > 1e-6 and val / train > g["overfit_ratio"]:
        fired["overfit"] = f"val/train loss = {val / train:.1f}x > {g['overfit_ratio']:g}x"
    vals = [v for v in (_num(r.get("val_loss")) for r in [*history, current]) if v is not None]
    rises = 0
    for i in range(len(vals) - 2, 0, -1):  # the rises before this eval (MyPT's anti-flapping guard)
        if vals[i] > vals[i - 1]:
            rises += 1
        else:
            break
    if rises >= g["consecutive_rises"]:
        fired["rises"] = f"val loss rose {rises} evals in a row before this one"
    regressed, worst = [], ""
    baseline = history[0]["sets"] if history else {}
    for name, s in current.get("sets", {}).items():
        base, now = _num(baseline.get(name, {}).get("loss")), _num(s.get("loss"))
        if name == "val" or base is None or now is None or base <= 1e-6:
            continue
        change = (now - base) / base
        if change > g["eval_regression"]:
            regressed.append(name)
            worst = worst or f"{name} loss {base:.4f} -> {now:.4f} (+{change:.1%} > {g['eval_regression']:.0%})"
    if regressed:
        fired["regression"] = worst
    return fired, regressed


# -- the strategies ------------------------------------------------------------------------------

def _bests(history: list[Record]) -> tuple[float, float | None]:
    """(val loss of the chosen best so far, its gate metric): MyPT's best_gold_val_loss, best_gate_metric."""
    best_val, best_metric = math.inf, None
    for r in history:
        gate = r.get("gate") or {}
        if gate.get("chosen"):
            best_val = _num(r.get("val_loss")) if _num(r.get("val_loss")) is not None else math.inf
            metric = _num((gate.get("gate") or {}).get("metric"))
            if metric is not None:
                best_metric = metric
    return best_val, best_metric


def choose(gs: dict, history: list[Record], current: Record, gate: dict | None) -> tuple[bool, str, bool]:
    """The strategy's verdict on an eval the guards let through: (chosen, why, blocked by the gate)."""
    ext, strategy = gs["external_gate"], gs["strategy"]
    best_val, best_metric = _bests(history)
    val = _num(current.get("val_loss"))
    val_key = val if val is not None else math.inf
    passed = bool(gate and gate.get("passed"))
    if ext["enabled"] and ext["strict"] and gate and gate.get("ran") and not gate.get("ok"):
        why = gate.get("error") or f"exit {gate.get('returncode')}"
        return False, f"external gate failed to run (strict): {why}", True
    if strategy == "hybrid" and not passed:
        return False, "hybrid strategy: the external gate did not pass" + ("" if gate else " (it did not run)"), True
    if (strategy == "val_loss" and ext["enabled"] and ext["require_pass"] or
            strategy == "external_gate" and ext["require_pass"]) and not passed:
        return False, "the external gate must pass (require_pass) and did not", True
    if strategy == "external_gate":
        metric = _num((gate or {}).get("metric"))
        if metric is not None:
            maximise = ext["metric_goal"] == "max"
            if best_metric is None or (metric > best_metric if maximise else metric < best_metric):
                before = "none yet" if best_metric is None else f"{best_metric:g}"
                return True, f"gate metric {metric:g} beats {before}", False
            if metric == best_metric and val_key < best_val:
                return True, f"gate metric ties at {metric:g}; val loss {val_key:.4f} < {best_val:.4f}", False
            return False, f"gate metric {metric:g} does not beat {best_metric:g}", False
        if passed and val_key < best_val:
            return True, f"gate passed without a metric; val loss {val_key:.4f} < {_shown(best_val)}", False
        return False, "no gate metric" + ("" if passed else " and the gate did not pass"), False
    if val is None:
        return False, "no val split: nothing to choose by", False
    if val < best_val:
        return True, f"val loss {val:.4f} < {_shown(best_val)}" + (" (gate passed)" if passed else ""), False
    return False, f"val loss {val:.4f} does not beat {best_val:.4f}", False


def _shown(x: float) -> str:
    return "none yet" if math.isinf(x) else f"{x:.4f}"


# -- saturation and early stopping ---------------------------------------------------------------

def saturation(sat: dict, history: list[Record], current: Record) -> dict[str, Any] | None:
    """MyPT's token-accuracy saturation check over the last `window` evals (None when off or not
    yet checked): plateau, memorization shift, gap widening; `first_step` is when it first fired."""
    if not sat["enabled"] or current["step"] < sat["min_steps_before_check"]:
        return None
    points = [(_num(r.get("train_accuracy")), _num(r.get("val_accuracy"))) for r in [*history, current]]
    points = [(t, v) for t, v in points if t is not None and v is not None]
    w = sat["window"]
    if len(points) < w:
        return None
    (t0, v0), (t1, v1) = points[-w], points[-1]
    train_gain, val_gain = (t1 - t0) / (w - 1), (v1 - v0) / (w - 1)
    growth = (t1 - v1) - (t0 - v0)
    reasons = []
    if train_gain < sat["min_delta"] and val_gain < sat["min_delta"]:
        reasons.append(f"plateau (train {train_gain:+.4f}, val {val_gain:+.4f} an eval)")
    if val_gain < sat["min_delta"] and train_gain > 0 and growth > 0:
        reasons.append(f"memorization shift (val {val_gain:+.4f} an eval while train rises)")
    if growth > sat["gap_growth_threshold"]:
        reasons.append(f"gap widening (train - val accuracy grew {growth:+.4f} over {w} evals)")
    first = next((r["step"] for r in history if ((r.get("gate") or {}).get("saturation") or {}).get("detected")),
                 current["step"] if reasons else None)
    return {"detected": bool(reasons), "reason": "; ".join(reasons), "first_step": first,
            "train_gain": train_gain, "val_gain": val_gain, "gap_growth": growth}


def metric_problem(name: str, sets: list[str], probes: bool) -> str | None:
    """Why early_stopping_metric cannot be tracked in this run, or None when it can."""
    if name in ("val_loss", "train_loss"):
        return None if name == "train_loss" or "val" in sets else "val_loss needs a val split"
    set_name, _, metric = name.rpartition(".")
    if metric not in METRIC_KEYS or not set_name:
        return (f"'{name}' is not a tracked metric: use val_loss, train_loss or <set>.<metric> with metric "
                f"one of {', '.join(METRIC_KEYS)}")
    if set_name not in sets:
        return f"'{name}': no eval set '{set_name}' (the run's sets: {', '.join(sets) or 'none'})"
    if metric in ("exact_match", "format") and not probes:
        return f"'{name}' needs probes (probe_interval > 0)"
    return None


def metric_value(name: str, record: Record) -> float | None:
    if name in ("val_loss", "train_loss"):
        return _num(record.get(name))
    set_name, _, metric = name.rpartition(".")
    return _num(record.get("sets", {}).get(set_name, {}).get(METRIC_KEYS.get(metric, metric)))


def patience_stop(name: str, patience: int, history: list[Record], current: Record) -> str:
    """Why to stop (the metric has not improved for `patience` evals that measured it), or ""."""
    if patience <= 0:
        return ""
    lower = name.endswith("loss")
    seen = [(r["step"], v) for r in [*history, current] if (v := metric_value(name, r)) is not None]
    if len(seen) <= patience:
        return ""
    best_at = 0
    for k, (_, v) in enumerate(seen):
        if v < seen[best_at][1] if lower else v > seen[best_at][1]:
            best_at = k
    since = len(seen) - 1 - best_at
    if since < patience:
        return ""
    step, value = seen[best_at]
    return (f"{name} has not improved for {since} evals (best {value:.4f} at step {step}; "
            f"early_stopping_patience {patience})")


def decide(cfg: Any, history: list[Record], current: Record, gate: dict | None) -> Decision:
    """The whole verdict on one eval: guards, strategy, saturation and early stopping."""
    gs = gold_selection_of(cfg.gold_selection)
    fired, regressed = guards(gs, history, current)
    blocked = bool(fired) and gs["apply_loss_guards"]
    if current["step"] == 0:
        chosen, reason = False, "step 0: the starting weights, the baseline later evals compare with"
    elif blocked:
        chosen, reason = False, "blocked by a guard: " + "; ".join(fired.values())
    else:
        chosen, reason, blocked = choose(gs, history, current, gate)
    sat = saturation(saturation_of(cfg.token_accuracy_saturation), history, current)
    stop = ""
    if sat and sat["detected"] and saturation_of(cfg.token_accuracy_saturation)["action"] == "stop":
        stop = f"token accuracy saturation: {sat['reason']}"
    stop = stop or patience_stop(cfg.early_stopping_metric, cfg.early_stopping_patience, history, current)
    return Decision(chosen, reason, blocked, fired, regressed, sat, stop)
