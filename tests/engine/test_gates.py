"""The checkpoint choice and the early stops, on constructed eval histories: each guard fires on the
sequence that should fire it and stays quiet one step short of it; each strategy picks what MyPT's
would; the saturation detector and patience stop exactly when their rule says."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from engine.config.evaluation import check_gold_selection, check_saturation, gold_selection_of
from engine.train.gates import choose, decide, guards, metric_problem, patience_stop, saturation


def rec(step: int, val: float | None = 1.0, train: float = 1.0, sets: dict | None = None, chosen: bool = False,
        metric: float | None = None, tacc: float | None = None, vacc: float | None = None) -> dict:
    gate = {"chosen": chosen, "gate": {"metric": metric}} if chosen else None
    return {"step": step, "val_loss": val, "train_loss": train, "train_accuracy": tacc, "val_accuracy": vacc,
            "sets": {name: {"loss": v} for name, v in (sets or {}).items()}, "gate": gate}


GS = gold_selection_of(None)  # MyPT's defaults: overfit 5x, 2 rises, 20% regression


def test_overfit_ratio_fires_above_the_ratio_only():
    assert guards(GS, [rec(0)], rec(5, val=5.1, train=1.0))[0] == {"overfit": "val/train loss = 5.1x > 5x"}
    assert guards(GS, [rec(0)], rec(5, val=5.0, train=1.0))[0] == {}


def test_consecutive_rises_fire_after_two_rises_before_the_dip():
    history = [rec(0, val=2.0), rec(5, val=1.0), rec(10, val=1.1), rec(15, val=1.2)]
    fired, _ = guards(GS, history, rec(20, val=0.9))
    assert fired == {"rises": "val loss rose 2 evals in a row before this one"}
    assert guards(GS, history[:-1], rec(15, val=0.9))[0] == {}  # one rise is not a trend
    assert guards(GS, [rec(0, val=2.0), rec(5, val=1.0), rec(10, val=1.1), rec(15, val=1.0)],
                  rec(20, val=0.9))[0] == {}  # the rises were interrupted


def test_eval_regression_names_the_set_that_regressed_against_the_first_eval():
    history = [rec(0, sets={"val": 2.0, "general": 2.0, "code": 1.0}), rec(5, sets={"general": 3.0})]
    fired, regressed = guards(GS, history, rec(10, sets={"val": 9.0, "general": 2.41, "code": 1.2}))
    assert regressed == ["general"]
    assert fired == {"regression": "general loss 2.0000 -> 2.4100 (+20.5% > 20%)"}
    assert guards(GS, history, rec(10, sets={"general": 2.4, "code": 1.2}))[0] == {}  # exactly +20% is allowed


def test_a_guard_blocks_the_choice_unless_loss_guards_are_off():
    cfg = SimpleNamespace(gold_selection=None, token_accuracy_saturation=None, early_stopping_patience=0,
                          early_stopping_metric="val_loss")
    d = decide(cfg, [rec(0, val=3.0)], rec(5, val=6.0, train=1.0), None)
    assert (d.chosen, d.blocked) == (False, True) and d.reason.startswith("blocked by a guard: val/train")
    cfg.gold_selection = check_gold_selection({"apply_loss_guards": False})
    d = decide(cfg, [rec(0, val=3.0)], rec(5, val=6.0, train=1.0), None)
    assert d.chosen and d.guards == {"overfit": "val/train loss = 6.0x > 5x"}  # shown, not blocking


def test_step_zero_is_never_chosen():
    cfg = SimpleNamespace(gold_selection=None, token_accuracy_saturation=None, early_stopping_patience=0,
                          early_stopping_metric="val_loss")
    assert not decide(cfg, [], rec(0, val=0.1), None).chosen


def test_val_loss_strategy_keeps_the_lowest_val_loss():
    history = [rec(0, val=3.0), rec(5, val=2.0, chosen=True)]
    assert choose(GS, history, rec(10, val=1.9), None)[:2] == (True, "val loss 1.9000 < 2.0000")
    assert choose(GS, history, rec(10, val=2.1), None)[:2] == (False, "val loss 2.1000 does not beat 2.0000")


GATED = check_gold_selection({"strategy": "external_gate", "external_gate": {
    "enabled": True, "script": "g.py", "metric_path": "score", "metric_goal": "max"}})


def test_external_gate_strategy_follows_the_metric_and_breaks_ties_by_val_loss():
    history = [rec(0), rec(5, val=2.0, chosen=True, metric=0.5)]
    assert choose(GATED, history, rec(10, val=2.5), {"ran": True, "ok": True, "passed": True, "metric": 0.7})[0]
    assert not choose(GATED, history, rec(10, val=1.0), {"ran": True, "ok": True, "passed": True, "metric": 0.4})[0]
    assert choose(GATED, history, rec(10, val=1.5), {"ran": True, "ok": True, "passed": True, "metric": 0.5})[0]
    lower = check_gold_selection({**GATED, "external_gate": {**GATED["external_gate"], "metric_goal": "min"}})
    assert choose(lower, history, rec(10, val=9.0), {"ran": True, "ok": True, "passed": True, "metric": 0.4})[0]


def test_a_failed_gate_blocks_only_under_strict_or_hybrid():
    failed = {"ran": True, "ok": False, "passed": False, "metric": None, "error": "timed out after 1 s"}
    assert choose(GATED, [rec(0)], rec(5, val=1.0), failed) == (False, "no gate metric and the gate did not pass",
                                                                  False)
    strict = check_gold_selection({**GATED, "external_gate": {**GATED["external_gate"], "strict": True}})
    assert choose(strict, [rec(0)], rec(5), failed) == (
        False, "external gate failed to run (strict): timed out after 1 s", True)
    hybrid = check_gold_selection({**GATED, "strategy": "hybrid"})
    assert choose(hybrid, [rec(0)], rec(5), failed)[2] is True
    assert choose(hybrid, [rec(0)], rec(5, val=0.5), {**failed, "ok": True, "passed": True})[0]


SAT = check_saturation({"window": 3, "min_steps_before_check": 10, "min_delta": 0.01,
                        "gap_growth_threshold": 0.05, "action": "stop"})


def acc(step: int, t: float, v: float) -> dict:
    return rec(step, tacc=t, vacc=v)


def test_saturation_flags_a_plateau_and_a_widening_gap_and_not_a_healthy_climb():
    climbing = [acc(0, 0.50, 0.50), acc(5, 0.60, 0.58)]
    assert saturation(SAT, climbing, acc(10, 0.70, 0.66))["detected"] is False
    plateau = saturation(SAT, [acc(0, 0.80, 0.78), acc(5, 0.805, 0.785)], acc(10, 0.81, 0.79))
    assert plateau["detected"] and plateau["reason"].startswith("plateau") and plateau["first_step"] == 10
    widening = saturation(SAT, [acc(0, 0.5, 0.5), acc(5, 0.6, 0.52)], acc(10, 0.7, 0.54))
    assert widening["detected"] and "gap widening" in widening["reason"]


def test_saturation_waits_for_min_steps_and_a_full_window():
    assert saturation(SAT, [acc(0, 0.8, 0.8), acc(5, 0.8, 0.8)], acc(9, 0.8, 0.8)) is None
    assert saturation(SAT, [acc(5, 0.8, 0.8)], acc(10, 0.8, 0.8)) is None


def test_saturation_with_action_stop_stops_the_run_and_log_and_flag_does_not():
    cfg = SimpleNamespace(gold_selection=None, token_accuracy_saturation=SAT, early_stopping_patience=0,
                          early_stopping_metric="val_loss")
    flat = [acc(0, 0.8, 0.8), acc(5, 0.8, 0.8)]
    assert decide(cfg, flat, acc(10, 0.8, 0.8), None).early_stop.startswith("token accuracy saturation: plateau")
    cfg.token_accuracy_saturation = {**SAT, "action": "log_and_flag"}
    d = decide(cfg, flat, acc(10, 0.8, 0.8), None)
    assert d.saturation["detected"] and d.early_stop == ""


def test_patience_stops_after_that_many_evals_without_improvement():
    history = [rec(0, val=3.0), rec(5, val=2.0), rec(10, val=2.1)]
    assert patience_stop("val_loss", 2, history, rec(15, val=2.0)) == (
        "val_loss has not improved for 2 evals (best 2.0000 at step 5; early_stopping_patience 2)")
    assert patience_stop("val_loss", 2, history, rec(15, val=1.99)) == ""
    assert patience_stop("val_loss", 3, history, rec(15, val=2.5)) == ""
    em = [{"step": s, "sets": {"val": {"exact_match": v}}} for s, v in ((0, 0.1), (5, 0.5), (10, None))]
    assert patience_stop("val.exact_match", 1, em, {"step": 15, "sets": {"val": {"exact_match": 0.4}}})
    assert not patience_stop("val.exact_match", 1, em, {"step": 15, "sets": {"val": {"exact_match": 0.6}}})


@pytest.mark.parametrize("name, problem", [
    ("val_loss", None), ("general.loss", None), ("val.exact_match", None),
    ("nope.loss", "'nope.loss': no eval set 'nope' (the run's sets: val, general)"),
    ("val.bleu", "'val.bleu' is not a tracked metric: use val_loss, train_loss or <set>.<metric> with metric one "
                 "of loss, token_accuracy, exact_match, format"),
])
def test_early_stopping_metric_names_are_checked_against_the_runs_sets(name, problem):
    assert metric_problem(name, ["val", "general"], probes=True) == problem
    assert metric_problem("val.format", ["val"], probes=False) == "'val.format' needs probes (probe_interval > 0)"
