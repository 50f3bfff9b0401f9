"""The shipped demo gold sets: reproducible from their generator, readable, and honest held-out
splits (the demo's exact-match figure means something only if held-out questions are new)."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from engine.episode import Episode, EpisodeError, read_episodes

DATA = Path(__file__).resolve().parents[2] / "data"
GENERATOR = DATA / "make_demo_sets.py"
FILES = ("demo_chat.jsonl", "demo_chat_heldout.jsonl", "demo_tool.jsonl", "demo_tool_heldout.jsonl")


def _generator():
    spec = importlib.util.spec_from_file_location("make_demo_sets", GENERATOR)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["make_demo_sets"] = mod  # dataclasses look their module up by name
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def gen():
    return _generator()


@pytest.fixture(scope="module")
def sets() -> dict[str, list[Episode]]:
    out = {}
    for name in FILES:
        eps = list(read_episodes(DATA / name))
        errors = [str(e) for e in eps if isinstance(e, EpisodeError)]
        assert errors == [], errors[:5]
        out[name] = eps
    return out


def _raw(name: str) -> list[dict]:
    return [json.loads(line) for line in (DATA / name).read_text(encoding="utf-8").splitlines()]


def test_generator_is_deterministic(gen):
    assert gen.build() == gen.build()


def test_committed_files_equal_generator_output():
    r = subprocess.run([sys.executable, str(GENERATOR), "--check"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_check_fails_on_a_changed_file(gen, tmp_path, capsys):
    assert gen.main(["--out", str(tmp_path)]) == 0
    assert gen.main(["--out", str(tmp_path), "--check"]) == 0
    f = tmp_path / "demo_tool.jsonl"
    f.write_bytes(f.read_bytes().replace(b"The answer is", b"The answer was", 1))
    capsys.readouterr()
    assert gen.main(["--out", str(tmp_path), "--check"]) == 1
    assert capsys.readouterr().err == (f"{f}: differs from the generator's output "
                                       "(run: python data/make_demo_sets.py)\n")


def test_counts_and_sizes(sets):
    assert len(sets["demo_chat.jsonl"]) >= 2000
    assert 200 <= len(sets["demo_chat_heldout.jsonl"]) <= 400
    assert 300 <= len(sets["demo_tool.jsonl"]) <= 1500
    assert 100 <= len(sets["demo_tool_heldout.jsonl"]) <= 400
    assert sum((DATA / n).stat().st_size for n in FILES) < 4_000_000


def test_schema_meta_and_multi_turn(sets):
    for name, eps in sets.items():
        split = "heldout" if "heldout" in name else "train"
        ids = [ep.id for ep in eps]
        assert len(set(ids)) == len(ids), name
        for ep in eps:
            assert ep.meta["split"] == split and ep.family != "all" and ep.system, ep.source
    chat = sets["demo_chat.jsonl"]
    multi = [ep for ep in chat if sum(m.role == "user" for m in ep.messages) > 1]
    assert 0.05 < len(multi) / len(chat) < 0.4
    assert all(ep.family == "multi_turn" for ep in multi)


@pytest.mark.parametrize("kind", ["chat", "tool"])
def test_no_heldout_question_appears_in_training(kind):
    train_text = "\x00".join(m["content"] for ep in _raw(f"demo_{kind}.jsonl") for m in ep["messages"]
                             if isinstance(m.get("content"), str))
    held = [m["content"] for ep in _raw(f"demo_{kind}_heldout.jsonl") for m in ep["messages"]
            if m["role"] == "user"]
    assert held
    assert [q for q in held if q in train_text] == []
    # nor the same words with other case or punctuation ("Hello MyPT!" after "Hello, MyPT!")
    words = lambda q: " ".join(re.sub(r"[^a-z0-9' ]", " ", q.lower()).split())  # noqa: E731
    train_words = {words(m["content"]) for ep in _raw(f"demo_{kind}.jsonl") for m in ep["messages"]
                   if m["role"] == "user"}
    assert [q for q in held if words(q) in train_words] == []


def test_every_heldout_chat_answer_is_taught_in_training(sets):
    taught = {m.content for ep in sets["demo_chat.jsonl"] for m in ep.messages if m.role == "assistant"}
    held = {m.content for ep in sets["demo_chat_heldout.jsonl"] for m in ep.messages if m.role == "assistant"}
    assert held - taught == set()


def test_a_question_has_exactly_one_answer(sets):
    """Single-turn questions across both chat files: one gold answer each, so exact match is fair."""
    answers = defaultdict(set)
    for name in ("demo_chat.jsonl", "demo_chat_heldout.jsonl"):
        for ep in sets[name]:
            if len(ep.messages) == 2:
                answers[ep.messages[0].content.lower().rstrip("?.!")].add(ep.messages[1].content)
    assert {q: a for q, a in answers.items() if len(a) > 1} == {}


def test_answers_follow_one_template_per_family(sets):
    templates = {
        "capitals": r"The capital of [A-Z][a-z]+ is [A-Z][A-Za-z ]+\.",
        "opposites": r"The opposite of [a-z]+ is [a-z]+\.",
        "plurals": r"The plural of [a-z]+ is [a-z]+\.",
        "calendar": r"The (day|month) (after|before) [A-Z][a-z]+ is [A-Z][a-z]+\.",
        "units": r"There are \d+ [a-z]+ in an? [a-z ]+\.",
        "animal_sounds": r"An? [a-z]+ says [a-z-]+\.",
        "animal_young": r"A baby [a-z]+ is called an? [a-z]+\.",
        "yes_no": r"(Yes, an? [a-z]+ can|No, an? [a-z]+ cannot) fly\.",
    }
    for name in ("demo_chat.jsonl", "demo_chat_heldout.jsonl"):
        for ep in sets[name]:
            if ep.family in templates:
                assert re.fullmatch(templates[ep.family], ep.messages[1].content), ep.messages[1].content


def _calc(expression: str):
    assert re.fullmatch(r"[\d ()+\-*/]+", expression), expression
    value = eval(expression, {"__builtins__": {}})  # digits and operators only (checked above)
    return int(value) if float(value).is_integer() else value


@pytest.mark.parametrize("name", ["demo_tool.jsonl", "demo_tool_heldout.jsonl"])
def test_tool_results_equal_the_evaluated_expression(sets, name):
    calls = 0
    for ep in sets[name]:
        msgs = ep.messages
        for i, m in enumerate(msgs):
            if not m.tool_calls:
                continue
            calls += 1
            (call,) = m.tool_calls
            assert call.name == "calculator" and set(call.arguments) == {"expression"}
            result = _calc(call.arguments["expression"])
            assert msgs[i + 1].role == "toolresult" and msgs[i + 1].name == "calculator"
            assert json.loads(msgs[i + 1].content) == {"result": result}
            assert msgs[i + 2].role == "assistant" and msgs[i + 2].content == f"The answer is {result}."
    assert calls > 0.5 * len(sets[name])
    no_tool = [ep for ep in sets[name] if ep.family == "no_tool"]
    assert no_tool and all(not m.tool_calls for ep in no_tool for m in ep.messages)


def test_the_app_calculator_returns_the_gold_results(sets):
    """Chat's tool loop must feed back exactly the text the model was trained on."""
    from engine.tools import default_tools

    tools = default_tools()
    for ep in sets["demo_tool.jsonl"][:300] + sets["demo_tool_heldout.jsonl"]:
        for call, result in zip(ep.messages, ep.messages[1:]):
            if call.tool_calls:
                got = tools.call("calculator", call.tool_calls[0].arguments)
                assert (got.ok, got.content) == (True, result.content), ep.id


