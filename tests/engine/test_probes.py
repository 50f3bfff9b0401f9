"""Probes and fixed samples: a scripted model's known replies give known rates, scored as `mypt eval`
scores them; the same eval_seed gives the same sample; the time budget skips a round that would
pass it and says so."""

from __future__ import annotations

import numpy as np
import pytest

import engine.eval as engine_eval
import engine.train.probes as probes_module
from engine.config import TrainConfig
from engine.dataset import open_dataset
from engine.episode import Message
from engine.scoring import episode_turns
from engine.train.evalset import EvalSet, TokenWindows
from engine.train.probes import Probes, PromptProbe, probe_sample
from engine.train.setup import census
from helpers_data import chat, prepared


def cfg(**kw) -> TrainConfig:
    base = dict(n_layer=2, n_embd=32, n_head=2, block_size=96, batch_size=2, max_iters=10, warmup_iters=0,
                eval_iters=1, batching="pad", episode_min_tokens=4, device="cpu", precision="fp32",
                probe_episodes=4, eval_max_new_tokens=64)
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("probes")
    eps = [chat(f"ep{i}", f"Question {i}?", f"Answer {i}.", meta={"family": "even" if i % 2 == 0 else "odd"})
           for i in range(16)]
    prepared(tmp, eps, tokenization="char", val_split=0.25, seed=3)
    return open_dataset(tmp / "out")


class Scripted:
    """A model stand-in: generate() returns a fixed reply per prompt and records the token limit."""

    def __init__(self, replies: dict[tuple[int, ...], list[int]]) -> None:
        self.replies, self.limits = replies, []

    def __call__(self, model, prompt, sampling, stop_ids=(), should_stop=None):
        self.limits.append(sampling.max_new_tokens)
        return iter(self.replies[tuple(prompt)])


def test_a_scripted_model_scores_exactly_the_known_rates(data, monkeypatch):
    tok, val = data.tokenizer(), data.split("val")
    close, eot = tok.tag_id("/assistant"), tok.eot_id
    replies, kinds = {}, ["exact", "wrong", "unclosed", "eot"]
    sample = probe_sample(val, 4, 1337)
    for k, i in enumerate(sample):
        turn = episode_turns(val.episode(i)[0], tok)[0]
        body = turn.gold_ids[:-1]
        replies[tuple(turn.prompt)] = {"exact": body + [close], "wrong": tok.encode("Nope.") + [close],
                                       "unclosed": tok.encode("x"), "eot": body + [eot]}[kinds[k]]
    scripted = Scripted(replies)
    monkeypatch.setattr(engine_eval, "generate", scripted)
    probe = Probes(tok, cfg(), [("val", val)], []).round(model=None, step=5)
    s = probe.sets["val"]
    assert (s["turns"], s["exact"], s["formatted"]) == (4, 2, 2)  # exact: "exact" and "eot"; format: exact, wrong
    assert (s["exact_match"], s["format_compliance"], s["tool_call_validity"]) == (0.5, 0.5, None)
    fams = {val.families[i] for i in sample}
    assert set(s["families"]) == fams and sum(f["turns"] for f in s["families"].values()) == 4
    by_episode = {r["episode"]: r for r in probe.replies}
    first = by_episode[val.ids[sample[0]]]
    assert first["exact"] and first["formatted"] and first["gold"] == first["reply"] and first["problem"] is None
    assert by_episode[val.ids[sample[2]]]["problem"] == "no </myPT_assistant> within 1 tokens"
    gold_lengths = [len(episode_turns(val.episode(i)[0], tok)[0].gold_ids) for i in sample]
    assert scripted.limits == [min(n + 16, 64) for n in gold_lengths]  # mypt eval's limit, capped


def test_the_token_cap_bounds_every_probe_reply(data, monkeypatch):
    tok, val = data.tokenizer(), data.split("val")
    scripted = Scripted({tuple(episode_turns(val.episode(i)[0], tok)[0].prompt): [tok.tag_id("/assistant")]
                         for i in range(len(val))})
    monkeypatch.setattr(engine_eval, "generate", scripted)
    Probes(tok, cfg(eval_max_new_tokens=3), [("val", val)], []).round(model=None, step=0)
    assert scripted.limits == [3, 3, 3, 3]


