"""Chat sessions: prompts from the training renderer, streaming, stop, trimming, the tool loop."""

import json

import pytest
import torch

import engine.chat as chat_module
from engine.chat import ChatSession, ContextTrimmed, ReplyDone, TokenText, ToolAnswered, ToolCalled
from engine.episode import Message, ToolCall, parse_episode
from engine.generate import SamplingConfig
from engine.model import GPT, GPTConfig
from engine.render import SystemPrompt, render_episode, render_prompt
from engine.tokenizer import CharTokenizer

TOK = CharTokenizer("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,?!:'\"{}()[]*+-/_")
SYSTEM = "Use the calculator."


def tiny(block_size=128, seed=0) -> GPT:
    torch.manual_seed(seed)
    return GPT(GPTConfig(n_layer=2, n_head=2, n_embd=32, block_size=block_size,
                         vocab_size=TOK.model_vocab_size))


class Scripted:
    """Stands in for engine.generate.generate: each call replies with the next scripted text
    (tags written as text) and records the prompt it was given."""

    def __init__(self, *replies: str):
        self.replies = list(replies)
        self.prompts: list[list[int]] = []

    def __call__(self, model, prompt_ids, sampling, *, stop_ids, use_cache=True, should_stop=None):
        self.prompts.append(list(prompt_ids))
        ids = TOK.encode_prompt(self.replies.pop(0))
        for n, i in enumerate(ids):
            if n >= sampling.max_new_tokens or (should_stop is not None and should_stop()):
                return
            yield i
            if i in stop_ids:
                return


def run(session, text, **kw):
    return list(session.send(text, **kw))


CALL = '<myPT_toolcall>{"name": "calculator", "arguments": {"expression": "12 * (3 + 4)"}}</myPT_toolcall></myPT_assistant>'


def test_a_tool_call_is_run_its_result_fed_back_and_the_assistant_asked_again(monkeypatch):
    fake = Scripted(CALL, "The answer is 84.</myPT_assistant>")
    monkeypatch.setattr(chat_module, "generate", fake)
    session = ChatSession(tiny(block_size=512), TOK, system=SYSTEM)
    updates = run(session, "What is 12 * (3 + 4)?")

    calls = [u for u in updates if isinstance(u, ToolCalled)]
    results = [u for u in updates if isinstance(u, ToolAnswered)]
    assert calls == [ToolCalled("calculator", {"expression": "12 * (3 + 4)"},
                                '{"name": "calculator", "arguments": {"expression": "12 * (3 + 4)"}}')]
    assert results == [ToolAnswered("calculator", '{"result": 84}', True)]
    done = updates[-1]
    assert isinstance(done, ReplyDone) and done.reason == "closed" and done.rounds == 2
    assert done.message == Message("assistant", "The answer is 84.")
    # the order the UI shows: the call's text, the call, its result, then the answer
    kinds = [type(u).__name__ for u in updates]
    assert kinds.index("ToolCalled") < kinds.index("ToolAnswered") < len(kinds) - 1
    answer = "".join(u.text for u in updates[kinds.index("ToolAnswered"):] if isinstance(u, TokenText))
    assert answer == "The answer is 84."

    # The history is exactly the episode the tool set trains on, and the second prompt is
    # that conversation up to an open assistant block, built by the training renderer.
    gold = parse_episode({"system": SYSTEM, "messages": [
        {"role": "user", "content": "What is 12 * (3 + 4)?"},
        {"role": "assistant_toolcall", "name": "calculator", "arguments": {"expression": "12 * (3 + 4)"}},
        {"role": "toolresult", "name": "calculator", "content": "{\"result\": 84}"},
        {"role": "assistant", "content": "The answer is 84."}]}, "gold")
    assert tuple(session.messages) == gold.messages
    trained = render_episode(gold, TOK, SystemPrompt()).ids.tolist()
    assert fake.prompts[0] == render_prompt(gold.messages[:1], TOK, SYSTEM)
    assert fake.prompts[1] == render_prompt(gold.messages[:3], TOK, SYSTEM)
    assert fake.prompts[1] == trained[:len(fake.prompts[1])]


def test_an_unknown_tool_gets_an_error_result_and_the_loop_goes_on(monkeypatch):
    fake = Scripted('<myPT_toolcall>{"name": "weather", "arguments": {"city": "Oslo"}}</myPT_toolcall></myPT_assistant>',
                    "I cannot tell.</myPT_assistant>")
    monkeypatch.setattr(chat_module, "generate", fake)
    session = ChatSession(tiny(), TOK)
    updates = run(session, "Weather?")
    assert [u for u in updates if isinstance(u, ToolAnswered)] == [
        ToolAnswered("weather", json.dumps({"error": "unknown tool 'weather' (tools: calculator)"}), False)]
    assert session.messages[2] == Message("toolresult", '{"error": "unknown tool \'weather\' (tools: calculator)"}',
                                          name="weather")
    assert updates[-1].reason == "closed" and updates[-1].message.content == "I cannot tell."


