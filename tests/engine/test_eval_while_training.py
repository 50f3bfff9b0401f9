"""Evaluation while training, end to end on tiny runs: MyPT-shaped JSON configs train with their eval
sets (prepared datasets and token streams at the configured paths) and every eval's events hold
each set's results; a missing or foreign set stops the run before step 0; an external gate picks
the checkpoint it rates best and a failing or hanging gate does not stop the run; saturation stops
a run with a final checkpoint; the report card is the events folded, and a resume decides alike."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from engine.checkpoint import load_model
from engine.dataset import open_dataset
from engine.events import Done, Eval, Gate, Probe, RunWarning, read_events
from engine.report import ReportCard
from engine.runs import checkpoints_in, run_info
from engine.train.job import TrainError, TrainRequest, build_job
from engine.train.loop import run_training
from helpers_data import many, prepared, varied

ARCH = {"n_layer": 2, "n_embd": 32, "n_head": 2, "block_size": 96, "dropout": 0.0, "bias": False,
        "tie_weights": True, "pos_encoding": "rope", "mlp_type": "swiglu", "norm_type": "rmsnorm",
        "rope_theta": 10000.0, "rope_scale": 1.0}
TRAINING = {"batch_size": 4, "learning_rate": 3e-3, "max_iters": 10, "eval_interval": 5, "save_every": 5,
            "warmup_iters": 0.1, "eval_iters": 2, "use_amp": True, "amp_dtype": "bf16", "grad_accum_steps": 1,
            "use_loss_mask": True, "batch_sampling_mode": "epoch", "pad_token_id": None, "episode_min_tokens": 4,
            "epoch_seed": 2811, "epoch_shuffle": True, "epoch_drop_last": True, "weight_decay": 0.05,
            "device": "cpu", "probe_episodes": 2, "eval_max_new_tokens": 6}


def mypt_config(path: Path, **keys) -> Path:
    """A MyPT-shaped JSON config (comments, use_amp, grad_accum_steps...) scaled down to a tiny model."""
    path.write_text(json.dumps({"name": path.stem, "description": "scaled-down MyPT phase config",
                                "comment_arch": "as MyPT's, tiny", **ARCH, **TRAINING, **keys}, indent=2))
    return path


@pytest.fixture()
def workspace(tmp_path):
    """The main dataset and MyPT's eval-set paths (relative to the current folder, as MyPT reads them)."""
    prepared(tmp_path, varied(40), name="main", tokenization="char", val_split=0.25, seed=1)
    for name in ("sft_phase1_format_lock", "sft_phase2_operators", "sft_phase3_chat"):
        folder = Path("data")
        folder.mkdir(exist_ok=True)
        prepared(folder, many(12, prefix=name[:10]), name=name, tokenization="char", val_split=0.25, seed=2)
    state = open_dataset(tmp_path / "main").tokenizer_state
    for name in ("general", "domain_161M_corpus_tokenized"):
        token_stream(Path("data") / name, state)
    return tmp_path


def token_stream(root: Path, tokenizer_state: dict) -> None:
    """A MyPT token-stream dataset: train/ and val/ shards of uint32 tokens, its metadata and tokenizer."""
    rng = np.random.RandomState(0)
    for split, n in (("train", 3000), ("val", 1000)):
        (root / split).mkdir(parents=True)
        rng.randint(0, 40, size=n).astype(np.uint32).tofile(root / split / "shard_00000.bin")
    (root / "dataset_metadata.json").write_text(json.dumps({"total_tokens": 4000, "train_shards": 1,
                                                            "val_shards": 1, "tokenization": "char"}))
    (root / "tokenizer_state.json").write_text(json.dumps({"token_kind": "char",
                                                           "chars": tokenizer_state["chars"]}))


def train(config: Path, data: Path, out: str, **overrides):
    events = []
    job = build_job(TrainRequest(output=out, dataset=str(data), config=str(config), init="scratch",
                                 overrides=overrides))
    return run_training(job, [events.append]), events


EVAL_SETS = {"phase1_format": "data/sft_phase1_format_lock", "phase2_operators": "data/sft_phase2_operators",
             "general": "data/general", "domain": "data/domain_161M_corpus_tokenized"}


