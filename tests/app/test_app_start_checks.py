"""Every way to start a run checks the form first: an empty or wrong field is a dialog naming
it (and the field gets the focus); nothing starts, nothing is written, and the app keeps running."""

from __future__ import annotations

import pytest
from textual.widgets import Input

from engine.train.job import TrainRequest
from helpers_app import tiny_config, tiny_dataset, wait_for
from mypt_tui.app.app import MyptApp
from mypt_tui.app.widgets.dialogs import ErrorDialog
from mypt_tui.services.start_check import StartProblem, check_request

SIZE = (100, 30)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return tiny_dataset(tmp_path_factory.mktemp("start_data"))


def fill(train, **values) -> None:
    for key, value in values.items():
        train.query_one(f"#{key}", Input).value = str(value)


async def start_and_expect(app, pilot, field: str, how: str = "ctrl+r") -> str:
    if how == "button":
        await pilot.click("#start")
    elif how == "palette":
        next(c for c in app.get_system_commands(app.screen) if c.title == "Start training").callback()
    else:
        await pilot.press(how)
    await wait_for(pilot, lambda: isinstance(app.screen, ErrorDialog), f"a dialog about {field}")
    dialog = app.screen
    assert dialog.title_text == f"Cannot start the run: {field}", dialog.message
    assert app.training.state == "idle" and app.is_running
    await pilot.press("escape")
    await pilot.pause()
    assert app.focused is not None and app.focused.id == field.lower()  # the field to fix has the focus
    return dialog.message


async def test_an_empty_output_is_a_dialog_naming_output_by_key_button_and_palette(dataset, tmp_path):
    app = MyptApp(checkpoints=tmp_path / "ckpt")
    async with app.run_test(size=SIZE) as pilot:
        train = app.train_screen
        fill(train, config=tiny_config(tmp_path), dataset=dataset, output="", flags="")
        for how in ("ctrl+r", "button", "palette", "ctrl+g"):
            message = await start_and_expect(app, pilot, "Output", how)
            assert "run name" in message
    assert not (tmp_path / "ckpt").exists()


async def test_each_wrong_field_is_named_before_anything_starts(dataset, tmp_path):
    root = tmp_path / "ckpt"
    (root / "taken").mkdir(parents=True)
    (root / "taken" / "run.json").write_text("{}")
    cfg = tiny_config(tmp_path)
    bad_cfg = tmp_path / "bad.toml"
    bad_cfg.write_text("n_layer = 'two'\n")
    cases = [
        (dict(config=""), "Config", "empty"),
        (dict(config=tmp_path / "missing.toml"), "Config", "no such file"),
        (dict(config=bad_cfg), "Config", "n_layer"),
        (dict(dataset=""), "Dataset", "empty"),
        (dict(dataset=tmp_path / "nowhere"), "Dataset", "nowhere"),
        (dict(flags="--max_iters nope"), "Flags", "--max_iters"),
        (dict(flags="--eval_interval -3"), "Flags", "eval_interval"),
        (dict(flags="--resume"), "Output", "no checkpoint to resume"),
        (dict(output="taken"), "Output", "already holds a run"),
    ]
    app = MyptApp(checkpoints=root)
    async with app.run_test(size=SIZE) as pilot:
        train = app.train_screen
        for change, field, words in cases:
            fill(train, config=cfg, dataset=dataset, output="fresh", flags="")
            fill(train, **change)
            assert words in await start_and_expect(app, pilot, field), change
    assert sorted(p.name for p in root.iterdir()) == ["taken"]


async def test_mypt_train_opening_the_app_with_a_missing_dataset_shows_the_dialog(tmp_path):
    request = TrainRequest(output="x", config=str(tiny_config(tmp_path)), dataset=str(tmp_path / "none"),
                           init="scratch", checkpoints=str(tmp_path / "ckpt"))
    app = MyptApp(checkpoints=tmp_path / "ckpt", train_request=request, autostart=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, ErrorDialog), "the dialog")
        assert app.screen.title_text == "Cannot start the run: Dataset"
        assert app.training.state == "idle"


async def test_an_unexpected_error_while_starting_is_a_dialog_not_a_crash(dataset, tmp_path, monkeypatch):
    app = MyptApp(checkpoints=tmp_path / "ckpt")
    async with app.run_test(size=SIZE) as pilot:
        fill(app.train_screen, config=tiny_config(tmp_path), dataset=dataset, output="boom", flags="")

        def broken(request):
            raise RuntimeError("the session broke")

        monkeypatch.setattr(app.training, "begin_in_app", broken)
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: isinstance(app.screen, ErrorDialog), "the dialog")
        assert "RuntimeError: the session broke" in app.screen.message
        assert app.is_running


def test_the_check_builds_the_job_with_the_engine(dataset, tmp_path):
    req = TrainRequest(output="ok", config=str(tiny_config(tmp_path)), dataset=str(dataset), init="scratch",
                       checkpoints=str(tmp_path / "ckpt"), overrides={"max_iters": 7})
    job = check_request(req)
    assert job.config.max_iters == 7 and job.output == tmp_path / "ckpt" / "ok"
    with pytest.raises(StartProblem) as e:
        check_request(TrainRequest(output="ok", config=str(tiny_config(tmp_path)), dataset=str(dataset),
                                   model="nothing-here", checkpoints=str(tmp_path / "ckpt")))
    assert e.value.field == "Init"