def test_an_unreadable_tool_call_is_reported_and_not_run(monkeypatch):
    fake = Scripted('<myPT_toolcall>{"name": "calculator", </myPT_toolcall></myPT_assistant>')
    monkeypatch.setattr(chat_module, "generate", fake)
    session = ChatSession(tiny(), TOK)
    updates = run(session, "Hi")
    called = [u for u in updates if isinstance(u, ToolCalled)]
    assert len(called) == 1 and called[0].name is None
    assert called[0].error.startswith("tool call is not valid JSON")
    assert not any(isinstance(u, ToolAnswered) for u in updates)
    assert len(fake.prompts) == 1 and updates[-1].rounds == 1
    assert [m.role for m in session.messages] == ["user", "assistant"]


def test_tool_rounds_are_bounded(monkeypatch):
    loop = '<myPT_toolcall>{"name": "calculator", "arguments": {"expression": "1 + 1"}}</myPT_toolcall></myPT_assistant>'
    fake = Scripted(*[loop] * 10)
    monkeypatch.setattr(chat_module, "generate", fake)
    session = ChatSession(tiny(), TOK, max_tool_rounds=3)
    updates = run(session, "Again and again")
    assert sum(isinstance(u, ToolAnswered) for u in updates) == 3
    assert len(fake.prompts) == 4
    assert updates[-1].reason == "tool_rounds" and updates[-1].rounds == 4


def test_a_stopped_reply_runs_no_tool_and_keeps_what_was_said(monkeypatch):
    fake = Scripted("Let me see" + CALL)
    monkeypatch.setattr(chat_module, "generate", fake)
    session = ChatSession(tiny(), TOK)
    seen = []

    def should_stop():
        return len(seen) >= 4

    for u in session.send("Hi", should_stop=should_stop):
        if isinstance(u, TokenText):
            seen.append(u.text)
    assert "".join(seen) == "Let "
    assert session.messages[-1] == Message("assistant", "Let ")


def test_a_real_model_streams_the_reply_it_parses_and_stops_when_asked():
    model = tiny()
    session = ChatSession(model, TOK, system=SYSTEM, sampling=SamplingConfig(temperature=0.0, max_new_tokens=30))
    updates = run(session, "Hello there")
    texts = [u for u in updates if isinstance(u, TokenText)]
    done = updates[-1]
    assert isinstance(done, ReplyDone) and done.tokens >= len(texts) > 1
    content = "".join(t.text for t in texts if t.part == "content")
    assert content == session.messages[-1].content
    assert done.prompt_tokens == len(render_prompt(session.messages[:1], TOK, SYSTEM))

    session.clear()
    assert session.messages == []
    count = iter(range(1000))
    stopped = run(session, "Hello there", should_stop=lambda: next(count) >= 5)
    assert stopped[-1].reason == "stopped" and stopped[-1].tokens == 5


def test_old_turns_are_left_out_to_fit_the_context_but_system_and_newest_turn_stay(monkeypatch):
    fake = Scripted(*["Fine thanks, and you?</myPT_assistant>"] * 6)
    monkeypatch.setattr(chat_module, "generate", fake)
    session = ChatSession(tiny(block_size=128), TOK, system="Be kind.",
                          sampling=SamplingConfig(max_new_tokens=32))
    trims = []
    for i in range(5):
        trims += [u for u in run(session, f"How are you today, friend number {i}?") if isinstance(u, ContextTrimmed)]
    budget = 128 - 32
    assert all(len(p) <= budget for p in fake.prompts)
    last = fake.prompts[-1]
    sys_ids = render_prompt([], TOK, "Be kind.")[:-1]
    assert last[:len(sys_ids)] == sys_ids  # the system prompt is kept
    # exactly the newest exchanges that fit, whole, from a user turn on
    kept = trims[-1].dropped
    assert kept % 2 == 0 and session.messages[kept].role == "user"
    assert last == render_prompt(session.messages[kept:-1], TOK, "Be kind.")
    assert len(render_prompt(session.messages[kept - 2:-1], TOK, "Be kind.")) > budget
    assert str(trims[-1]) == (f"context: the oldest {kept} messages were left out of the prompt "
                              "to fit the model's 128 tokens")
    assert len(session.messages) == 10  # the history keeps everything


def test_a_newest_turn_longer_than_the_context_is_cut_from_its_front_keeping_the_system_prompt(monkeypatch):
    fake = Scripted("ok</myPT_assistant>")
    monkeypatch.setattr(chat_module, "generate", fake)
    session = ChatSession(tiny(block_size=64), TOK, system="Hi.", sampling=SamplingConfig(max_new_tokens=16))
    updates = run(session, "x" * 100)
    whole = render_prompt(session.messages[:1], TOK, "Hi.")
    sys_ids = render_prompt([], TOK, "Hi.")[:-1]
    cut = len(whole) - 48
    assert fake.prompts[0] == sys_ids + whole[len(sys_ids) + cut:]
    assert len(fake.prompts[0]) == 48 and fake.prompts[0][-1] == TOK.tag_id("assistant")
    trimmed = [u for u in updates if isinstance(u, ContextTrimmed)]
    assert trimmed == [ContextTrimmed(0, 48, 64, cut=cut)]
    assert str(trimmed[0]) == f"context: the first {cut} tokens of the newest turn were cut to fit the model's 64 tokens"


