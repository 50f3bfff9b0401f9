"""The Config screen driven like a user: open, edit with checks as you type, save keeping the
file's comments and order, save as, the continuation warning, and a MyPT JSON saved as TOML."""

import json
import shutil
from pathlib import Path

import pytest

from engine.config import edit_toml, field_error, load_config
from helpers_app import wait_for
from mypt_tui.app.app import MyptApp
from mypt_tui.app.screens.config import CONTINUING, ConfigScreen
from mypt_tui.app.widgets.config_form import ConfigForm

ROOT = Path(__file__).resolve().parents[2]
PHASE3A = ROOT / "configs" / "sft1" / "750M_1024_chat_sft_phase3a.toml"

CONFIG = """\
# A small run: its comments, blank lines and key order must survive saving.
#
#   mypt train --init scratch --config this.toml

name = "small"

# --- Architecture ---
n_layer = 4
n_embd = 256
n_head = 4
block_size = 256
dropout = 0.0          # no regularization needed

# --- Training parameters ---
learning_rate = 1e-3   # From scratch: much higher than fine-tuning's 5e-5
batch_size = 8
max_iters = 300
warmup_iters = 0.05    # 5% of max_iters

# --- Loss masking ---
use_loss_mask = true   # Train only on assistant responses
"""


@pytest.fixture
def demo(tmp_path):
    path = tmp_path / "small.toml"
    path.write_text(CONFIG, encoding="utf-8")
    return path


async def opened(pilot, path) -> ConfigScreen:
    screen = pilot.app.screen
    assert isinstance(screen, ConfigScreen)
    screen.query_one("#config-path").value = str(path)
    await pilot.click("#open")
    await wait_for(pilot, lambda: screen.path == Path(path), f"{path} to open")
    await pilot.pause()
    return screen


def side(form: ConfigForm, name: str) -> str:
    """What is shown beside a field: the file's comment or the guide's reason, then any problem or warning."""
    return form.row(name).query_one(".side").render().plain


async def retype(pilot, form: ConfigForm, name: str, text: str) -> None:
    """Clear a field and type into it, key by key, as a user would."""
    form.show_group_of(name)
    await pilot.pause()
    editor = form.row(name).editor
    editor.focus()
    editor.value = ""
    await pilot.press(*text)
    await pilot.pause()


def test_edit_toml_without_changes_gives_back_every_shipped_config_byte_for_byte():
    for path in sorted((ROOT / "configs").rglob("*.toml")):
        text = path.read_text(encoding="utf-8")
        assert edit_toml(text, {}) == text, path


async def test_edit_check_and_save_keeping_comments_blank_lines_and_key_order_then_save_as(demo, tmp_path):
    original = demo.read_text(encoding="utf-8")
    app = MyptApp(mode="config")
    async with app.run_test(size=(100, 32)) as pilot:
        screen = await opened(pilot, demo)
        form = screen.query_one(ConfigForm)
        assert form.row("learning_rate").text == "0.001"
        assert form.row("warmup_iters").text == "0.05"  # a fraction stays a fraction
        assert side(form, "learning_rate") == "From scratch: much higher than fine-tuning's 5e-5"  # the file's own

        # a value is checked as it is typed, and nothing is written while it is wrong
        await retype(pilot, form, "batch_size", "x")
        row = form.row("batch_size")
        assert row.problem == field_error("batch_size", "x") == "batch_size must be an integer >= 1, got 'x'"
        assert side(form, "batch_size") == f"{row.field.note}\n{row.problem}" and row.editor.has_class("-invalid")
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert str(screen.query_one("#config-status").render()) == (
            "Not saved: batch_size must be an integer >= 1, got 'x'")
        assert demo.read_text(encoding="utf-8") == original
        await pilot.press("backspace", "4")
        await pilot.pause()
        assert row.problem is None and side(form, "batch_size") == row.field.note

        # a rule between keys is shown beside both keys, and blocks saving too
        await retype(pilot, form, "n_head", "3")
        for key in ("n_embd", "n_head"):
            assert form.row(key).problem == "n_embd = 256 (form) must be divisible by n_head = 3 (form)"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert str(screen.query_one("#config-status").render()).startswith("Not saved:")
        assert demo.read_text(encoding="utf-8") == original
        await pilot.press("backspace", "4")
        await retype(pilot, form, "learning_rate", "2e-3")
        assert screen.changed() == {"batch_size": "4", "learning_rate": "2e-3"}

        await pilot.press("ctrl+s")
        await pilot.pause()
        saved = demo.read_text(encoding="utf-8")
        assert saved == (original.replace("batch_size = 8\n", "batch_size = 4\n")
                         .replace("learning_rate = 1e-3   #", "learning_rate = 0.002   #"))
        cfg = load_config(demo)
        assert (cfg.batch_size, cfg.learning_rate, cfg.warmup_fraction) == (4, 0.002, 0.05)

        # save as: a new file, the one opened stays as it was
        await retype(pilot, form, "max_iters", "50")
        screen.query_one("#config-save-as").value = str(tmp_path / "short.toml")
        await pilot.click("#save-as")
        await wait_for(pilot, lambda: screen.path == tmp_path / "short.toml", "save as")  # the form edits it now
    assert demo.read_text(encoding="utf-8") == saved
    assert (tmp_path / "short.toml").read_text(encoding="utf-8") == saved.replace("max_iters = 300\n",
                                                                                 "max_iters = 50\n")


