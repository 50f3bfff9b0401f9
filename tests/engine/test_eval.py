"""mypt eval: turn scoring on hand-made gold/prediction pairs, the turns cut from rendered
episodes, and a tiny trained checkpoint scored end to end (CLI table, --json, compare)."""

from __future__ import annotations

import json
import math

import pytest
import torch

from engine.checkpoint import save_checkpoint
from engine.config import TrainConfig
from engine.dataset import open_dataset
from engine.episode import Episode, Message, ToolCall
from engine.eval import EvalCancelled, EvalOptions, EvalProgress, difference, evaluate, evaluate_checkpoint
from engine.events import Eval
from engine.model import GPT, GPTConfig
from engine.render import SystemPrompt, render_episode, render_prompt, render_turns
from engine.scoring import episode_turns, raw_prompt, score_raw, score_reply
from engine.tokenizer import gpt2
from engine.train.job import TrainJob
from engine.train.loop import run_training
from helpers_data import chat, prepared
from mypt_tui.cli.main import main

CALL = ToolCall("calculator", {"expression": "2 + 2"})


@pytest.fixture(scope="module")
def tok():
    return gpt2()


def reply(tok, *parts, close: bool = True) -> list[int]:
    """Generated ids: text parts are encoded, `<myPT_...>` parts are tag ids."""
    ids: list[int] = []
    for p in parts:
        ids += [tok.tag_id(p)] if p.startswith("<myPT_") or p.startswith("</myPT_") else tok.encode(p)
    return ids + ([tok.tag_id("/assistant")] if close else [])


# -- scoring -------------------------------------------------------------------------------------

def test_exact_match_trims_whitespace(tok):
    s = score_reply(Message("assistant", "Paris."), reply(tok, "  Paris. \n"), tok)
    assert (s.exact, s.formatted, s.closed, s.problem, s.tool_call) == (True, True, True, None, None)
    assert s.reply == "  Paris. \n" and s.tokens == len(reply(tok, "  Paris. \n"))


def test_a_different_answer_is_formatted_but_not_exact(tok):
    s = score_reply(Message("assistant", "The capital of France is Paris."),
                    reply(tok, "The capital of France is Rome."), tok)
    assert (s.exact, s.formatted, s.passed) == (False, True, False)
    assert s.problem == "content differs from the gold answer"


def test_case_and_inner_spaces_still_count(tok):
    gold = Message("assistant", "Paris.")
    assert not score_reply(gold, reply(tok, "paris."), tok).exact
    assert not score_reply(gold, reply(tok, "Paris ."), tok).exact


def test_a_reply_that_never_closes_fails_format(tok):
    ids = reply(tok, "Paris. Paris. Paris.", close=False)
    s = score_reply(Message("assistant", "Paris."), ids, tok)
    assert (s.closed, s.formatted, s.exact) == (False, False, False)
    assert s.problem == f"no </myPT_assistant> within {len(ids)} tokens"


def test_ending_with_eot_instead_of_the_closing_tag_fails_format_only(tok):
    ids = tok.encode("Paris.") + [tok.eot_id]
    s = score_reply(Message("assistant", "Paris."), ids, tok)
    assert (s.exact, s.closed, s.formatted) == (True, False, False)
    assert s.problem == "ended with <myPT_eot> instead of </myPT_assistant>"


def test_a_user_tag_leak_fails_format(tok):
    s = score_reply(Message("assistant", "Paris."), reply(tok, "Paris.", "<myPT_user>", "And Spain?"), tok)
    assert s.stray_tags == ("<myPT_user>",)
    assert (s.formatted, s.closed, s.exact) == (False, True, False)
    assert s.problem == "stray tag <myPT_user>"
    assert s.reply == "Paris.<myPT_user>And Spain?"


def test_system_and_second_assistant_tags_are_leaks_too(tok):
    s = score_reply(Message("assistant", "Hi"), reply(tok, "Hi", "<myPT_system>", "<myPT_assistant>"), tok)
    assert s.stray_tags == ("<myPT_system>", "<myPT_assistant>") and not s.formatted


def test_tag_text_written_as_plain_text_is_no_leak(tok):
    """Tags are structure: the characters '<myPT_user>' in content are just text."""
    s = score_reply(Message("assistant", "Type <myPT_user> to start."), reply(tok, "Type <myPT_user> to start."), tok)
    assert (s.exact, s.formatted, s.stray_tags) == (True, True, ())


def test_an_unclosed_think_block_fails_format(tok):
    s = score_reply(Message("assistant", "4"), reply(tok, "<myPT_think>", "2+2", "4"), tok)
    assert not s.formatted and s.problem == "<myPT_think> never closed"