def test_mypt_configs_train_with_their_eval_sets_and_every_eval_holds_each_sets_results(workspace):
    configs = [
        mypt_config(Path("phase2_8b.json"), eval_sets=EVAL_SETS, eval_seed=1337),
        mypt_config(Path("phase3_2.json"), eval_seed=1337, eval_sets={
            "phase1_format": "data/sft_phase1_format_lock", "phase3_chat": "data/sft_phase3_chat"},
            token_accuracy_saturation={"enabled": True, "window": 4, "min_steps_before_check": 150,
                                       "min_delta": 0.002, "gap_growth_threshold": 0.01, "action": "log_and_flag"}),
        mypt_config(Path("phase1.json"), eval_sets=None, eval_seed=1337),
    ]
    expected = [["val", *EVAL_SETS], ["val", "phase1_format", "phase3_chat"], ["val"]]
    for config, names in zip(configs, expected):
        result, events = train(config, workspace / "main", f"run_{config.stem}")
        assert result.reason == "completed" and result.step == 10
        evals = [e for e in events if isinstance(e, Eval)]
        assert [e.step for e in evals] == [0, 5, 10]
        for ev in evals:
            assert list(ev.sets) == names
            assert all(s["loss"] > 0 and s["tokens"] > 0 for s in ev.sets.values())
        assert evals[0].sets.get("general", {"kind": "tokens"})["kind"] == "tokens"
        probed = [e for e in events if isinstance(e, Probe) and not e.skipped]
        episode_sets = [n for n in names if n not in ("general", "domain")]
        assert probed and all(list(p.sets) == episode_sets for p in probed)
        assert len([e for e in events if isinstance(e, Gate)]) == 3
        on_disk = [e for e in read_events(Path("checkpoints") / f"run_{config.stem}" / "events.jsonl")
                   if isinstance(e, Eval)]
        assert [list(e.sets) for e in on_disk] == [names] * 3


def test_a_missing_or_foreign_eval_set_stops_the_run_before_step_0(workspace):
    config = mypt_config(Path("c.json"), eval_sets={"phase1_format": "data/sft_phase1_format_lock",
                                                    "general": "data/missing"})
    with pytest.raises(TrainError) as e:
        train(config, workspace / "main", "run_missing")
    line = next(n for n, text in enumerate(config.read_text().splitlines(), 1) if '"eval_sets"' in text)
    assert str(e.value).startswith(f"eval_sets.general (c.json:{line}): data/missing: no such folder")
    assert not (Path("checkpoints") / "run_missing").exists()
    prepared(Path("data"), many(8), name="gpt2_set", tokenization="gpt2", val_split=0.25)
    with pytest.raises(TrainError, match=r"eval_dataset_dir \(--eval_dataset_dir\): data/gpt2_set was prepared "
                                         r"with the gpt2 tokenizer .* but the run uses char"):
        train(mypt_config(Path("d.json")), workspace / "main", "run_foreign", eval_dataset_dir="data/gpt2_set")
    assert not (Path("checkpoints") / "run_foreign").exists()


GATE_SCRIPT = """
import json, sys
args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
step = json.load(open(args["--model"] + "/meta.json"))["step"]
MODE
json.dump({"gate_passed": True, "hard_avg_rate": -abs(step - 10)}, open(args["--output"], "w"))
"""


def gated(script: Path, mode: str, timeout: int = 60) -> dict:
    script.write_text(GATE_SCRIPT.replace("MODE", mode))
    return {"strategy": "external_gate", "apply_loss_guards": False, "external_gate": {
        "enabled": True, "script": str(script), "args": ["--model", "{model_name}", "--output", "{output_json}",
                                                        "--no_system_prompt"],
        "timeout_s": timeout, "metric_path": "hard_avg_rate", "metric_goal": "max", "run_on_final_eval": True}}


