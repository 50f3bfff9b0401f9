"""The Chat screen driven like a user: a streamed reply, stop, side-by-side compare, and a
run's newest checkpoint picked up while it trains."""

import time

import pytest
import torch
from textual.widgets import Select

import engine.chat as chat_module
from engine.checkpoint import save_checkpoint
from engine.generate import SamplingConfig
from engine.model import GPT, GPTConfig
from engine.tokenizer import CharTokenizer
from mypt_tui.app.app import MyptApp
from mypt_tui.app.screens.chat import ChatLaunch, ChatScreen, ReplyUpdate
from mypt_tui.app.widgets.chat_view import ChatPane

TOK = CharTokenizer("abcdefghijklmnopqrstuvwxyz .,?!0123456789{}\":*()")


def never_stopping_model(seed: int) -> GPT:
    """A random tiny GPT that never ends its reply (stop tags get a very low output bias), so a
    reply runs to max tokens unless it is stopped."""
    torch.manual_seed(seed)
    model = GPT(GPTConfig(n_layer=2, n_head=2, n_embd=32, block_size=128, vocab_size=TOK.model_vocab_size,
                          lm_head_bias=True))
    with torch.no_grad():
        for tag in ("/assistant", "eot"):
            model.lm_head.bias[TOK.tag_id(tag)] = -1e4
    return model


def save(path, seed: int, step: int):
    return save_checkpoint(path, never_stopping_model(seed), tokenizer_state=TOK.state(), step=step)


@pytest.fixture
def checkpoints(tmp_path):
    root = tmp_path / "checkpoints"
    save(root / "run1" / "step_000010", seed=0, step=10)
    save(root / "base", seed=1, step=0)
    return root


def chat_app(root, max_new_tokens=24, model="run1"):
    app = MyptApp(mode="chat")
    app.chat_launch = ChatLaunch(model=model, root=str(root), device="cpu",
                                 sampling=SamplingConfig(temperature=0.0, max_new_tokens=max_new_tokens))
    return app


async def settle(app, pilot):
    await app.workers.wait_for_complete()
    await pilot.pause()


async def loaded(app, pilot, panes=("A",)):
    """Wait until the screen's checkpoints are loaded (up to a minute: the machine may be busy)."""
    screen = app.screen
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        await settle(app, pilot)
        if all(screen.sessions[p] is not None for p in panes):
            return screen
        await pilot.pause(0.05)
    raise AssertionError(f"checkpoints not loaded: {screen.loading_path}")


async def send(pilot, text):
    """Type a message and submit it. Enter is sent as the Input's submit action: a pilot key
    press would wait for an idle process, and generating keeps the CPU busy."""
    await pilot.click("#message")
    await pilot.press(*text)
    await pilot.app.screen.query_one("#message").action_submit()


async def test_a_reply_streams_token_by_token_into_the_conversation(checkpoints, monkeypatch):
    monkeypatch.setattr(ChatScreen, "STREAM_INTERVAL", 0.0)
    updates = []
    app = chat_app(checkpoints)
    async with app.run_test(size=(100, 30), message_hook=lambda m: updates.append(m)
                            if isinstance(m, ReplyUpdate) else None) as pilot:
        screen = await loaded(app, pilot)
        assert isinstance(screen, ChatScreen)
        assert str(screen.sessions["A"].checkpoint.path).endswith("run1/step_000010")
        await send(pilot, "hello there")
        await settle(app, pilot)
        session = screen.sessions["A"]

        finals = [u for u in updates if u.final]
        assert len(finals) == 1 and updates[-1] is finals[0]
        streamed = [u for u in updates if not u.final]
        assert len(streamed) >= 3  # the reply arrived in pieces, before it was done
        contents = ["".join(t for k, t in u.segments if k == "content") for u in updates]
        assert all(a == b[:len(a)] for a, b in zip(contents, contents[1:]))  # each extends the last
        assert contents[0] != contents[-1]

        reply = session.messages[-1]
        assert [m.role for m in session.messages] == ["user", "assistant"]
        assert session.messages[0].content == "hello there"
        assert contents[-1] == reply.content
        shown = screen.query_one("#pane-A", ChatPane).texts()
        assert shown[0] == ("user", "hello there")
        assert shown[1][0] == "assistant" and shown[1][1].startswith(reply.content)
        assert shown[1][1].endswith("tokens/s), stopped at max tokens")
        assert session.system == "You are a helpful assistant."  # the screen's system prompt was used

        await pilot.press("ctrl+l")  # clear: a new conversation
        await pilot.pause()
        assert session.messages == [] and screen.query_one("#pane-A", ChatPane).texts() == []