# -- tool calls ----------------------------------------------------------------------------------

def call_turn(tok, text: str) -> list[int]:
    return reply(tok, "<myPT_toolcall>", text, "</myPT_toolcall>")


def test_the_right_tool_call_is_exact_and_valid(tok):
    gold = Message("assistant", "", tool_calls=(CALL,))
    assert render_turns([gold], tok)[0][1:] == call_turn(tok, CALL.to_json())  # what training taught
    s = score_reply(gold, call_turn(tok, '{"name": "calculator", "arguments": {"expression": "2 + 2"}}'), tok)
    assert (s.exact, s.formatted, s.tool_call, s.problem) == (True, True, True, None)


def test_myPT_flat_call_form_is_the_same_call(tok):
    s = score_reply(Message("assistant", "", tool_calls=(CALL,)),
                    call_turn(tok, '{"name": "calculator", "expression": "2 + 2"}'), tok)
    assert (s.exact, s.tool_call) == (True, True)


@pytest.mark.parametrize("text, problem", [
    ('{"name": "calculator", "arguments": {"expression": "2 + 2"}',
     "tool call is not valid JSON: Expecting ',' delimiter"),
    ('{"arguments": {"expression": "2 + 2"}}', 'tool call has no "name"'),
    ('{"name": "calc", "arguments": {"expression": "2 + 2"}}', "called tool 'calc', expected 'calculator'"),
    ('{"name": "calculator", "arguments": {"expression": "2 + 3"}}',
     'tool arguments {"expression": "2 + 3"} differ from the gold {"expression": "2 + 2"}'),
    ('{"name": "calculator", "arguments": {"expr": "2 + 2"}}',
     'tool arguments {"expr": "2 + 2"} differ from the gold {"expression": "2 + 2"}'),
])
def test_a_wrong_tool_call_is_invalid_and_says_why(tok, text, problem):
    s = score_reply(Message("assistant", "", tool_calls=(CALL,)), call_turn(tok, text), tok)
    assert (s.exact, s.tool_call, s.formatted) == (False, False, True)
    assert s.problem == problem


def test_answering_directly_where_a_call_was_due(tok):
    s = score_reply(Message("assistant", "", tool_calls=(CALL,)), reply(tok, "The answer is 4."), tok)
    assert (s.exact, s.tool_call) == (False, False) and s.problem == "no tool call (expected calculator)"


def test_two_calls_where_one_was_due(tok):
    ids = reply(tok, "<myPT_toolcall>", CALL.to_json(), "</myPT_toolcall>", "<myPT_toolcall>", CALL.to_json(),
                "</myPT_toolcall>")
    s = score_reply(Message("assistant", "", tool_calls=(CALL,)), ids, tok)
    assert (s.exact, s.tool_call, s.problem) == (False, False, "2 tool calls, expected 1")


def test_a_call_where_the_gold_answers_directly(tok):
    s = score_reply(Message("assistant", "4"), reply(tok, "4", "<myPT_toolcall>", CALL.to_json(), "</myPT_toolcall>"),
                    tok)
    assert (s.exact, s.tool_call, s.formatted) == (False, None, True)
    assert s.problem == "made a tool call where the gold turn answers directly"


def test_an_unclosed_tool_call_is_a_format_failure_and_invalid(tok):
    s = score_reply(Message("assistant", "", tool_calls=(CALL,)), reply(tok, "<myPT_toolcall>", CALL.to_json()), tok)
    assert (s.formatted, s.tool_call, s.exact) == (False, True, True)
    assert s.problem == "<myPT_toolcall> never closed"


# -- turns of an episode = render_prompt of the gold history --------------------------------------

def test_turn_prompts_are_the_renderers_prompts_for_the_gold_history(tok):
    messages = (Message("user", "What is 2 plus 2?"), Message("assistant", "", tool_calls=(CALL,)),
                Message("toolresult", '{"result": 4}', name="calculator"), Message("assistant", "It is 4."),
                Message("user", "Thanks!"), Message("assistant", "You are welcome!"))
    ep = Episode("e1", messages, system="Be brief.")
    r = render_episode(ep, tok, SystemPrompt())
    turns = episode_turns(r.ids, tok)
    at = [k for k, m in enumerate(messages) if m.role == "assistant"]
    assert len(turns) == len(at) == 3
    for t, k in zip(turns, at):
        assert t.prompt == render_prompt(messages[:k], tok, "Be brief.")
        assert t.gold_ids == render_turns([messages[k]], tok)[0][1:]
        assert t.gold == messages[k]