def test_an_empty_message_is_refused():
    with pytest.raises(ValueError, match="the message is empty"):
        run(ChatSession(tiny(), TOK), "   ")


def test_a_tool_call_followed_in_history_renders_like_training(monkeypatch):
    """Multi-turn: the second user turn's prompt holds the first exchange, tool call included."""
    fake = Scripted(CALL, "84.</myPT_assistant>", "Bye.</myPT_assistant>")
    monkeypatch.setattr(chat_module, "generate", fake)
    session = ChatSession(tiny(block_size=512), TOK)
    run(session, "12 * (3 + 4)?")
    run(session, "Thanks")
    expected = [Message("user", "12 * (3 + 4)?"),
                Message("assistant", "", tool_calls=(ToolCall("calculator", {"expression": "12 * (3 + 4)"}),)),
                Message("toolresult", '{"result": 84}', name="calculator"),
                Message("assistant", "84."), Message("user", "Thanks")]
    assert fake.prompts[2] == render_prompt(expected, TOK, None)


def test_mypt_chat_no_ui_reads_turns_from_stdin_and_streams_replies_to_stdout(monkeypatch, tmp_path, capsys):
    import io

    from engine.checkpoint import save_checkpoint
    from mypt_tui.cli.main import main

    save_checkpoint(tmp_path / "ck" / "tiny", tiny(block_size=512), tokenizer_state=TOK.state(), step=3)
    fake = Scripted(CALL, "The answer is 84.</myPT_assistant>", "Bye!</myPT_assistant>", "Hi.</myPT_assistant>")
    monkeypatch.setattr(chat_module, "generate", fake)
    monkeypatch.setattr("sys.stdin", io.StringIO("What is 12 * (3 + 4)?\nThanks\n/clear\nHello\n"))
    code = main(["chat", "--model", "tiny", "--checkpoints", str(tmp_path / "ck"), "--no-ui",
                 "--system", SYSTEM, "--device", "cpu"])
    out, err = capsys.readouterr()
    assert code == 0
    assert out == "The answer is 84.\nBye!\nHi.\n"
    assert '[tool] calculator {"expression": "12 * (3 + 4)"}\n[tool result] {"result": 84}\n' in err
    assert "(new conversation)" in err
    # the second turn saw the first exchange; after /clear the third started afresh
    assert fake.prompts[2][:len(fake.prompts[1])] == fake.prompts[1]
    assert fake.prompts[3] == render_prompt([Message("user", "Hello")], TOK, SYSTEM)


def test_mypt_chat_no_ui_needs_a_model(capsys):
    from mypt_tui.cli.main import main

    assert main(["chat", "--no-ui"]) == 2
    assert "--model is required with --no-ui" in capsys.readouterr().err


def test_a_turn_that_fails_before_any_reply_is_forgotten(monkeypatch):
    def broken(model, prompt_ids, sampling, **kw):
        raise ValueError("prompt token id 999 is outside the model's vocabulary")
        yield

    monkeypatch.setattr(chat_module, "generate", broken)
    session = ChatSession(tiny(), TOK)
    with pytest.raises(ValueError, match="outside the model's vocabulary"):
        run(session, "Hi")
    assert session.messages == []
    monkeypatch.setattr(chat_module, "generate", Scripted("Hello.</myPT_assistant>"))
    run(session, "Hi again")
    assert session.messages == [Message("user", "Hi again"), Message("assistant", "Hello.")]


def test_mypt_chat_no_ui_continues_each_line_as_plain_text_for_a_base_model(monkeypatch, tmp_path, capsys):
    import io

    from engine.checkpoint import save_checkpoint
    from mypt_tui.cli.main import main

    save_checkpoint(tmp_path / "ck" / "base", tiny(block_size=512), tokenizer_state=TOK.state(), step=3,
                    extra={"kind": "pretrain"})  # what a run on a token stream writes
    fake = Scripted("blue.\nThe sea is blue.<myPT_eot>ignored", "white.<myPT_eot>")
    monkeypatch.setattr(chat_module, "generate", fake)
    monkeypatch.setattr("sys.stdin", io.StringIO("the sky is\nsnow is\n"))
    assert main(["chat", "--model", "base", "--checkpoints", str(tmp_path / "ck"), "--no-ui", "--device", "cpu"]) == 0
    out, err = capsys.readouterr()
    assert out == "blue.\nThe sea is blue.\nwhite.\n"  # each reply ends where the document ends
    assert fake.prompts == [TOK.encode("the sky is"), TOK.encode("snow is")]  # no tags, no history
    assert "a base model: each line is continued as plain text" in err