def test_external_gate_picks_the_checkpoint_it_rates_best(workspace):
    config = mypt_config(Path("g.json"), max_iters=20, probe_interval=0,
                         gold_selection=gated(Path("gate.py"), "pass"))
    result, events = train(config, workspace / "main", "run_gate")
    gates = [e for e in events if isinstance(e, Gate)]
    assert [(g.step, g.chosen, g.gate and g.gate["metric"]) for g in gates] == [
        (0, False, None), (5, True, -5.0), (10, True, 0.0), (15, False, -5.0), (20, False, -10.0)]
    run = Path("checkpoints/run_gate")
    assert load_model(run / "best")[1].meta["step"] == 10
    assert load_model(run / "best")[1].meta["metrics"]["selection"]["reason"] == "gate metric 0 beats -5"
    assert json.loads((run / "gate" / "step_000010.json").read_text())["hard_avg_rate"] == 0
    assert not (run / "gate" / "candidate").exists()
    assert result.reason == "completed"


@pytest.mark.parametrize("mode, timeout, error", [("sys.exit(3)", 60, "exit code 3"),
                                                  ("import time; time.sleep(30)", 1, "timed out after 1 s")])
def test_a_failing_or_hanging_gate_is_recorded_and_the_run_goes_on(workspace, mode, timeout, error):
    config = mypt_config(Path("g.json"), probe_interval=0,
                         gold_selection=gated(Path("gate.py"), mode, timeout=timeout))
    result, events = train(config, workspace / "main", "run_bad_gate")
    assert result.reason == "completed" and result.step == 10
    gates = [e for e in events if isinstance(e, Gate) and e.step > 0]
    assert len(gates) == 2 and all(g.gate["seconds"] < 15 for g in gates)  # a hanging gate is stopped at 1 s
    assert all(g.gate["ok"] is False and g.gate["error"].startswith(error) and not g.chosen for g in gates)
    assert not (Path("checkpoints/run_bad_gate") / "best").exists()


def test_saturation_with_action_stop_ends_the_run_with_a_final_checkpoint(workspace):
    config = mypt_config(Path("s.json"), max_iters=30, probe_interval=0, token_accuracy_saturation={
        "window": 2, "min_steps_before_check": 0, "min_delta": 1.0, "gap_growth_threshold": 1.0, "action": "stop"})
    result, events = train(config, workspace / "main", "run_sat")
    assert (result.reason, result.step) == ("completed", 5)
    done = [e for e in events if isinstance(e, Done)][0]
    assert done.early_stop.startswith("token accuracy saturation: plateau") and done.step == 5
    assert [p for p, _ in checkpoints_in(Path("checkpoints/run_sat"))] == [5]
    assert {w.code for w in events if isinstance(w, RunWarning)} >= {"saturation", "early_stop"}


def test_the_report_card_is_the_events_folded_and_runs_lists_the_best_scores(workspace):
    config = mypt_config(Path("r.json"), eval_sets={"phase1_format": "data/sft_phase1_format_lock"})
    train(config, workspace / "main", "run_report")
    run = Path("checkpoints/run_report")
    report = json.loads((run / "report.json").read_text())
    assert report == json.loads(json.dumps(ReportCard.of_run(run).to_dict()))
    assert report["schema"] == "mypt_report_v1" and [r["step"] for r in report["evals"]] == [0, 5, 10]
    assert set(report["sets"]) == {"val", "phase1_format"} and report["cost"]["probe_rounds"] >= 1
    info = run_info(run)
    assert info.best_step == report["best"]["step"] == load_model(run / "best")[1].meta["step"]
    best = report["best"]
    turns = sum(s.get("turns") or 0 for s in best["sets"].values())
    if turns:
        assert info.best_exact_match == best["exact_match"] and info.best_format == best["format_compliance"]


def test_a_resumed_run_keeps_one_history_and_chooses_as_the_uninterrupted_run(workspace):
    config = mypt_config(Path("u.json"), max_iters=15, probe_interval=0)
    _, whole = train(config, workspace / "main", "run_whole")
    stop = {"at": 10}
    events = []
    job = build_job(TrainRequest(output="run_split", dataset=str(workspace / "main"), config=str(config),
                                 init="scratch"))
    run_training(job, [events.append], should_stop=lambda: any(getattr(e, "step", 0) >= stop["at"]
                                                              and isinstance(e, Gate) for e in events))
    run_training(build_job(TrainRequest(output="run_split", resume=True)), [])
    card = ReportCard.of_run(Path("checkpoints/run_split"))
    assert [r["step"] for r in card.records] == [0, 5, 10, 15]
    assert [r["gate"]["chosen"] for r in card.records] == [g.chosen for g in whole if isinstance(g, Gate)]
