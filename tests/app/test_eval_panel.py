"""The eval panel (the monitor's Evals view) as a user sees it: a run followed in Runs fills a row per
eval set with each change since the last eval, a guard that fires turns its set's row red and says
what it saw, the plot switches metric and the latest probe replies show gold beside reply; a run
trained on the Train screen fills the same panel."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from textual.widgets import DataTable, Select

from engine.events import Eval, Gate, JsonlSink, Probe, RunStart
from helpers_app import screen_text, tiny_config, tiny_dataset, wait_for
from mypt_tui.app.app import MyptApp
from mypt_tui.app.widgets.eval_panel import EvalPanel, EvalPlot

SIZE = (100, 34)


def sets(val: float, tool: float) -> dict:
    return {"val": {"loss": val, "token_accuracy": 0.5, "tokens": 90, "kind": "episodes", "split": "val", "path": ""},
            "tool": {"loss": tool, "token_accuracy": 0.2, "tokens": 60, "kind": "episodes", "split": "val",
                     "path": "data/tool"}}


def probed(step: int, val_exact: int, tool_exact: int) -> Probe:
    def one(exact: int) -> dict:
        return {"turns": 4, "exact": exact, "formatted": 4, "tool_turns": 0, "tool_valid": 0,
                "exact_match": exact / 4, "format_compliance": 1.0, "tool_call_validity": None, "families": {}}
    replies = [{"set": "val", "episode": "ep7", "turn": 1, "family": "all", "gold": "The sky is blue.",
                "reply": "The sky is green.", "exact": False, "formatted": True, "problem": "content differs"}]
    return Probe(step=step, sets={"val": one(val_exact), "tool": one(tool_exact)}, replies=replies, seconds=0.5,
                 spent=0.5, share=0.05, budget=0.1)


def append(run: Path, events: list) -> None:
    sink = JsonlSink(run / "events.jsonl")
    for ev in events:
        sink(ev)
    sink.close()


def cell_texts(table: DataTable, key: str) -> list[str]:
    return [str(c) for c in table.get_row(key)]


async def test_a_followed_run_fills_the_panel_and_a_guard_turns_its_row_red(tmp_path):
    root, run = tmp_path / "ckpt", tmp_path / "ckpt" / "live"
    run.mkdir(parents=True)
    append(run, [RunStart(step=0, run_dir=str(run), max_iters=20, config={}, model={"params": 1}, preflight={},
                          pid=os.getpid()),
                 Eval(step=0, val_loss=3.0, train_loss=3.0, sets=sets(3.0, 2.0)),
                 Gate(step=0, strategy="val_loss", chosen=False, reason="step 0: the starting weights"),
                 Eval(step=5, val_loss=2.0, train_loss=2.0, sets=sets(2.0, 1.9)), probed(5, 1, 2),
                 Gate(step=5, strategy="val_loss", chosen=True, reason="val loss 2.0000 < none yet", best_step=5)])
    app = MyptApp(checkpoints=root)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f2")
        await wait_for(pilot, lambda: app.screen.query_one("#runs-table", DataTable).row_count == 1, "the run")
        await pilot.press("o")
        await pilot.click("#mon-show-evals")
        panel = app.screen.query_one(EvalPanel)
        table = panel.query_one("#eval-table", DataTable)
        await wait_for(pilot, lambda: table.row_count == 2, "a row per eval set")
        assert cell_texts(table, "val") == ["val", "2.0000 ↓1.0000", "50.0% =", "25.0%", "100.0%"]
        assert cell_texts(table, "tool") == ["tool", "1.9000 ↓0.1000", "20.0% =", "50.0%", "100.0%"]
        await wait_for(pilot, lambda: "chosen: val loss 2.0000 < none yet (best/ = step 5)" in screen_text(app),
                       "the choice on screen")

        append(run, [Eval(step=10, val_loss=1.5, train_loss=1.4, sets=sets(1.5, 2.6)), probed(10, 3, 0),
                     Gate(step=10, strategy="val_loss", chosen=False, blocked=True, best_step=5,
                          reason="blocked by a guard: tool loss 2.0000 -> 2.6000 (+30.0% > 20%)",
                          guards={"regression": "tool loss 2.0000 -> 2.6000 (+30.0% > 20%)"}, regressed=["tool"])])
        await wait_for(pilot, lambda: cell_texts(table, "tool")[1] == "2.6000 ↑0.7000", "the followed eval")
        assert cell_texts(table, "tool")[3] == "0.0% ↓50.0" and cell_texts(table, "val")[3] == "75.0% ↑50.0"
        assert all(c.style == "bold red" for c in table.get_row("tool"))
        assert not any(c.style == "bold red" for c in table.get_row("val"))
        await wait_for(pilot, lambda: "guard: tool loss 2.0000 -> 2.6000 (+30.0% > 20%)" in screen_text(app),
                       "the guard on screen")
        assert "not chosen: blocked by a guard" in screen_text(app)

        view = panel.query_one("#eval-view", Select)
        view.value = "exact"
        await pilot.pause(0.1)
        assert panel.query_one(EvalPlot).display
        view.value = "replies"
        replies = panel.query_one("#eval-replies", DataTable)
        await wait_for(pilot, lambda: replies.row_count == 1 and replies.display, "the probe replies")
        assert cell_texts(replies, "0") == ["val", "ep7#1", "✗", "The sky is blue.", "The sky is green."]
        await wait_for(pilot, lambda: any("The sky is blue." in line and line.index("The sky is blue.")
                                          < line.find("The sky is green.") for line in screen_text(app).splitlines()),
                       "gold beside reply on one line")


@pytest.mark.slow
async def test_a_run_trained_on_the_train_screen_fills_the_same_panel(tmp_path):
    from textual.widgets import Input

    dataset = tiny_dataset(tmp_path / "data")
    root = tmp_path / "ckpt"
    app = MyptApp(checkpoints=root)
    async with app.run_test(size=SIZE) as pilot:
        train = app.train_screen
        for key, value in (("config", tiny_config(tmp_path, max_iters=8, eval_interval=4)), ("dataset", dataset),
                           ("output", "evals")):
            train.query_one(f"#{key}", Input).value = str(value)
        await pilot.click("#start")
        await wait_for(pilot, lambda: app.training.state != "idle" or (root / "evals").exists(), "the run to start")
        await wait_for(pilot, lambda: app.training.state == "idle", "the run to finish", timeout=120)
        await pilot.pause(0.3)
        panel = train.query_one(EvalPanel)
        assert [r["step"] for r in panel.card.records] == [0, 4, 8]
        assert panel.query_one("#eval-table", DataTable).row_count == 1  # the tiny set's own val split
        assert [r["step"] for r in panel.card.records if r["probe"] and not r["probe"]["skipped"]][:1] == [4]
