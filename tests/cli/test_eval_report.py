"""What evaluation while training shows outside the app: the table the headless console prints at
each eval, the report card `mypt runs --json` gives, and the best checkpoint's exact match and
format in `mypt runs`; and the eval keys as a user writes them (TOML, MyPT JSON, flags)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from engine.config import ConfigError, load_config_text, to_toml
from engine.events import Done, Eval, Gate, JsonlSink, Probe, RunStart, Step
from mypt_tui.cli.main import main
from mypt_tui.flags import parse_train_flags
from mypt_tui.present.console import ConsoleSink


def sets(val: float, tool: float, acc: float = 0.5) -> dict:
    return {"val": {"loss": val, "token_accuracy": acc, "tokens": 100, "kind": "episodes", "split": "val", "path": ""},
            "tool": {"loss": tool, "token_accuracy": 0.25, "tokens": 80, "kind": "episodes", "split": "val",
                     "path": "data/tool"}}


def probe_sets(val_exact: int, tool_exact: int) -> dict:
    def one(exact: int, turns: int = 4) -> dict:
        return {"turns": turns, "exact": exact, "formatted": turns, "tool_turns": 0, "tool_valid": 0,
                "exact_match": exact / turns, "format_compliance": 1.0, "tool_call_validity": None, "families": {}}
    return {"val": one(val_exact), "tool": one(tool_exact)}


def history(run: Path) -> list:
    step = Step(step=5, loss=2.0, lr=1e-3, grad_norm=1.0, tokens=100, supervised=50, tokens_per_s=100.0,
                supervised_per_s=50.0, epoch=0, epoch_progress=0.5, elapsed=10.0, eta_s=10.0)
    return [
        RunStart(step=0, run_dir=str(run), max_iters=10, config={}, model={"params": 1}, preflight={}),
        Eval(step=0, val_loss=3.0, train_loss=3.0, sets=sets(3.0, 2.0), seconds=0.5),
        Gate(step=0, strategy="val_loss", chosen=False, reason="step 0: the starting weights"),
        step,
        Eval(step=5, val_loss=2.0, train_loss=1.9, sets=sets(2.0, 2.5, acc=0.6), seconds=0.5),
        Probe(step=5, sets=probe_sets(3, 1), replies=[{"set": "val", "episode": "e1", "turn": 1, "family": "all",
                                                        "gold": "Hi.", "reply": "Hi.", "exact": True,
                                                        "formatted": True, "problem": None}],
              seconds=1.0, spent=1.0, share=0.08, budget=0.1),
        Gate(step=5, strategy="val_loss", chosen=True, reason="val loss 2.0000 < none yet", val_loss=2.0,
             best_step=5, guards={"regression": "tool loss 2.0000 -> 2.5000 (+25.0% > 20%)"}, regressed=["tool"]),
        Done(step=10, reason="completed", elapsed=20.0, best_val_loss=2.0),
    ]


def test_the_console_prints_the_eval_table_at_each_eval(tmp_path):
    out = io.StringIO()
    sink = ConsoleSink(out)
    for ev in history(tmp_path / "run")[1:7]:  # (the run start's report needs a real model)
        sink(ev)
    text = out.getvalue()
    assert "step 0: train 3.0000 · evals 0.5 s\n" in text
    table = text[text.index("step 5: train"):].splitlines()
    assert table[0] == ("step 5: train 1.9000 · evals 0.5 s · probes: 8 replies in 1.0 s "
                        "(8.0% of the run so far; budget 10%)")
    assert table[1].split() == ["set", "loss", "token", "acc", "exact", "match", "format"]
    assert table[2].split() == ["val", "2.0000", "↓1.0000", "60.0%", "↑10.0", "75.0%", "100.0%"]
    assert table[3].split()[:5] == ["tool", "2.5000", "↑0.5000", "25.0%", "="]
    assert table[3].endswith("! tool loss 2.0000 -> 2.5000 (+25.0% > 20%)")
    assert table[4] == "  all probed turns: exact match 50.0%, format 100.0%"
    assert table[5] == "  chosen: val loss 2.0000 < none yet (best/ = step 5)"


def write_run(run: Path, events: list) -> None:
    run.mkdir(parents=True)
    sink = JsonlSink(run / "events.jsonl")
    for ev in events:
        sink(ev)
    sink.close()


def test_runs_lists_the_best_checkpoints_scores_and_json_holds_the_report_card(tmp_path, capsys):
    root = tmp_path / "ckpt"
    write_run(root / "r1", history(root / "r1"))
    assert main(["runs", "--checkpoints", str(root)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[-4:] == ["BEST", "EXACT", "BEST", "FORMAT"]
    assert lines[1].split()[-2:] == ["50.0%", "100.0%"]
    assert main(["runs", "--checkpoints", str(root), "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert (row["best_step"], row["best_exact_match"], row["best_format"]) == (5, 0.5, 1.0)
    report = row["report"]
    assert report["schema"] == "mypt_report_v1" and [r["step"] for r in report["evals"]] == [0, 5]
    assert report["best"]["reason"] == "val loss 2.0000 < none yet"
    assert report["evals"][1]["sets"]["tool"]["exact_match"] == 0.25
    assert report["evals"][1]["gate"]["regressed"] == ["tool"] and "replies" not in report
    assert report["cost"] == {"eval_seconds": 1.0, "probe_seconds": 1.0, "probe_rounds": 1,
                              "probe_rounds_skipped": 0, "run_seconds": 20.0, "eval_share": 0.05, "probe_share": 0.05}


def test_eval_keys_in_toml_inline_tables_sections_and_mypt_json():
    inline = load_config_text('eval_sets = { general = "data/general" }\neval_seed = 7\n', "c.toml")
    section = load_config_text('eval_seed = 7\n\n[eval_sets]\ngeneral = "data/general"\n', "c.toml")
    mypt = load_config_text('{"eval_sets": {"general": "data/general"}, "eval_seed": 7}', "c.json", "json")
    assert inline.eval_sets == section.eval_sets == mypt.eval_sets == {"general": "data/general"}
    assert load_config_text(to_toml(inline), "r.toml") == inline
    gs = load_config_text('{"gold_selection": {"guards": {"overfit_ratio": 6.0}}}', "c.json", "json").gold_selection
    assert gs["strategy"] == "val_loss" and gs["guards"] == {"overfit_ratio": 6.0, "consecutive_rises": 2,
                                                              "eval_regression": 0.2}


@pytest.mark.parametrize("text, message", [
    ('{\n "gold_selection": {"strategy": "best"}\n}',
     'c.json:2: gold_selection key strategy must be one of "val_loss", "hybrid", "external_gate", got "best"'),
    ('{\n "gold_selection": {"external_gate": {"enabled": true, "script": "g.py", "timout_s": 5}}\n}',
     "c.json:2: gold_selection has an unknown key 'external_gate.timout_s' (did you mean 'timeout_s'?); known: "
     "enabled, script, args, timeout_s, run_interval_evals, run_on_final_eval, metric_path, metric_goal, pass_path, "
     "require_pass, strict"),
    ('{\n "gold_selection": {"strategy": "hybrid"}\n}',
     'c.json:2: gold_selection has strategy "hybrid", which needs external_gate.enabled = true and a script that '
     "rates each checkpoint"),
    ('{\n\n "token_accuracy_saturation": {"window": 1}\n}',
     "c.json:3: token_accuracy_saturation key window must be an integer >= 2, got 1"),
])
def test_eval_key_errors_name_the_file_line_key_and_sub_key(text, message):
    with pytest.raises(ConfigError) as e:
        load_config_text(text, "c.json", "json")
    assert str(e.value) == message


def test_eval_keys_as_flags():
    req = parse_train_flags(["--output", "r", "--eval_sets", '{"general": "data/general"}',
                             "--eval-dataset-dir", "data/x", "--probe_budget", "0.2"])
    assert req.overrides == {"eval_sets": {"general": "data/general"}, "eval_dataset_dir": "data/x",
                             "probe_budget": 0.2}
    with pytest.raises(Exception, match="must be a JSON object"):
        parse_train_flags(["--output", "r", "--eval_sets", "general=data/general"])
