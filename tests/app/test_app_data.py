"""The Data screen driven like a user: prepare with progress, cancel, statistics, and the mask
view of an episode picked by index or id."""

from engine.dataset import open_dataset
from helpers_data import chat, leftovers, tool_episode, write_jsonl
from mypt_tui.app.app import MyptApp
from mypt_tui.app.screens.data import DataScreen, PrepareProgress
from mypt_tui.app.widgets.mask_view import MaskView, mask_tokens


def episodes() -> list:
    lines = [chat(f"ep{i:02d}", f"Question {i}?", f"Answer {i}.", system="Be brief.") for i in range(20)]
    lines.insert(5, "{not json")
    lines.append(tool_episode("calc01", 12, 7))
    return lines


async def settle(app, pilot):
    for _ in range(3):
        await app.workers.wait_for_complete()
        await pilot.pause()


async def show(pilot, screen, wanted: str) -> None:
    """Type an id or index into the episode box and press enter (clicking Show twice within
    Textual's 0.2 s press effect would be ignored)."""
    box = screen.query_one("#mask-episode")
    box.value = wanted
    box.focus()
    await pilot.press("enter")


def fill(screen, **values):
    for key, value in values.items():
        screen.query_one(f"#prep-{key}").value = value


async def test_prepare_shows_progress_stats_and_the_mask_of_any_episode(tmp_path):
    src = write_jsonl(tmp_path / "gold.jsonl", episodes())
    out = tmp_path / "prepared"
    progress = []
    app = MyptApp(mode="data")
    async with app.run_test(size=(100, 32), message_hook=lambda m: progress.append(m)
                            if isinstance(m, PrepareProgress) else None) as pilot:
        screen = app.screen
        assert isinstance(screen, DataScreen)
        fill(screen, input=str(src), output=str(out), tokenization="char")
        screen.query_one("#prep-val-split").value = "0.2"
        await pilot.click("#prepare")
        await settle(app, pilot)

        assert progress and progress[-1].done == 22  # every line of the input read
        report = str(screen.query_one("#prepare-report").render())
        assert report.startswith(f"Prepared {out} in ")
        assert "train: 17 episodes" in report and "val:   4 episodes" in report
        assert "skipped 1: invalid JSON 1" in report and "gold.jsonl:6: invalid JSON" in report

        # the statistics tab opened with the new dataset
        assert screen.query_one("#data-tabs").active == "tab-stats"
        ds = open_dataset(out)
        train = ds.split("train")
        stats = {s.name: s for s in screen.stats}
        assert stats["train"].episodes == 17 and stats["val"].episodes == 4
        assert stats["train"].tokens == len(train.tokens)
        assert stats["train"].supervised == int(train.mask.sum())
        assert stats["train"].longest == int(train.lengths.max())
        assert "skipped when prepared: 1 (invalid JSON 1)" in str(screen.query_one("#data-stats-text").render())

        # the mask view: episode 0 first, then one picked by id
        view = screen.query_one(MaskView)
        ids, mask = train.episode(0)
        assert [p.trained for p in view.pieces] == [bool(m) for m in mask]
        screen.query_one("#data-tabs").active = "tab-mask"
        split = next(s for s in (ds.split("train"), ds.split("val")) if s.find("calc01") is not None)
        wanted = split.find("calc01")
        screen.query_one("#mask-split").value = split.name
        await pilot.pause()
        await show(pilot, screen, "calc01")
        await pilot.pause()
        assert screen.episode_index == wanted
        ids, mask = split.episode(wanted)
        tok = ds.tokenizer()
        assert view.pieces == mask_tokens(ids, mask, tok)
        trained = "".join(p.text for p in view.pieces if p.trained)
        assert trained == ('<myPT_toolcall>{"name": "calculator", "arguments": {"expression": "12*7"}}'
                           '</myPT_toolcall></myPT_assistant>12 times 7 is 84.</myPT_assistant><myPT_eot>')
        assert [p.text for p in view.pieces if p.tag][:3] == ["<myPT_user>", "</myPT_user>", "<myPT_assistant>"]
        shown = view.query_one("#mask-text").render()
        # token boundaries: neighbouring tokens never share a style
        starts = [s for s in shown.spans]
        assert len(starts) >= len([p for p in view.pieces if p.text]) - 1
        assert all(a.style != b.style for a, b in zip(starts, starts[1:]) if a.end == b.start)
        assert str(view.query_one("#mask-title").render()).startswith(
            f"{split.name} episode {wanted} of {len(split)}: calc01, from gold.jsonl:22")

        # by index, and a missing id explains what exists
        await show(pilot, screen, "2")
        await pilot.pause()
        assert screen.episode_index == 2
        assert view.pieces == mask_tokens(*split.episode(2), tok)
        await show(pilot, screen, "nope")
        await pilot.pause()
        assert str(view.query_one("#mask-title").render()) == (
            f"no episode 'nope' in {split.name}: give an index 0..{len(split) - 1} or an episode id")


async def test_cancel_leaves_nothing_and_a_bad_input_is_reported(tmp_path):
    src = write_jsonl(tmp_path / "gold.jsonl",
                      [chat(f"ep{i:04d}", f"Question {i}?", f"Answer {i}.") for i in range(3000)])
    out = tmp_path / "prepared"
    app = MyptApp(mode="data")
    async with app.run_test(size=(100, 32)) as pilot:
        screen = app.screen
        fill(screen, input=str(src), output=str(out), tokenization="char")
        screen.action_prepare()
        screen.action_cancel()  # before the worker's first check
        await settle(app, pilot)
        assert str(screen.query_one("#prepare-report").render()) == "prepare cancelled: nothing was written"
        assert not out.exists() and leftovers(tmp_path) == []
        assert not screen.preparing and not screen.query_one("#prepare").disabled

        fill(screen, input=str(tmp_path / "missing.jsonl"))
        await pilot.click("#prepare")
        await settle(app, pilot)
        report = screen.query_one("#prepare-report")
        assert str(report.render()) == f"{tmp_path / 'missing.jsonl'}: no such file or folder"
        assert report.has_class("-error")