async def test_stop_ends_the_reply_early_and_keeps_what_was_written(checkpoints):
    app = chat_app(checkpoints, max_new_tokens=5000)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await loaded(app, pilot)
        await send(pilot, "go on")
        for _ in range(400):
            await pilot.pause(0.02)
            pane = screen.query_one("#pane-A", ChatPane)
            if len(pane.texts()) == 2 and len(pane.texts()[1][1]) > 5:
                break
        assert screen.busy
        screen.query_one("#stop").press()  # (a pilot click would wait for an idle process)
        await settle(app, pilot)
        assert not screen.busy
        reply = screen.sessions["A"].messages[-1]
        assert 0 < len(reply.content) < 5000
        assert screen.query_one("#pane-A", ChatPane).texts()[1][1].endswith("tokens/s), stopped")


async def test_two_checkpoints_answer_the_same_prompt_side_by_side(checkpoints):
    app = chat_app(checkpoints, max_new_tokens=16)
    async with app.run_test(size=(120, 30)) as pilot:
        screen = await loaded(app, pilot)
        await pilot.press("ctrl+n")  # compare
        screen.query_one("#ckpt-B").value = str(checkpoints / "base")
        await loaded(app, pilot, panes=("A", "B"))
        await send(pilot, "same prompt")
        await settle(app, pilot)
        a, b = screen.sessions["A"], screen.sessions["B"]
        assert a.messages[0].content == b.messages[0].content == "same prompt"
        assert a.messages[-1].content != b.messages[-1].content  # different weights, different replies
        for pane, session in (("A", a), ("B", b)):
            shown = screen.query_one(f"#pane-{pane}", ChatPane).texts()
            assert shown[0] == ("user", "same prompt")
            assert shown[1][1].startswith(session.messages[-1].content)
        assert screen.query_one("#pane-B").display


async def test_the_newest_checkpoint_of_a_training_run_is_found_on_rescan(checkpoints):
    app = chat_app(checkpoints, model=None)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        screen = app.screen
        assert screen.query_one("#ckpt-A").value == str(checkpoints / "base")  # the newest, preselected
        labels = [label for label, _ in screen.checkpoint_choices]
        assert labels[0] == "run1 (newest)" and "run1/step_000010" in labels
        save(checkpoints / "run1" / "step_000020", seed=2, step=20)  # the run saves another step
        await pilot.click("#rescan")
        await settle(app, pilot)
        assert "run1/step_000020" in [label for label, _ in screen.checkpoint_choices]
        screen.query_one("#ckpt-A").value = str(checkpoints / "run1")
        await loaded(app, pilot)
        assert str(screen.sessions["A"].checkpoint.path).endswith("run1/step_000020")


async def test_a_bad_sampling_value_is_shown_beside_the_controls_and_nothing_is_sent(checkpoints):
    app = chat_app(checkpoints)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await loaded(app, pilot)
        box = screen.query_one("#s-temperature")
        box.value = "-1"
        await pilot.pause()
        assert str(screen.query_one("#sampling-error").render()) == "temperature must be >= 0, got -1.0"
        assert box.has_class("-invalid")
        await send(pilot, "hi")
        await settle(app, pilot)
        assert screen.sessions["A"].messages == []
        assert screen.query_one("#pane-A", ChatPane).texts() == []
        box.value = "0.5"
        screen.query_one("#s-top_k").value = "7"
        await pilot.pause()
        assert str(screen.query_one("#sampling-error").render()) == ""
        screen.query_one("#message").value = "hi"
        screen.action_send()
        await settle(app, pilot)
        sampling = screen.sessions["A"].sampling
        assert (sampling.temperature, sampling.top_k, sampling.max_new_tokens) == (0.5, 7, 24)

        preset = screen.query_one("#preset")
        preset.value = "factual"  # a preset fills the values ...
        await pilot.pause()
        assert [screen.query_one(f"#s-{k}").value for k in ("temperature", "top_k", "top_p", "repetition_penalty",
                                                             "max_new_tokens")] == ["0.3", "10", "0.8", "1.0", "256"]
        screen.query_one("#s-top_p").value = "0.9"  # ... and editing one makes them custom
        await pilot.pause()
        assert preset.value is Select.NULL


