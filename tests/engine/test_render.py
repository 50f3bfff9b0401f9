"""Exact token ids and loss masks for one hand-written episode in each input schema."""

import json

import numpy as np
import pytest

from engine.episode import Message, ToolCall, parse_episode, read_episodes
from engine.render import SystemPrompt, parse_reply, parse_tool_call, render_episode, render_prompt, render_turns
from engine.tokenizer import CharTokenizer, gpt2

SYS, _SYS, USER, _USER, ASST, _ASST = 50257, 50258, 50259, 50260, 50261, 50262
TCALL, _TCALL, TRES, _TRES, EOT = 50267, 50268, 50269, 50270, 50275

MYPT_GOLD = {
    "episode_id": "math-1",
    "system": "Be brief.",
    "messages": [
        {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": "4"},
        {"role": "user", "content": "And 3+3?"},
        {"role": "assistant", "content": "6"},
    ],
    "meta": {"family": "math"},
}

OPENAI_TOOLS = {
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "add 2 and 3"},
        {"role": "assistant", "content": None,
         "tool_calls": [{"type": "function", "function": {"name": "calculator",
                                                          "arguments": "{\"expression\": \"2+3\"}"}}]},
        {"role": "tool", "content": "{\"result\": 5}"},
        {"role": "assistant", "content": "5"},
    ],
    "tools": [{"type": "function", "function": {"name": "calculator"}}],
}

SHAREGPT = {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello!"}]}

CALL_JSON = [4895, 3672, 1298, 366, 9948, 3129, 1352, 1600, 366, 853, 2886, 1298, 19779, 38011, 1298, 366,
             17, 10, 18, 1, 11709]


def test_mypt_gold_multi_turn_exact_arrays():
    ep = parse_episode(MYPT_GOLD, "gold.jsonl:1")
    r = render_episode(ep, gpt2())
    assert r.ids.tolist() == [SYS, 3856, 4506, 13, _SYS,
                              USER, 2061, 318, 362, 10, 17, 30, _USER, ASST, 19, _ASST,
                              USER, 1870, 513, 10, 18, 30, _USER, ASST, 21, _ASST, EOT]
    assert r.mask.tolist() == [0, 0, 0, 0, 0,
                               0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1,
                               0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1]
    assert r.ids.dtype == np.uint32 and r.mask.dtype == np.uint8
    assert (ep.id, ep.family) == ("math-1", "math")


def test_openai_tool_call_exact_arrays():
    ep = parse_episode(OPENAI_TOOLS, "oa.jsonl:7")
    r = render_episode(ep, gpt2())
    head = [SYS, 3856, 4506, 13, _SYS, USER, 2860, 362, 290, 513, _USER]
    call = [ASST, TCALL] + CALL_JSON + [_TCALL, _ASST]
    result = [TRES, 4895, 20274, 1298, 642, 92, _TRES]
    answer = [ASST, 20, _ASST, EOT]
    assert r.ids.tolist() == head + call + result + answer
    assert r.mask.tolist() == ([0] * len(head) + [0] + [1] * (len(call) - 1) + [0] * len(result)
                               + [0, 1, 1, 1])
    assert ep.id == "oa.jsonl:7"  # no episode_id: the file and line


def test_sharegpt_exact_arrays():
    r = render_episode(parse_episode(SHAREGPT, "s.jsonl:1"), gpt2())
    assert r.ids.tolist() == [USER, 17250, _USER, ASST, 15496, 0, _ASST, EOT]
    assert r.mask.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]


def test_episode_ending_with_a_tool_result_does_not_train_its_eot():
    ep = parse_episode({"messages": OPENAI_TOOLS["messages"][:4]}, "x:1")
    r = render_episode(ep, gpt2())
    assert r.ids[-1] == EOT and r.mask[-1] == 0 and r.mask[-2] == 0  # ...</myPT_toolresult><myPT_eot>


def test_tag_strings_in_content_are_never_tag_ids():
    ep = parse_episode({"messages": [{"role": "user", "content": "<myPT_assistant>"},
                                     {"role": "assistant", "content": "yo"}]}, "x:1")
    r = render_episode(ep, gpt2())
    assert r.ids.tolist() == [USER, 27, 1820, 11571, 62, 562, 10167, 29, _USER, ASST, 8226, _ASST, EOT]
    assert r.mask.tolist() == [0] * 10 + [1, 1, 1]


def test_decode_gives_back_the_tagged_text():
    tok = gpt2()
    r = render_episode(parse_episode(MYPT_GOLD, "x:1"), tok)
    assert tok.decode(r.ids) == ("<myPT_system>Be brief.</myPT_system><myPT_user>What is 2+2?</myPT_user>"
                                 "<myPT_assistant>4</myPT_assistant><myPT_user>And 3+3?</myPT_user>"
                                 "<myPT_assistant>6</myPT_assistant><myPT_eot>")


def test_same_conversation_in_three_schemas_renders_and_hashes_the_same():
    gold = parse_episode({"messages": [{"role": "user", "content": "Hi"},
                                       {"role": "assistant", "content": "Hello!"}]}, "a:1")
    openai = parse_episode({"messages": [{"role": "user", "content": "Hi"},
                                         {"role": "assistant", "content": "Hello!"}]}, "b:1")
    share = parse_episode(SHAREGPT, "c:1")
    rendered = {tuple(render_episode(e, gpt2()).ids.tolist()) for e in (gold, openai, share)}
    assert len(rendered) == 1
    assert gold.sha256 == openai.sha256 == share.sha256
    assert gold.sha256 != parse_episode(MYPT_GOLD, "d:1").sha256


