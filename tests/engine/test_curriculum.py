"""A curriculum: datasets switched at given steps of one run; the sampler, the audit and a resume follow."""

from __future__ import annotations

import json

import pytest

from engine.audit import read_audit
from engine.audit_verify import verify_audit
from engine.config import ConfigError, TrainConfig, load_config_text, to_toml
from engine.events import EpochStart, PhaseStart, RunStart, RunWarning, Step
from engine.train.job import TrainError, TrainJob, TrainRequest, build_job
from engine.train.loop import run_training
from helpers_data import chat, prepared, varied


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    """Two datasets of one char vocabulary (the same characters), with distinct episode ids."""
    tmp = tmp_path_factory.mktemp("phases")
    a = varied(16)
    b = [chat(f"b{i:03d}", ep["messages"][0]["content"], ep["messages"][1]["content"], system="Be brief.")
         for i, ep in enumerate(reversed(varied(24)))]
    prepared(tmp / "a", a, tokenization="char", val_split=0.25, seed=1)
    prepared(tmp / "b", b + a[:1], tokenization="char", val_split=0.25, seed=2)  # a[:1]: the same characters
    return tmp / "a" / "out", tmp / "b" / "out"


def curriculum(a, b, until=3):
    return {"description": "two steps", "phases": [{"name": "warm", "dataset_dir": str(a), "until_iter": until},
                                                   {"name": "main", "dataset_dir": str(b)}]}


def tiny(**kw) -> TrainConfig:
    base = dict(n_layer=2, n_embd=32, n_head=2, block_size=96, dropout=0.1, learning_rate=3e-3, batch_size=2,
                max_iters=6, warmup_iters=1, eval_interval=3, eval_iters=1, save_every=1, device="cpu",
                precision="fp32", batching="pad", episode_min_tokens=4)
    base.update(kw)
    return TrainConfig(**base)


class Rec(list):
    def __init__(self, stop_at=None):
        super().__init__()
        self.stop_at = stop_at

    def __call__(self, ev):
        self.append(ev)

    def of(self, kind):
        return [e for e in self if isinstance(e, kind)]

    def stop(self):
        return self.stop_at is not None and any(isinstance(e, Step) and e.step >= self.stop_at for e in self)


def train(dataset, out, cfg, stop_at=None, **job):
    rec = Rec(stop_at)
    result = run_training(TrainJob(config=cfg, dataset=dataset, output=out, **job), [rec], should_stop=rec.stop)
    return result, rec


def test_the_dataset_switches_after_until_iter_and_the_audit_follows(datasets, tmp_path):
    a, b = datasets
    result, rec = train(a, tmp_path / "run", tiny(curriculum=curriculum(a, b)))
    assert result.reason == "completed"
    steps = {e.step: e.episodes for e in rec.of(Step)}
    assert all(i.startswith("ep") for s in (1, 2, 3) for i in steps[s])  # phase 1: dataset a
    assert all(i.startswith(("b", "ep")) for s in (4, 5, 6) for i in steps[s])
    assert any(i.startswith("b") for s in (4, 5, 6) for i in steps[s])
    [phase] = rec.of(PhaseStart)
    assert (phase.step, phase.phase, phase.name, phase.dataset) == (3, 2, "main", str(b))
    assert [e.epoch for e in rec.of(EpochStart) if e.step == 3] == [0]  # the new phase starts its epoch 0
    assert [e.epoch for e in rec.of(Step)] == [0, 0, 0, 0, 0, 0]
    start = rec.of(RunStart)[0].preflight
    assert [p["name"] for p in start["curriculum"]] == ["warm", "main"] and start["phase"] == 1
    records = list(read_audit(tmp_path / "run" / "audit.jsonl"))
    assert [(r["kind"], r["step"], r.get("name")) for r in records if r["kind"] == "phase"] == [("phase", 4, "main")]
    assert verify_audit(tmp_path / "run" / "audit.jsonl").ok


@pytest.mark.parametrize("stop_at", [2, 3, 4])
def test_a_resume_lands_in_the_right_phase_with_the_exact_next_batch(datasets, tmp_path, stop_at):
    a, b = datasets
    cfg = tiny(curriculum=curriculum(a, b))
    _, whole = train(a, tmp_path / "whole", cfg)
    _, first = train(a, tmp_path / "split", cfg, stop_at=stop_at)
    _, rest = train(a, tmp_path / "split", cfg, resume=True)
    losses = {**{e.step: e.loss for e in first.of(Step)}, **{e.step: e.loss for e in rest.of(Step)}}
    assert losses == {e.step: e.loss for e in whole.of(Step)}  # identical floats
    assert [e.episodes for e in rest.of(Step)] == [e.episodes for e in whole.of(Step)][stop_at:]
    assert len(rest.of(PhaseStart)) == (1 if stop_at <= 3 else 0)
    assert verify_audit(tmp_path / "split" / "audit.jsonl").ok