async def test_a_tool_call_and_its_result_are_shown_in_the_conversation(checkpoints, monkeypatch):
    replies = ['<myPT_toolcall>{"name": "calculator", "arguments": {"expression": "12 * (3 + 4)"}}'
               '</myPT_toolcall></myPT_assistant>', "The answer is 84.</myPT_assistant>"]

    def scripted(model, prompt_ids, sampling, *, stop_ids, use_cache=True, should_stop=None):
        yield from TOK.encode_prompt(replies.pop(0))

    monkeypatch.setattr(chat_module, "generate", scripted)
    app = chat_app(checkpoints)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await loaded(app, pilot)
        await send(pilot, "What is 12 * (3 + 4)?")
        await settle(app, pilot)
        shown = screen.query_one("#pane-A", ChatPane).texts()
        lines = shown[1][1].split("\n")
        assert lines[:3] == [
            'tool call: {"name": "calculator", "arguments": {"expression": "12 * (3 + 4)"}}',
            'ran calculator({"expression": "12 * (3 + 4)"})',
            '-> {"result": 84}',
        ]
        # the second round's prompt no longer fits this tiny model's 128 tokens: said so, then the answer
        assert lines[3].startswith("context: the first ") and lines[3].endswith("fit the model's 128 tokens")
        assert lines[4] == "The answer is 84."
        assert [m.role for m in screen.sessions["A"].messages] == ["user", "assistant", "toolresult", "assistant"]


# -- a newcomer's first minutes in Chat -------------------------------------------------------------

async def test_reached_with_f3_the_newest_checkpoint_is_picked_and_loaded(checkpoints):
    import os
    import time

    later = time.time() + 60
    for meta in (checkpoints / "run1" / "step_000010").iterdir():
        os.utime(meta, (later, later))  # run1's step 10 is now the newest save
    app = MyptApp(checkpoints=checkpoints)  # opens on Train, as `mypt` does
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("f3")
        screen = await loaded(app, pilot)
        assert screen.query_one("#ckpt-A").value == str(checkpoints / "run1")
        assert str(screen.sessions["A"].checkpoint.path).endswith("run1/step_000010")


async def test_typing_after_picking_a_checkpoint_with_the_mouse_goes_to_the_message_never_quits(checkpoints):
    app = chat_app(checkpoints, model=None)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await loaded(app, pilot)
        await pilot.click("#ckpt-A")  # open the list with the mouse ...
        await pilot.pause()
        await pilot.press("down", "enter")  # ... and pick another entry
        await pilot.pause()
        await pilot.press(*"Is a square round?")
        await pilot.pause()
        assert app.is_running
        assert screen.query_one("#message").value == "Is a square round?"


async def test_q_typed_after_hiding_the_settings_is_text_and_ctrl_t_moves_the_focus(checkpoints):
    app = chat_app(checkpoints)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await loaded(app, pilot)
        screen.query_one("#compare").focus()
        await pilot.press("ctrl+t")  # hide the settings: the focused checkbox goes with them
        await pilot.pause()
        assert app.focused is screen.query_one("#message")
        await pilot.press("q")
        screen.query_one("#send").focus()  # a button has the focus: typing still goes to the message
        await pilot.press("u", "i", "t")
        await pilot.pause()
        assert app.is_running and screen.query_one("#message").value == "quit"


async def test_ctrl_q_quits_from_chat_but_asks_while_a_reply_streams(checkpoints):
    from mypt_tui.app.widgets.dialogs import Confirm

    app = chat_app(checkpoints, max_new_tokens=100000)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await loaded(app, pilot)
        await send(pilot, "go on")
        for _ in range(400):
            if app.replying:
                break
            await pilot.pause(0.02)
        await pilot.press("ctrl+q")
        assert isinstance(app.screen, Confirm) and "reply" in app.screen.title_text
        await pilot.press("escape")
        assert app.is_running and screen.busy
        await pilot.press("ctrl+q")
        await pilot.press("y")
        await app.workers.wait_for_complete()
    assert app.return_code == 0


