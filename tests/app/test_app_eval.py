"""The eval modal: runs in a worker, fills the per-family table, cancels, shows failures."""

from __future__ import annotations

import pytest
import torch
from textual.app import App
from textual.widgets import DataTable, Static

from engine.checkpoint import save_checkpoint
from engine.dataset import open_dataset
from engine.model import GPT, GPTConfig
from helpers_data import chat, prepared, write_jsonl
from mypt_tui.app.screens.eval import EvalScreen
from mypt_tui.present.eval_table import metric_cells


def episodes(n: int, prefix: str) -> list[dict]:
    return [chat(f"{prefix}{i}", f"Question {i}?", "Yes." if i % 2 else "No.",
                 meta={"family": "yes" if i % 2 else "no"}) for i in range(n)]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A char dataset with two families (4 val episodes; 400 in "big") and an untrained checkpoint."""
    tmp = tmp_path_factory.mktemp("app_eval")
    prepared(tmp, episodes(16, "t"), tokenization="char", val_file=write_jsonl(tmp / "val.jsonl", episodes(4, "v")))
    prepared(tmp, episodes(16, "t"), name="big", tokenization="char",
             val_file=write_jsonl(tmp / "big.jsonl", episodes(400, "v")))
    tok = open_dataset(tmp / "out").tokenizer()
    torch.manual_seed(0)
    model = GPT(GPTConfig(n_layer=1, n_embd=32, n_head=2, block_size=48, vocab_size=tok.model_vocab_size))
    save_checkpoint(tmp / "ckpt", model, tokenizer_state=tok.state(), step=7)
    return tmp


class Host(App):
    def __init__(self, screen: EvalScreen) -> None:
        super().__init__()
        self.eval_screen = screen
        self.result = "not dismissed"
        self.messages: list = []

    def on_mount(self) -> None:
        self.push_screen(self.eval_screen, callback=lambda r: setattr(self, "result", r))


def host(setup, data: str = "out", **kw) -> Host:
    return Host(EvalScreen(kw.pop("checkpoint", setup / "ckpt"), setup / data, **kw))


def status(app: Host) -> str:
    return str(app.eval_screen.query_one("#eval-status", Static).render())


async def test_the_table_shows_each_family_and_overall(setup):
    app = host(setup)
    async with app.run_test(message_hook=app.messages.append) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        screen = app.eval_screen
        assert screen.state == "done"
        table = screen.query_one(DataTable)
        rows = [table.get_row_at(k) for k in range(table.row_count)]
        assert [r[0] for r in rows] == ["no", "yes", "overall"]
        assert [r[1:3] for r in rows] == [["2", "2"], ["2", "2"], ["4", "4"]]  # episodes, turns
        assert rows[-1][1:] == metric_cells(screen.report.overall)
        assert rows[-1][5] == "-"  # no tool turns
        assert status(app).startswith("Done in ") and "at step 7: 4 episodes, 4 turns" in status(app)
        progress = [m.progress for m in app.messages if isinstance(m, EvalScreen.Progress)]
        assert progress and progress[-1].phase == "generate" and progress[-1].done == 4
        await pilot.press("escape")
        await pilot.pause()
    assert app.result is screen.report


async def test_cancel_stops_the_worker_and_close_returns_nothing(setup):
    app = host(setup, "big")
    async with app.run_test(message_hook=app.messages.append) as pilot:
        await pilot.press("c")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.eval_screen.state == "cancelled" and status(app) == "Eval cancelled"
        assert not any(isinstance(m, EvalScreen.Finished) for m in app.messages)  # the worker stopped early
        assert app.eval_screen.query_one(DataTable).row_count == 0
        await pilot.press("escape")
        await pilot.pause()
    assert app.result is None


async def test_a_missing_checkpoint_is_shown_not_fatal(setup):
    app = host(setup, checkpoint=setup / "missing")
    async with app.run_test() as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.eval_screen.state == "failed"
        assert status(app).startswith(f"Eval failed: no checkpoint '{setup / 'missing'}'")
        assert app.is_running
        await pilot.press("q")
        await pilot.pause()
    assert app.result is None


async def test_ctrl_o_on_the_runs_screen_evaluates_the_run_on_its_own_dataset(tmp_path):
    from engine.config import TrainConfig
    from engine.train.job import TrainJob
    from engine.train.loop import run_training
    from helpers_app import tiny_dataset, wait_for
    from mypt_tui.app.app import MyptApp

    root = tmp_path / "ckpt"
    data = tiny_dataset(tmp_path / "data")
    cfg = TrainConfig(n_layer=1, n_embd=32, n_head=2, block_size=96, batch_size=4, max_iters=2, warmup_iters=0,
                      eval_interval=2, eval_iters=1, save_every=2, device="cpu", precision="fp32",
                      episode_min_tokens=4)
    run_training(TrainJob(config=cfg, dataset=data, output=root / "r1"))
    app = MyptApp(checkpoints=root, mode="runs")
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.screen.query_one(DataTable).row_count == 1, "the run")
        await pilot.press("ctrl+o")
        await wait_for(pilot, lambda: isinstance(app.screen, EvalScreen), "the eval modal")
        screen = app.screen
        assert (screen.checkpoint, screen.dataset) == (str(root / "r1" / "step_000002"), str(data))
        await wait_for(pilot, lambda: screen.state == "done", "the eval", timeout=60)
        rows = screen.query_one(DataTable).row_count
        assert rows >= 2  # a family row and overall