def test_without_dataset_the_first_phase_trains_and_a_different_dataset_is_refused(datasets, tmp_path):
    a, b = datasets
    cfg_file = tmp_path / "c.json"
    cfg_file.write_text(json.dumps({"curriculum": curriculum(a, b)}))
    job = build_job(TrainRequest(output=str(tmp_path / "r"), config=str(cfg_file)))
    assert job.dataset == a
    with pytest.raises(TrainError, match="is not the curriculum's first phase dataset_dir"):
        build_job(TrainRequest(output=str(tmp_path / "r"), config=str(cfg_file), dataset=str(b)))


def test_a_phase_with_another_tokenizer_is_refused_before_the_run_starts(datasets, tmp_path):
    a, _ = datasets
    prepared(tmp_path, varied(8), name="gpt2", tokenization="gpt2")
    with pytest.raises(TrainError, match="curriculum phase 2 \\('main'\\): .* another tokenizer"):
        train(a, tmp_path / "run", tiny(curriculum=curriculum(a, tmp_path / "gpt2")))
    assert not (tmp_path / "run").exists()


def test_a_phase_that_begins_after_max_iters_is_a_warning(datasets, tmp_path):
    a, b = datasets
    _, rec = train(a, tmp_path / "run", tiny(max_iters=2, curriculum=curriculum(a, b, until=5)))
    assert not rec.of(PhaseStart)
    assert [w.message for w in rec.of(RunWarning)] == [
        "curriculum phase 2 ('main') begins after step 5, but max_iters is 2: it will not train"]


@pytest.mark.parametrize("value, words", [
    ([], "must be a list of phases"),
    ([{"name": "a"}], "phase 1: dataset_dir must be a non-empty string"),
    ([{"name": "a", "dataset_dir": "d"}, {"name": "b", "dataset_dir": "e"}], "phase 1 ('a') needs until_iter"),
    ([{"name": "a", "dataset_dir": "d", "until_iter": 5}, {"name": "a", "dataset_dir": "e"}], "'a' appears more"),
    ([{"name": "a", "dataset_dir": "d", "until_iter": 5}, {"name": "b", "dataset_dir": "e", "until_iter": 5}],
     "phase 'b' ends at until_iter 5, not after"),
    ([{"name": "a", "dataset_dir": "d", "until": 5}], "phase 1: unknown key(s) 'until'"),
    ({"phases": [{"name": "a", "dataset_dir": "d"}], "mode": "x"}, "unknown key(s) 'mode'"),
])
def test_a_bad_curriculum_is_named_with_the_phase(value, words):
    with pytest.raises(ConfigError) as e:
        load_config_text(json.dumps({"curriculum": value}), "c.json", "json")
    assert str(e.value).startswith("c.json:1: curriculum ") and words in str(e.value)


def test_switch_iter_and_until_iter_say_the_same_and_the_value_round_trips_through_toml():
    given = {"phases": [{"name": "a", "dataset_dir": "d/a", "switch_iter": 0},
                        {"name": "b", "dataset_dir": "d/b", "switch_iter": 7, "description": "main"}]}
    cfg = load_config_text(json.dumps({"curriculum": given}), "c.json", "json")
    assert cfg.curriculum["phases"][0]["until_iter"] == 7 and "switch_iter" not in cfg.curriculum["phases"][1]
    assert load_config_text(to_toml(cfg), "r.toml").curriculum == cfg.curriculum


def test_a_curriculum_typed_as_a_flag_is_read_as_json():
    """`--curriculum '{...}'` and the Config form's field parse the same value as a TOML table."""
    from engine.config.checks import parse_text
    from engine.config.schema import FIELDS

    value = parse_text(FIELDS["curriculum"], '{"phases": [{"name": "a", "dataset_dir": "d/a", "until_iter": 5},'
                                             ' {"name": "b", "dataset_dir": "d/b"}]}')
    assert [(p["name"], p["dataset_dir"], p["until_iter"]) for p in value["phases"]] == [
        ("a", "d/a", 5), ("b", "d/b", None)]