async def test_changing_the_architecture_of_a_continuation_run_warns(tmp_path):
    config = Path(shutil.copy(PHASE3A, tmp_path / "phase3a.toml"))
    app = MyptApp(mode="config")
    async with app.run_test(size=(100, 32)) as pilot:
        screen = await opened(pilot, config)
        form = screen.query_one(ConfigForm)
        assert screen.query_one("#config-continuing").value  # its usage line trains with --model
        await retype(pilot, form, "n_layer", "12")
        row = form.row("n_layer")
        assert row.warning == CONTINUING and side(form, "n_layer") == f"{row.field.note}\n{CONTINUING}"
        await retype(pilot, form, "batch_size", "6")  # not architecture: no warning
        assert form.row("batch_size").warning is None
        screen.query_one("#config-continuing").value = False  # training from scratch: no warning
        await pilot.pause()
        assert row.warning is None and side(form, "n_layer") == row.field.note


async def test_a_mypt_json_config_opens_is_fixed_in_the_form_and_is_saved_as_toml(tmp_path):
    src = tmp_path / "old.json"
    src.write_text(json.dumps({"n_layer": 4, "n_embd": 128, "n_head": 4, "block_size": 256,
                               "learning_rate": 3e-4, "max_iters": 100, "use_loss_mask": True}), encoding="utf-8")
    app = MyptApp(mode="config")
    async with app.run_test(size=(100, 32)) as pilot:
        screen = await opened(pilot, src)
        form = screen.query_one(ConfigForm)
        assert form.row("n_embd").text == "128"
        # the default warmup (150 steps) is longer than this config's 100 steps
        assert form.row("max_iters").problem.startswith("warmup_iters = 150 exceeds max_iters = 100")
        await retype(pilot, form, "max_iters", "200")
        assert form.row("max_iters").problem is None
        await pilot.press("ctrl+s")
        await pilot.pause()
    assert json.loads(src.read_text(encoding="utf-8"))["max_iters"] == 100  # the JSON is left alone
    saved = load_config(tmp_path / "old.toml")
    assert (saved.n_layer, saved.n_embd, saved.learning_rate, saved.max_iters) == (4, 128, 3e-4, 200)
    assert saved.explicit == {"n_layer", "n_embd", "n_head", "block_size", "learning_rate", "max_iters",
                              "use_loss_mask"}


# -- honest at all times --------------------------------------------------------------------------

async def test_a_fresh_config_screen_claims_no_unsaved_changes():
    app = MyptApp()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("f5")
        await pilot.pause(0.5)
        status = str(app.screen.query_one("#config-status").render())
        assert "not saved" not in status and ("Open a config" in status or "No config open" in status)
        assert app.screen.changed() == {}


async def test_a_wrong_value_is_said_at_once_and_its_problem_is_in_view(demo):
    from helpers_app import screen_text

    app = MyptApp(mode="config")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await opened(pilot, demo)
        form = screen.query_one(ConfigForm)
        await retype(pilot, form, "eval_iters", "abc")
        await pilot.pause(0.3)
        problem = field_error("eval_iters", "abc")
        assert str(screen.query_one("#config-status").render()) == problem
        assert problem in screen_text(app).replace("\n", " ") or problem[:40] in screen_text(app)
        row = form.row("eval_iters")
        assert row.region.height and row.query_one(".side").region.bottom <= form.region.bottom


async def test_the_files_own_comments_are_shown_beside_its_keys(demo):
    from helpers_app import screen_text

    app = MyptApp(mode="config")
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await opened(pilot, demo)
        form = screen.query_one(ConfigForm)
        form.show_row("learning_rate")
        await pilot.pause(0.3)
        text = screen_text(app)
        assert "From scratch: much higher than fine-tuning's 5e-5" in text
        assert "Lower LR for fine-tuning" not in text  # the guide's note would contradict the file
        assert side(form, "batch_size") == form.row("batch_size").field.note  # no comment: the guide's
