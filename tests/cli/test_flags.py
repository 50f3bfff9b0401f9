"""Flags: every config key is a flag (and its dashed spelling), typed and checked like the file."""

from __future__ import annotations

import argparse

import pytest

from engine.config import FIELDS, apply_overrides, load_config
from mypt_tui.flags import add_config_flags, overrides_from_args

# -- config keys as flags ------------------------------------------------------------------------------------

def parser_with_flags() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mypt train")
    p.add_argument("--config")
    add_config_flags(p)
    return p


def test_every_key_is_a_flag_with_its_dashed_spelling():
    p = parser_with_flags()
    strings = {s for a in p._actions for s in a.option_strings}
    for name in FIELDS:
        assert f"--{name}" in strings and f"--{name.replace('_', '-')}" in strings
    assert overrides_from_args(p.parse_args([])) == {}


def test_flags_parse_types_and_override_the_file(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("max_iters = 5000\nsave_every = 1000\neval_interval = 500\nwarmup_iters = 0.03\n"
                    "compile = false\n")
    args = parser_with_flags().parse_args(
        ["--config", str(path), "--max_iters", "20", "--save-every", "10", "--eval_interval", "10",
         "--compile", "--use_loss_mask", "no", "--epoch-shuffle", "0", "--dropout", "0.2",
         "--batching", "pack", "--warmup_iters", "0.1"])
    over = overrides_from_args(args)
    assert over == {"dropout": 0.2, "max_iters": 20, "warmup_iters": 0.1, "eval_interval": 10,
                    "save_every": 10, "compile": True, "use_loss_mask": False,
                    "epoch_shuffle": False, "batching": "pack"}
    cfg = apply_overrides(load_config(args.config), over)
    assert (cfg.max_iters, cfg.save_every, cfg.eval_interval, cfg.warmup_iters) == (20, 10, 10, 2)
    assert (cfg.compile, cfg.use_loss_mask, cfg.epoch_shuffle, cfg.batching) == (True, False, False, "pack")
    assert cfg.origins["max_iters"] == "--max_iters" and cfg.origins["compile"] == "--compile"
    assert {"max_iters", "use_loss_mask"} <= cfg.explicit


@pytest.mark.parametrize("argv, message", [
    (["--dropout", "1.5"], "argument --dropout: must be a number in [0, 1), got '1.5'"),
    (["--batch-size", "ten"], "argument --batch_size/--batch-size: must be an integer >= 1, got 'ten'"),
    (["--compile", "maybe"], 'argument --compile: must be one of "auto", "true", "false", got "maybe"'),
    (["--batching", "packed"],
     'argument --batching: must be one of "pad", "pack", got "packed" (did you mean "pack"?)'),
    (["--min_lr", "none"], "argument --min_lr/--min-lr: must be a number >= 0, or unset "
                           "(learning_rate / 10), got 'none'"),
])
def test_bad_flag_values_are_refused_naming_the_flag(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        parser_with_flags().parse_args(argv)
    assert e.value.code == 2
    assert capsys.readouterr().err.strip().endswith(f"mypt train: error: {message}")