def test_a_reply_cut_off_at_the_end_is_not_a_turn(tok):
    r = render_episode(Episode("e", (Message("user", "Hi"), Message("assistant", "Hello there"))), tok)
    assert len(episode_turns(r.ids[:-3], tok)) == 0
    assert len(episode_turns(r.ids, tok)) == 1


# -- raw prompts, for a base model ----------------------------------------------------------------

def test_a_raw_prompt_is_the_conversation_as_plain_lines_without_system_or_tool_blocks(tok):
    messages = (Message("user", "What is 2 plus 2?"), Message("assistant", "", tool_calls=(CALL,)),
                Message("toolresult", '{"result": 4}', name="calculator"), Message("assistant", "It is 4."),
                Message("user", "Thanks!"), Message("assistant", "You are welcome!"))
    r = render_episode(Episode("e1", messages, system="Be brief."), tok, SystemPrompt())
    prompts = [tok.decode(raw_prompt(t.prompt, tok)) for t in episode_turns(r.ids, tok)]
    assert prompts == ["What is 2 plus 2?\n", "What is 2 plus 2?\n", "What is 2 plus 2?\nIt is 4.\nThanks!\n"]


def test_a_raw_reply_is_its_first_line(tok):
    gold = Message("assistant", "The capital of France is Paris.")
    s = score_raw(gold, tok.encode("The capital of France is Paris.\nThe plural of mouse is mice."), tok)
    assert (s.exact, s.formatted, s.closed, s.problem, s.reply) == (True, True, True, None,
                                                                    "The capital of France is Paris.")
    s = score_raw(gold, tok.encode("The capital of France is Rome.") + [tok.doc_sep_id], tok)
    assert (s.exact, s.formatted, s.problem) == (False, True, "content differs from the gold answer")
    ids = tok.encode("The capital of France is Paris and so on")
    s = score_raw(gold, ids, tok)
    assert (s.exact, s.closed, s.problem) == (False, False, f"no line end within {len(ids)} tokens")
    s = score_raw(Message("assistant", "", tool_calls=(CALL,)), tok.encode("4\n"), tok)
    assert (s.tool_call, s.exact, s.problem) == (False, False, "a raw prompt cannot make the gold turn's tool call")


# -- end to end on a tiny trained char model ------------------------------------------------------

FAMILIES = {"colour": ("What colour is item {i}?", "Blue."), "shape": ("What shape is item {i}?", "Round."),
            "greet": ("Hello number {i}!", "Hi!")}