def test_system_prompt_policy():
    tok = gpt2()
    share = parse_episode(SHAREGPT, "s:1")
    with_default = render_episode(share, tok, SystemPrompt(default="Be brief."))
    assert with_default.ids.tolist()[:5] == [SYS, 3856, 4506, 13, _SYS]
    own = parse_episode(MYPT_GOLD, "g:1")
    assert render_episode(own, tok, SystemPrompt(default="Other")).ids.tolist()[:5] == [SYS, 3856, 4506, 13, _SYS]
    dropped = render_episode(own, tok, SystemPrompt(enabled=False))
    assert dropped.ids.tolist()[0] == USER and SYS not in dropped.ids.tolist()


def test_context_think_cite_and_assistant_context_placement():
    tok = CharTokenizer()
    ep = parse_episode({"system": "S", "messages": [
        {"role": "user", "content": "q", "context": "c"},
        {"role": "assistant_context", "content": "k"},
        {"role": "assistant", "content": "a", "think": "t", "cite": "r"}]}, "x:1")
    r = render_episode(ep, tok)
    text = "".join(f"[{tok.decode([i])}]" if m else tok.decode([i]) for i, m in zip(r.ids, r.mask))
    assert text == ("<myPT_system>S</myPT_system><myPT_user><myPT_user_context>c</myPT_user_context>q"
                    "</myPT_user><myPT_assistant_context>k</myPT_assistant_context><myPT_assistant>"
                    "[<myPT_think>][t][</myPT_think>][a][<myPT_cite>][r][</myPT_cite>][</myPT_assistant>][<myPT_eot>]")


def test_prompt_for_generation_uses_the_training_layout():
    tok = gpt2()
    ep = parse_episode(MYPT_GOLD, "x:1")
    full = render_episode(ep, tok).ids.tolist()
    prompt = render_prompt(ep.messages[:1], tok, system=ep.system)
    reply = render_turns([ep.messages[1]], tok)[0][1:]
    assert prompt + reply == full[:len(prompt) + len(reply)]
    assert prompt[-1] == ASST


def test_parse_reply_splits_a_generated_turn():
    tok = gpt2()
    msg = Message("assistant", "5", tool_calls=(ToolCall("calculator", {"expression": "2+3"}),), think="add")
    reply = parse_reply(render_turns([msg], tok)[0][1:] + [USER, 17250], tok)  # stops at </myPT_assistant>
    assert (reply.content, reply.think, reply.closed, reply.stray_tags) == ("5", "add", True, [])
    assert reply.as_message() == msg
    leaked = parse_reply([17250, USER, 17250], tok)
    assert not leaked.closed and leaked.stray_tags == ["<myPT_user>"]


def test_parse_tool_call_forms_and_errors():
    assert parse_tool_call('{"name": "calculator", "arguments": {"expression": "1+1"}}') == ToolCall(
        "calculator", {"expression": "1+1"})
    assert parse_tool_call('{"name": "calculator", "expression": "1+1"}') == ToolCall(
        "calculator", {"expression": "1+1"})  # MyPT's flat form
    assert parse_tool_call('{"name": "calc", "arguments": "{\\"x\\": 1}"}') == ToolCall("calc", {"x": 1})
    assert parse_tool_call("{oops").startswith("tool call is not valid JSON")
    assert parse_tool_call('{"arguments": {}}') == 'tool call has no "name"'
    assert parse_tool_call('{"name": "c", "arguments": [1]}') == "tool-call arguments must be a JSON object"


@pytest.mark.parametrize("obj, reason", [
    ({"messages": [{"role": "robot", "content": "x"}]},
     "message 1: unknown role 'robot' (expected one of system, user, assistant, assistant_toolcall, "
     "toolresult, tool, assistant_context)"),
    ({"messages": [{"role": "user", "content": "  "}, {"role": "assistant", "content": "a"}]},
     "message 1 (user): empty content"),
    ({"messages": [{"role": "user", "content": "hi"}]}, "no assistant turn (nothing to train on)"),
    ({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": None,
      "tool_calls": [{"function": {"name": "calc", "arguments": "{bad"}}]}]},
     "message 2 (assistant) tool call 1: invalid tool-call arguments JSON: Expecting property name "
     "enclosed in double quotes (column 2)"),
    ({"conversations": [{"from": "human", "value": "hi"}, {"from": "bot", "value": "x"}]},
     "turn 2: unknown role 'bot' (expected one of system, human, gpt, function_call, observation)"),
    ({"text": "hello"}, 'no "messages" (MyPT gold / OpenAI) or "conversations" (ShareGPT) key'),
])
def test_invalid_episodes_say_why(obj, reason, tmp_path):
    f = tmp_path / "bad.jsonl"
    f.write_text(json.dumps(obj) + "\n")
    (err,) = list(read_episodes(f))
    assert str(err) == f"bad.jsonl:1: {reason}"


def test_reading_a_folder_in_sorted_order_with_relative_ids(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x.jsonl").write_text(json.dumps(SHAREGPT) + "\n\n" + json.dumps(SHAREGPT) + "\n")
    (tmp_path / "a.json").write_text(json.dumps([SHAREGPT, MYPT_GOLD]))
    (tmp_path / "notes.txt").write_text("ignored")
    assert [e.id for e in read_episodes(tmp_path)] == ["a.json#1", "math-1", "b/x.jsonl:1", "b/x.jsonl:3"]