def test_prompts_with_expected_outputs_are_scored_and_others_only_shown(data, monkeypatch):
    tok = data.tokenizer()
    close = tok.tag_id("/assistant")
    good = PromptProbe("copy", tok.encode_prompt("<myPT_user>Say hi</myPT_user><myPT_assistant>"),
                       Message("assistant", "hi"), len(tok.encode("hi")) + 1)
    loose = PromptProbe("free", tok.encode_prompt("<myPT_user>Anything</myPT_user><myPT_assistant>"), None, 0)
    monkeypatch.setattr(probes_module, "generate", Scripted({tuple(good.prompt): tok.encode("hi") + [close],
                                                             tuple(loose.prompt): tok.encode("ok") + [close]}))
    probe = Probes(tok, cfg(), [], [good, loose]).round(model=None, step=0)
    assert (probe.sets["prompts"]["turns"], probe.sets["prompts"]["exact_match"]) == (1, 1.0)
    assert [(r["episode"], r["exact"], r["reply"]) for r in probe.replies] == [("copy", True, "hi"),
                                                                               ("free", None, "ok")]


def test_the_budget_skips_a_round_that_would_pass_it_and_the_first_round_always_runs(data, monkeypatch):
    tok, val = data.tokenizer(), data.split("val")
    monkeypatch.setattr(engine_eval, "generate", lambda *a, **k: iter([tok.tag_id("/assistant")]))
    p = Probes(tok, cfg(probe_budget=0.1), [("val", val)], [])
    assert not p.round(model=None, step=0).skipped  # nothing measured yet: it runs
    p.spent, p.last, p.clock = 10.0, 10.0, p.clock - 50.0  # 10 s of probes in 50 s, 10 s a round
    skipped = p.round(model=None, step=5, eta=50.0)
    assert skipped.skipped.startswith("probes took 10.0 s of the run's 50 s") and skipped.replies == []
    assert not p.round(model=None, step=10, eta=1000.0).skipped  # a long run ahead: room for it


def test_step_zero_of_a_run_from_scratch_is_not_probed(data, monkeypatch):
    tok, val = data.tokenizer(), data.split("val")
    monkeypatch.setattr(engine_eval, "generate", lambda *a, **k: iter([tok.tag_id("/assistant")]))
    p = Probes(tok, cfg(), [("val", val)], [])
    assert p.round(None, 0, untrained=True).skipped.startswith("untrained weights")
    assert not p.round(None, 5).skipped


def test_probe_interval_probes_every_nth_eval_and_the_last(data, monkeypatch):
    tok, val = data.tokenizer(), data.split("val")
    monkeypatch.setattr(engine_eval, "generate", lambda *a, **k: iter([tok.tag_id("/assistant")]))
    p = Probes(tok, cfg(probe_interval=3, probe_budget=1.0), [("val", val)], [])
    ran = [p.round(None, step, final=step == 25) is not None for step in range(0, 30, 5)]
    assert ran == [True, False, False, True, False, True]


def test_the_same_eval_seed_gives_the_same_samples_and_another_seed_others(data):
    train = data.split("train")
    elig = census(train, cfg())

    def sample(seed: int) -> list[int]:
        return EvalSet(train, elig, cfg(eval_seed=seed), data.tokenizer().pad_id).episodes

    assert sample(7) == sample(7) and len(sample(7)) == 2
    assert sample(7) != sample(8)
    assert probe_sample(train, 4, 7) == probe_sample(train, 4, 7) != probe_sample(train, 4, 8)
    shard = np.arange(5000, dtype=np.uint32) % 50
    w1, w2 = TokenWindows([shard], cfg(eval_seed=7)), TokenWindows([shard], cfg(eval_seed=7))
    assert [w.tolist() for w in w1.windows] == [w.tolist() for w in w2.windows]
    assert [w[0] for w in w1.windows] != [w[0] for w in TokenWindows([shard], cfg(eval_seed=8)).windows]