def tiny_config(**kw) -> TrainConfig:
    base = dict(n_layer=2, n_embd=32, n_head=2, block_size=64, dropout=0.0, learning_rate=1e-2, batch_size=4,
                max_iters=60, warmup_iters=2, eval_interval=60, eval_iters=50, save_every=1000, grad_clip=1.0,
                device="cpu", precision="fp32", batching="pack", episode_min_tokens=4)
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 3-family char dataset (12 val episodes), a trained checkpoint and an untrained one."""
    tmp = tmp_path_factory.mktemp("eval")
    lines = []
    for i in range(60):
        fam = list(FAMILIES)[i % 3]
        q, a = FAMILIES[fam]
        lines.append(chat(f"{fam}{i}", q.format(i=i), a, meta={"family": fam}))
    prepared(tmp, lines, tokenization="char", val_split=0.2, seed=1)
    data = tmp / "out"
    events = []
    run_training(TrainJob(config=tiny_config(), dataset=data, output=tmp / "run"), [events.append])
    ds = open_dataset(data)
    torch.manual_seed(0)
    untrained = GPT(GPTConfig(n_layer=2, n_embd=32, n_head=2, block_size=64, vocab_size=ds.tokenizer().model_vocab_size))
    save_checkpoint(tmp / "untrained", untrained, tokenizer_state=ds.tokenizer().state(), step=0)
    return {"data": data, "run": tmp / "run", "untrained": tmp / "untrained", "root": tmp,
            "final_eval": [e for e in events if isinstance(e, Eval)][-1]}


def test_a_trained_checkpoint_answers_the_held_out_episodes(trained):
    r = evaluate_checkpoint(trained["run"], trained["data"])
    assert r.step == 60 and r.split == "val" and len(r.episode_ids) == 12
    assert {k: (m.episodes, m.turns) for k, m in r.families.items()} == {
        "colour": (6, 6), "greet": (1, 1), "shape": (5, 5)}
    assert (r.overall.episodes, r.overall.turns) == (12, 12)
    assert r.overall.exact_match == 1.0 and r.overall.format_compliance == 1.0
    assert r.overall.tool_call_validity is None and r.failures() == []


def test_teacher_forced_loss_and_accuracy_equal_the_trainers_eval(trained):
    r = evaluate_checkpoint(trained["run"], trained["data"])
    ev = trained["final_eval"]
    assert r.overall.val_loss == pytest.approx(ev.val_loss, rel=1e-5)
    assert r.overall.token_accuracy == pytest.approx(ev.val_accuracy)
    assert r.overall.tokens == ev.val_tokens
    assert sum(m.tokens for m in r.families.values()) == r.overall.tokens


def test_an_untrained_checkpoint_scores_nothing(trained):
    r = evaluate_checkpoint(trained["untrained"], trained["data"], EvalOptions(limit=3))
    assert len(r.episode_ids) == 3 and r.overall.turns == 3
    assert r.overall.exact == 0 and r.overall.val_loss > 3.0
    assert all(not t.score.passed for t in r.turns)


def test_progress_and_stop(trained):
    from engine.checkpoint import load_model

    ds = open_dataset(trained["data"])
    model, _ = load_model(trained["run"])
    seen: list[EvalProgress] = []
    evaluate(model, ds.tokenizer(), ds.split("val"), EvalOptions(limit=4), on_progress=seen.append)
    assert [(p.phase, p.done, p.total) for p in seen] == [("loss", 1, 1)] + [("generate", k, 4) for k in range(1, 5)]
    assert seen[-1].turns == 4
    with pytest.raises(EvalCancelled):
        evaluate(model, ds.tokenizer(), ds.split("val"), should_stop=lambda: len(seen) > 5,
                 on_progress=seen.append)
    assert model.training is False


def test_cli_table(trained, capsys):
    assert main(["eval", "--model", str(trained["run"]), "--dataset", str(trained["data"])]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0] == f"Eval on {trained['data']}, split val: 12 episodes, 12 assistant turns"
    assert lines[3].split() == ["family", "episodes", "turns", "exact", "match", "format", "tool", "calls",
                                "val", "loss", "token", "acc"]
    assert lines[4].split()[:6] == ["colour", "6", "6", "100.0%", "100.0%", "-"]
    assert lines[-1].split()[:6] == ["overall", "12", "12", "100.0%", "100.0%", "-"]
    assert set(lines[-2]) == {"-"}
    assert "generating: episode 12/12" in err


def test_cli_json_schema(trained, capsys):
    assert main(["eval", "--model", str(trained["run"]), "--dataset", str(trained["data"]), "--json",
                 "--limit", "5"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out) == ["schema", "dataset", "split", "limit", "episodes", "models", "difference"]
    assert (out["schema"], out["split"], out["limit"], out["episodes"], out["difference"]) == (
        "mypt_eval_v1", "val", 5, 5, None)
    (m,) = out["models"]
    assert list(m) == ["model", "checkpoint", "step", "prompts", "seconds", "overall", "families"]
    assert m["model"] == str(trained["run"]) and m["step"] == 60 and m["prompts"] == "chat"
    assert list(m["overall"]) == ["episodes", "turns", "exact_match", "format_compliance", "tool_turns",
                                  "tool_call_validity", "val_loss", "token_accuracy", "supervised_tokens",
                                  "exact_turns", "formatted_turns", "valid_tool_turns"]
    assert m["overall"]["exact_match"] == 1.0 and m["overall"]["tool_call_validity"] is None
    assert sum(f["episodes"] for f in m["families"].values()) == 5


def test_cli_compare_two_checkpoints(trained, capsys):
    assert main(["eval", "--model", str(trained["untrained"]), "--model", str(trained["run"]),
                 "--dataset", str(trained["data"]), "--json", "--failures", "2"]) == 0
    out = json.loads(capsys.readouterr().out)
    a, b = out["models"]
    assert (a["step"], b["step"]) == (0, 60)
    assert a["overall"]["episodes"] == b["overall"]["episodes"] == 12
    d = out["difference"]
    assert set(d) == {"colour", "greet", "shape", "overall"}
    assert d["overall"]["exact_match"] == pytest.approx(1.0 - a["overall"]["exact_match"])
    assert d["overall"]["val_loss"] == pytest.approx(b["overall"]["val_loss"] - a["overall"]["val_loss"])
    assert d["overall"]["tool_call_validity"] is None
    assert len(a["failures"]) == 2 and b["failures"] == []  # B failed nothing
    assert a["failures"][0]["gold"] in {"Blue.", "Round.", "Hi!"}


def test_cli_compare_table(trained, capsys):
    assert main(["eval", "--model", str(trained["untrained"]), "--model", str(trained["run"]),
                 "--dataset", str(trained["data"]), "--limit", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith(f"A: {trained['untrained']} (step 0)")
    assert lines[2].startswith(f"B: {trained['run'] / 'step_000060'} (step 60)")
    assert lines[4].split()[:6] == ["family", "episodes", "turns", "exact", "match", "A"]
    overall = lines[-1].split()
    assert overall[:6] == ["overall", "3", "3", "0.0%", "100.0%", "+100.0"]


def test_difference_is_b_minus_a(trained):
    a = evaluate_checkpoint(trained["untrained"], trained["data"], EvalOptions(limit=3))
    b = evaluate_checkpoint(trained["run"], trained["data"], EvalOptions(limit=3))
    d = difference(a, b)
    assert d["overall"]["format_compliance"] == b.overall.format_compliance - a.overall.format_compliance
    assert math.isclose(d["overall"]["token_accuracy"], b.overall.token_accuracy - a.overall.token_accuracy)


def test_cli_errors(trained, capsys, tmp_path):
    assert main(["eval", "--model", str(tmp_path / "nope"), "--dataset", str(trained["data"])]) == 1
    assert "error: no checkpoint" in capsys.readouterr().err
    assert main(["eval", "--model", str(trained["run"]), "--dataset", str(tmp_path / "nope")]) == 1
    assert capsys.readouterr().err.endswith(f"error: {tmp_path / 'nope'}: no such folder\n")
    assert main(["eval", "--model", "a", "--model", "b", "--model", "c", "--dataset", "d"]) == 2
    assert main(["eval", "--model", "a", "--dataset", "d", "--limit", "0"]) == 2


def test_a_checkpoint_with_another_tokenizer_is_refused(trained, tmp_path, capsys):
    prepared(tmp_path, [chat(f"e{i}", "Hi", "Hello") for i in range(10)], tokenization="gpt2", val_split=0.2)
    assert main(["eval", "--model", str(trained["run"]), "--dataset", str(tmp_path / "out")]) == 1
    assert "tokeniz" in capsys.readouterr().err


def test_tool_turns_are_found_in_a_prepared_tool_set(tmp_path):
    """Each calculator episode has two assistant turns; the first is a tool call, scored for validity."""
    from helpers_data import tool_episode

    prepared(tmp_path, [tool_episode(f"t{i}", i, i + 1) for i in range(2, 12)], kind="tool", tokenization="char",
             val_split=0.3, seed=2)
    ds = open_dataset(tmp_path / "out")
    tok = ds.tokenizer()
    torch.manual_seed(0)
    model = GPT(GPTConfig(n_layer=1, n_embd=32, n_head=2, block_size=128, vocab_size=tok.model_vocab_size))
    r = evaluate(model, tok, ds.split("val"))
    assert (r.overall.episodes, r.overall.turns, r.overall.tool_turns) == (3, 6, 3)
    assert r.overall.tool_call_validity == 0.0 and r.overall.exact == 0
    calls = [t for t in r.turns if t.score.tool_call is not None]
    assert [t.turn for t in calls] == [1, 1, 1]
    assert all(t.gold.startswith('<myPT_toolcall>{"name": "calculator"') for t in calls)


def test_cli_compares_a_base_model_in_raw_prompts_with_a_chat_model(trained, capsys):
    """`mypt eval --model BASE --model SFT`: one table, the base asked in plain text (its checkpoint
    says it was trained on a token stream), the SFT model in the chat format."""
    ds = open_dataset(trained["data"])
    torch.manual_seed(0)
    base = GPT(GPTConfig(n_layer=2, n_embd=32, n_head=2, block_size=64, vocab_size=ds.tokenizer().model_vocab_size))
    save_checkpoint(trained["root"] / "base", base, tokenizer_state=ds.tokenizer().state(), step=2,
                    extra={"kind": "pretrain"})
    args = ["eval", "--model", str(trained["root"] / "base"), "--model", str(trained["run"]),
            "--dataset", str(trained["data"]), "--limit", "4"]
    assert main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1] == f"A: {trained['root'] / 'base'} (step 2) · raw prompts: a base model, asked in plain text, " \
                       f"its first line scored" + lines[1][lines[1].rindex("  ("):]
    assert lines[2].startswith(f"B: {trained['run'] / 'step_000060'} (step 60) · chat prompts  (")
    overall = lines[-1].split()
    assert overall[:6] == ["overall", "4", "4", "0.0%", "100.0%", "+100.0"]  # exact match A, B, B-A
    assert main([*args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [m["prompts"] for m in out["models"]] == ["raw", "chat"]
    assert out["difference"]["overall"]["exact_match"] == 1.0