async def test_pane_titles_fit_on_one_line_with_long_names_side_by_side(tmp_path):
    from helpers_app import screen_text

    root = tmp_path / "checkpoints"
    long_run = "a_rather_long_checkpoint_name_for_testing_titles"
    save(root / long_run / "step_000030", seed=0, step=30)
    save(root / "base", seed=1, step=0)
    app = chat_app(root, model=long_run)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await loaded(app, pilot)
        single = screen.query_one("#pane-A", ChatPane).title_text
        assert single.startswith("A: a_rather_long") and single.endswith("step_000030 · 2x32 · context 128 · char")
        await pilot.press("ctrl+n")
        screen.query_one("#ckpt-B").value = str(root / "base")
        await loaded(app, pilot, panes=("A", "B"))
        await pilot.pause()
        text = screen_text(app)
        title_a = screen.query_one("#pane-A", ChatPane).title_text
        assert title_a.startswith("A: a_rather") and "…" in title_a and "step_000030" in title_a
        assert title_a in text and "B: base · 2x32" in text
        labels = [label for label, _ in screen.checkpoint_choices]
        assert all(len(label) <= 24 for label in labels) and any("…" in label for label in labels)


async def test_the_focused_field_is_visible_in_256_colours(checkpoints):
    from rich.color import ColorSystem

    app = chat_app(checkpoints)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await loaded(app, pilot)

        def shade(widget) -> tuple[int, int, int]:
            return tuple(widget.background_colors[1].rich_color.downgrade(ColorSystem.EIGHT_BIT).get_truecolor())

        for focus, shown in (("#message", "#message"), ("#s-temperature", "#s-temperature"),
                             ("#ckpt-A", "#ckpt-A SelectCurrent")):
            widget = screen.query_one(shown)
            screen.query_one("#send").focus()
            await pilot.pause()
            blurred = shade(widget)
            screen.query_one(focus).focus()
            await pilot.pause()
            assert max(abs(a - b) for a, b in zip(shade(widget), blurred)) >= 40, (focus, blurred, shade(widget))


async def test_a_base_model_continues_each_message_as_plain_text(tmp_path, monkeypatch):
    """A checkpoint pretrained on a token stream (2 steps here) is a base model: the pane says its
    messages are continued as plain text, the prompt holds no chat tag, and no history is kept."""
    from engine.config import TrainConfig
    from engine.corpus import CorpusOptions, prepare_corpus
    from engine.train.job import TrainJob
    from engine.train.loop import run_training

    (tmp_path / "prose.txt").write_text("".join(f"the red fox {k} jumps over the lazy dog.\n\n" for k in range(40)))
    prepare_corpus(CorpusOptions(tmp_path / "prose.txt", tmp_path / "stream", tokenization="char", val_split=0.0))
    cfg = TrainConfig(n_layer=1, n_embd=32, n_head=2, block_size=32, batch_size=4, max_iters=2, warmup_iters=0,
                      eval_interval=2, eval_iters=1, save_every=2, device="cpu", precision="fp32", batching="pad",
                      use_loss_mask=False)
    root = tmp_path / "checkpoints"
    run_training(TrainJob(config=cfg, dataset=tmp_path / "stream", output=root / "base"), [lambda e: None])
    prompts = []
    real_generate = chat_module.generate

    def spy(model, ids, *a, **kw):
        prompts.append(list(ids))
        return real_generate(model, ids, *a, **kw)

    monkeypatch.setattr(chat_module, "generate", spy)
    app = chat_app(root, max_new_tokens=12, model="base")
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await loaded(app, pilot)
        session = screen.sessions["A"]
        pane = screen.query_one("#pane-A", ChatPane)
        assert session.raw and "base: raw text" in pane.title_parts[1]
        assert pane.texts()[0][0] == "note" and "continued as plain text" in pane.texts()[0][1]
        await send(pilot, "the red fox")
        await settle(app, pilot)
        assert prompts == [session.tok.encode("the red fox")]  # no tags, no system prompt
        shown = pane.texts()
        assert shown[1] == ("user", "the red fox") and shown[2][0] == "assistant"
        assert session.messages == []  # each message is continued on its own