# -- the continuation demo ----------------------------------------------------------------------

def _person(ep: dict) -> str:
    """The person an episode asks about: the first word of its answer ("Viklohol lives in ...")."""
    return re.split(r"[ ']", ep["messages"][1]["content"])[0]


def test_continuation_heldout_people_never_appear_in_sft():
    sft, held = _raw("demo_continuation_sft.jsonl"), _raw("demo_continuation_heldout.jsonl")
    sft_text = "\x00".join(m["content"] for ep in sft for m in ep["messages"])
    held_people = {_person(ep) for ep in held}
    assert len(held_people) == len({_person(ep) for ep in sft}) == 20  # a real half each
    assert all(p in ep["messages"][0]["content"] for ep in held for p in [_person(ep)])
    assert sorted(p for p in held_people if p in sft_text) == []


def test_continuation_every_heldout_fact_is_told_in_the_prose():
    prose = (DATA / "demo_continuation_corpus.txt").read_text(encoding="utf-8")
    docs = [d for d in prose.split("\n\n") if d.strip()]
    held = _raw("demo_continuation_heldout.jsonl")
    assert len(held) == 80  # four facts of each held-out person
    for ep in held:
        answer = ep["messages"][1]["content"]  # the fact in one of the prose's phrasings
        assert answer in prose, answer
        # in biographies only (no question about a held-out person, even in the prose), each of
        # which tells the fact under some phrasing: the model can learn it from several sentences
        person, value = _person(ep), answer.rstrip(".").split()[-1]
        bios = [d for d in docs if re.search(rf"\b{person}\b", d)]
        assert len(bios) >= 5 and all("?" not in d and value in d for d in bios), answer
