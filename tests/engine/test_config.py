"""Training configs: the shipped files, MyPT JSON, every error message, flags, editing TOML."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from engine import layout
from engine.config import (
    ARCHITECTURE_KEYS,
    FIELDS,
    GROUPS,
    ConfigError,
    TrainConfig,
    adopt_architecture,
    apply_overrides,
    architecture_conflicts,
    edit_toml,
    field_error,
    format_value,
    load_config,
    load_config_text,
    parse_field,
    save_config_preserving,
    to_toml,
    validate_values,
)

ROOT = Path(__file__).resolve().parents[2]
PHASE3A = ROOT / "configs/sft1/750M_1024_chat_sft_phase3a.toml"
PHASE3B = ROOT / "configs/sft1/750M_1024_tool_sft_phase3b.toml"
SHIPPED = sorted((ROOT / "configs").glob("**/*.toml"))

GUIDE_PHASE3A = {
    "n_layer": 32, "n_embd": 1280, "n_head": 20, "block_size": 1024, "dropout": 0.15,
    "learning_rate": 5e-5, "batch_size": 10, "max_iters": 5000, "warmup_iters": 150,
    "eval_interval": 500, "save_every": 1000, "weight_decay": 0.05, "use_loss_mask": True,
    "batch_sampling_mode": "epoch", "epoch_seed": 3301, "epoch_shuffle": True,
    "epoch_drop_last": True, "episode_min_tokens": 10, "vocab_size": 50304, "bias": False,
    "precision": "bf16",
}

# Written the way MyPT writes configs/sft1/750M_1024_chat_sft_phase3a.json.
MYPT_JSON = """{
  "name": "GPT-750M-1024-Chat-SFT-Phase3a",
  "description": "Phase 3a: Fine-tune 750M reasoning model on gold conversation episodes.",

  "comment_architecture": "Keep same architecture as pretrained 750M reasoning model",
  "batch_size": 10,
  "block_size": 1024,
  "vocab_size": 50304,
  "n_embd": 1280,
  "n_head": 20,
  "n_layer": 32,
  "dropout": 0.15,
  "bias": false,

  "comment_training": "SFT-specific training parameters",
  "learning_rate": 5e-5,
  "max_iters": 5000,
  "eval_interval": 500,
  "save_every": 1000,
  "warmup_iters": 0.03,
  "use_amp": true,
  "amp_dtype": "bf16",

  "use_loss_mask": true,
  "batch_sampling_mode": "epoch",
  "pad_token_id": null,
  "episode_min_tokens": 10,
  "epoch_seed": 3301,
  "epoch_shuffle": true,
  "epoch_drop_last": true,
  "weight_decay": 0.05,
  "comment_note": "Use with: python train.py --model 750M_gold_2.22 --config ..."
}
"""


def error_of(text: str, source: str = "c.toml", fmt: str = "toml") -> str:
    with pytest.raises(ConfigError) as e:
        load_config_text(text, source, fmt)
    return str(e.value)


# -- the shipped configs ----------------------------------------------------------------------

@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_shipped_config_loads_and_round_trips_through_to_toml(path):
    cfg = load_config(path)
    assert load_config_text(to_toml(cfg), "run/config.toml") == cfg


def test_shipped_configs_are_the_demos_and_the_guides_two():
    assert [str(p.relative_to(ROOT)) for p in SHIPPED] == [
        "configs/demo/base.toml", "configs/demo/chat.toml", "configs/demo/continuation.toml",
        "configs/demo/pretrain.toml", "configs/demo/tool.toml",
        "configs/sft1/750M_1024_chat_sft_phase3a.toml", "configs/sft1/750M_1024_tool_sft_phase3b.toml"]


def test_phase3a_has_the_guides_exact_values():
    cfg = load_config(PHASE3A)
    assert {k: getattr(cfg, k) for k in GUIDE_PHASE3A} == GUIDE_PHASE3A
    assert set(GUIDE_PHASE3A) <= cfg.explicit
    assert cfg.batching == "pad" and cfg.gradient_accumulation_steps == 1


def test_the_guides_json_path_loads_the_shipped_toml():
    cfg = load_config(ROOT / "configs/sft1/750M_1024_chat_sft_phase3a.json")
    assert cfg == load_config(PHASE3A)
    assert cfg.origins["n_layer"].endswith("750M_1024_chat_sft_phase3a.toml:16")


def test_phase3b_differs_from_3a_only_where_its_header_says():
    a, b = load_config(PHASE3A).to_dict(), load_config(PHASE3B).to_dict()
    assert {k: (a[k], b[k]) for k in a if a[k] != b[k]} == {
        "name": ("GPT-750M-1024-Chat-SFT-Phase3a", "GPT-750M-1024-Tool-SFT-Phase3b"),
        "description": (a["description"], b["description"]),
        "learning_rate": (5e-5, 3e-5),
        "epoch_seed": (3301, 3302),
        "overlong": ("truncate", "drop"),
    }


def test_demo_configs_are_tiny_packed_and_share_an_architecture():
    chat, tool = load_config(ROOT / "configs/demo/chat.toml"), load_config(ROOT / "configs/demo/tool.toml")
    assert (chat.n_layer, chat.n_embd, chat.n_head, chat.block_size) == (4, 256, 4, 256)
    assert chat.batching == tool.batching == "pack"
    assert chat.architecture() == tool.architecture()
    assert chat.vocab_size is None  # the tokenizer's
    assert chat.warmup_iters == 15 and chat.warmup_fraction == 0.05
    assert architecture_conflicts(tool, chat.architecture()) == []


# -- MyPT JSON --------------------------------------------------------------------------------

def test_mypt_json_loads_with_comments_ignored_and_amp_mapped(tmp_path):
    path = tmp_path / "750M_1024_chat_sft_phase3a.json"
    path.write_text(MYPT_JSON)
    cfg = load_config(path)
    toml_cfg = load_config(PHASE3A)
    assert {k: getattr(cfg, k) for k in GUIDE_PHASE3A} == GUIDE_PHASE3A
    assert cfg.warmup_iters == 150 and cfg.warmup_fraction == 0.03
    assert cfg.precision == "bf16"
    assert cfg.origins["precision"] == f"{path}:21 (use_amp/amp_dtype)"
    assert cfg.pad_token_id is None and "pad_token_id" in cfg.explicit
    assert cfg.to_dict() == {**toml_cfg.to_dict(), "description": cfg.description}
    assert not any(k.startswith("comment") for k in cfg.explicit)


@pytest.mark.parametrize("amp, precision", [
    ({"use_amp": False, "amp_dtype": "bf16"}, "fp32"),
    ({"use_amp": True}, "auto"),
    ({"use_amp": True, "amp_dtype": "float16"}, "fp16"),
    ({"amp_dtype": "bfloat16"}, "bf16"),
])
def test_mypt_use_amp_and_amp_dtype_map_onto_precision(amp, precision):
    assert load_config_text(json.dumps(amp), "c.json", "json").precision == precision


def test_mypt_json_renamed_keys_and_contradictions():
    cfg = load_config_text('{"grad_accum_steps": 3}', "c.json", "json")
    assert cfg.gradient_accumulation_steps == 3 and "gradient_accumulation_steps" in cfg.explicit
    assert error_of('{\n  "log_fil": "x.jsonl",\n  "use_amp": true,\n  "precision": "bf16"\n}',
                    "c.json", "json") == (
        "c.json:2: unknown key 'log_fil' (did you mean 'log_file'?)\n"
        "c.json:3: give precision or MyPT's use_amp/amp_dtype, not both")
    assert error_of('{"amp_dtype": "int8"}', "c.json", "json") == (
        'c.json:1: amp_dtype must be one of "bf16", "fp16", "fp32", got "int8"')
    assert error_of('[1, 2]', "c.json", "json") == "c.json: a JSON config must be an object {...} of keys"


def test_comment_keys_are_comments_only_in_json():
    assert error_of('comment_x = "hello"\n') == "c.toml:1: unknown key 'comment_x'"


# -- errors -----------------------------------------------------------------------------------

@pytest.mark.parametrize("text, message", [
    ('batch_size = 10\nlearning_rat = 1e-4\n',
     "c.toml:2: unknown key 'learning_rat' (did you mean 'learning_rate'?)"),
    ('Max_Iters = 10\n', "c.toml:1: unknown key 'Max_Iters' (did you mean 'max_iters'?)"),
    ('frobnicate = 1\n', "c.toml:1: unknown key 'frobnicate'"),
    ('use_amp = true\n',
     "c.toml:1: unknown key 'use_amp' (MyPT's use_amp/amp_dtype: write precision = \"bf16\", \"fp16\" or \"fp32\")"),
    ('batch_size = "10"\n', 'c.toml:1: batch_size must be an integer >= 1, got "10" (a string)'),
    ('max_iters = 5.5\n', "c.toml:1: max_iters must be an integer >= 1, got 5.5 (a number)"),
    ('compile = 1\n', 'c.toml:1: compile must be one of "auto", "true", "false", got 1 (an integer)'),
    ('dropout = 1.5\n', "c.toml:1: dropout must be a number in [0, 1), got 1.5"),
    ('learning_rate = -5e-5\n', "c.toml:1: learning_rate must be a number > 0, got -5e-05"),
    ('eval_interval = 0\n', "c.toml:1: eval_interval must be an integer >= 1, got 0"),
    ('epoch_seed = -1\n', "c.toml:1: epoch_seed must be an integer from 0 to 4294967295, got -1"),
    ('warmup_iters = 1.5\n',
     "c.toml:1: warmup_iters must be an integer >= 0 (steps) or a fraction in [0, 1) of max_iters, got 1.5"),
    ('batching = "packed"\n',
     'c.toml:1: batching must be one of "pad", "pack", got "packed" (did you mean "pack"?)'),
    ('precision = "int8"\n', 'c.toml:1: precision must be one of "auto", "fp32", "bf16", "fp16", got "int8"'),
    ('n_embd = 1000\nn_head = 16\n',
     "n_embd = 1000 (c.toml:1) must be divisible by n_head = 16 (c.toml:2)"),
    ('max_iters = 100\nwarmup_iters = 150\n',
     "warmup_iters = 150 (c.toml:2) exceeds max_iters = 100 (c.toml:1): lower warmup_iters, or give it "
     "as a fraction of max_iters (e.g. 0.03)"),
    ('learning_rate = 1e-4\nmin_lr = 1e-3\n',
     "min_lr = 0.001 (c.toml:2) exceeds learning_rate = 0.0001 (c.toml:1): the cosine decay ends at min_lr"),
    ('n_embd = 60\nn_head = 4\npos_encoding = "rope"\n',
     'pos_encoding "rope" needs an even head size, but n_embd / n_head = 15'),
    ('vocab_size = 100\npad_token_id = 100\n',
     "pad_token_id = 100 (c.toml:2) must be below vocab_size = 100 (c.toml:1)"),
    ('name = "x"\n[training]\nlearning_rate = 1e-4\n',
     "c.toml:2: [training] is a table, but mypt configs are flat: write the keys at top level "
     "(group headings are comments)"),
    ('batch_size = 10\nlearning_rate = \n', "c.toml:2:17: invalid TOML: Invalid value"),
    ('dropout = 2.0\nbatching = "x"\n',
     'c.toml:1: dropout must be a number in [0, 1), got 2.0\nc.toml:2: batching must be one of "pad", "pack", got "x"'),
])
def test_config_errors_name_file_line_key_and_allowed_values(text, message):
    assert error_of(text) == message


def test_json_errors_name_the_line():
    assert error_of('{\n  "batch_size": 10,\n  "dropout": 1.5\n}', "c.json", "json") == (
        "c.json:3: dropout must be a number in [0, 1), got 1.5")
    assert error_of('{\n  "batch_size": 10,\n}', "c.json", "json") == (
        "c.json:3:1: invalid JSON: Expecting property name enclosed in double quotes")
    assert error_of('{"batch_size": null}', "c.json", "json") == (
        "c.json:1: batch_size must be an integer >= 1, got null")


def test_problems_are_listed_in_the_files_order():
    assert error_of('{\n  "batching": "x",\n  "dropout": 2.0\n}', "c.json", "json") == (
        'c.json:2: batching must be one of "pad", "pack", got "x"\n'
        'c.json:3: dropout must be a number in [0, 1), got 2.0')


def test_file_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"nope\.toml: config file not found$"):
        load_config(tmp_path / "nope.toml")
    (tmp_path / "c.yaml").write_text("a: 1")
    with pytest.raises(ConfigError, match=r"must end in \.toml \(mypt\) or \.json \(MyPT\)"):
        load_config(tmp_path / "c.yaml")


def test_problems_are_listed_by_key_for_a_form():
    with pytest.raises(ConfigError) as e:
        load_config_text("dropout = 2.0\nn_embd = 100\nn_head = 3\n", "c.toml")
    assert sorted(e.value.by_key) == ["dropout"]  # per-key checks first, rules between keys after
    with pytest.raises(ConfigError) as e:
        load_config_text("n_embd = 100\nn_head = 3\n", "c.toml")
    assert sorted(e.value.by_key) == ["n_embd", "n_head"]


def test_a_trainconfig_is_validated_on_construction():
    with pytest.raises(ConfigError, match=r"^n_embd = 100 must be divisible by n_head = 3$"):
        TrainConfig(n_embd=100, n_head=3)
    with pytest.raises(ConfigError, match=r"^batching must be one of"):
        TrainConfig(batching="nope")
    assert TrainConfig(max_iters=1000, warmup_iters=0.1).warmup_iters == 100


# -- warmup, min_lr ---------------------------------------------------------------------------

def test_warmup_fraction_resolves_to_steps_and_follows_max_iters_overrides():
    cfg = load_config_text("max_iters = 5000\nwarmup_iters = 0.03\n", "c.toml")
    assert cfg.warmup_iters == 150 and cfg.warmup_fraction == 0.03
    assert apply_overrides(cfg, {"max_iters": "200"}).warmup_iters == 6
    assert apply_overrides(cfg, {"max_iters": 200, "warmup_iters": 10}).warmup_iters == 10
    steps = load_config_text("max_iters = 5000\nwarmup_iters = 150\n", "c.toml")
    assert steps.warmup_fraction is None and apply_overrides(steps, {"max_iters": 300}).warmup_iters == 150


def test_min_lr_unset_means_a_tenth_of_learning_rate():
    assert load_config_text("learning_rate = 5e-5\n", "c.toml").lr_floor == pytest.approx(5e-6)
    cfg = load_config_text("learning_rate = 5e-5\nmin_lr = 0.0\n", "c.toml")
    assert cfg.min_lr == 0.0 and cfg.lr_floor == 0.0


def test_apply_overrides_errors_name_the_flag_and_where_each_value_came_from():
    cfg = load_config(PHASE3A)
    with pytest.raises(ConfigError) as e:
        apply_overrides(cfg, {"max_iters": "20"})
    assert str(e.value) == (
        f"command line: warmup_iters = 150 ({PHASE3A}:28) exceeds max_iters = 20 (--max_iters): "
        "lower warmup_iters, or give it as a fraction of max_iters (e.g. 0.03)")
    with pytest.raises(ConfigError) as e:
        apply_overrides(cfg, {"batch_size": "0", "learnin_rate": "1e-4"})
    assert str(e.value) == ("command line: --batch_size must be an integer >= 1, got '0'\n"
                            "command line: unknown flag --learnin_rate (did you mean '--learning_rate'?)")
    assert apply_overrides(cfg, {}) is cfg


# -- the Config screen: per-field checks, editing TOML ----------------------------------------

def test_field_error_checks_one_field_as_typed():
    assert field_error("dropout", "0.2") is None
    assert field_error("dropout", "1.5") == "dropout must be a number in [0, 1), got '1.5'"
    assert field_error("n_layer", "abc") == "n_layer must be an integer >= 1, got 'abc'"
    assert field_error("warmup_iters", "0.03") is None
    assert field_error("min_lr", "") is None  # unset
    assert field_error("use_loss_mask", "yes") is None
    assert field_error("batching", "pak") == 'batching must be one of "pad", "pack", got "pak" (did you mean "pack"?)'
    assert field_error("nlayer", "4") == "unknown key 'nlayer' (did you mean 'n_layer'?)"
    assert parse_field("use_loss_mask", "off") is False and parse_field("min_lr", "none") is None
    assert format_value("use_loss_mask", True) == "true" and format_value("min_lr", None) == ""


def test_validate_values_checks_a_whole_form():
    cfg = validate_values({"n_layer": "4", "n_embd": "256", "n_head": "4", "batching": "pack"})
    assert (cfg.n_layer, cfg.batching) == (4, "pack") and cfg.explicit == {"n_layer", "n_embd", "n_head", "batching"}
    with pytest.raises(ConfigError) as e:
        validate_values({"n_embd": "100", "n_head": "3"})
    assert str(e.value) == "n_embd = 100 (form) must be divisible by n_head = 3 (form)"
    assert set(e.value.by_key) == {"n_embd", "n_head"}


USER_TOML = """\
# My experiment: smaller model, longer run
name = "exp1"   # shows in the app

# --- model ---
n_layer = 4   # tiny
n_embd = 256
n_head = 4

# --- training ---
learning_rate = 5e-5  # was 1e-4
max_iters = 300
# comment at the end of training

# sampling
batching = "pack"
"""


def test_edit_toml_keeps_comments_order_and_untouched_spelling():
    out = edit_toml(USER_TOML, {"learning_rate": 1e-4, "max_iters": 300, "n_layer": 6,
                                "dropout": 0.1, "min_lr": 1e-5, "name": None, "use_loss_mask": False})
    assert out == """\
# My experiment: smaller model, longer run

# --- model ---
n_layer = 6   # tiny
n_embd = 256
n_head = 4
dropout = 0.1  # Dropout probability while training

# --- training ---
learning_rate = 0.0001  # was 1e-4
max_iters = 300
min_lr = 1e-05  # Learning rate at the end of the cosine decay
# comment at the end of training

# sampling
batching = "pack"

# --- Loss masking (SFT-specific) ---
use_loss_mask = false  # Loss only on assistant tokens (false: on every token)
"""
    assert edit_toml(USER_TOML, {"learning_rate": 5e-5}) == USER_TOML


def test_save_config_preserving_edits_in_place_and_saves_as(tmp_path):
    path = tmp_path / "exp.toml"
    path.write_text(USER_TOML)
    cfg = save_config_preserving(path, {"max_iters": "400"})
    assert cfg.max_iters == 400
    assert path.read_text() == USER_TOML.replace("max_iters = 300", "max_iters = 400")
    copy = tmp_path / "sub" / "exp2.toml"
    cfg2 = save_config_preserving(path, {"epoch_seed": 7}, dest=copy)
    assert cfg2.epoch_seed == 7 and load_config(path).epoch_seed == 3301
    # batching is an episode-sampling key: epoch_seed goes after it, at the end of its group
    assert copy.read_text() == path.read_text() + "epoch_seed = 7  # Seed of the episode order\n"
    assert not list(tmp_path.glob("**/.mypt-tmp-*"))


def test_save_config_preserving_refuses_invalid_results_and_writes_nothing(tmp_path):
    path = tmp_path / "exp.toml"
    path.write_text(USER_TOML)
    with pytest.raises(ConfigError) as e:
        save_config_preserving(path, {"n_head": "3"})
    assert str(e.value) == f"n_embd = 256 ({path}:6) must be divisible by n_head = 3 ({path}:7)"
    with pytest.raises(ConfigError, match=r"exp\.toml: dropout must be a number in \[0, 1\), got '7'"):
        save_config_preserving(path, {"dropout": "7"})
    with pytest.raises(ConfigError, match=r"choose a name ending in \.toml"):
        save_config_preserving(path, {}, dest=tmp_path / "exp.json")
    assert path.read_text() == USER_TOML


def test_save_config_preserving_starts_new_files_and_converts_mypt_json(tmp_path):
    new = tmp_path / "new.toml"
    cfg = save_config_preserving(None, {"n_layer": 2, "n_embd": 64, "n_head": 2}, dest=new)
    assert cfg.explicit == {"n_layer", "n_embd", "n_head"}
    assert new.read_text() == ("# mypt training config\n\n# --- Architecture (unchanged from the base model) ---\n"
                               "n_layer = 2  # Transformer blocks\nn_embd = 64  # Embedding width (a multiple of n_head)\n"
                               "n_head = 2  # Attention heads per block\n")
    src = tmp_path / "mypt.json"
    src.write_text(MYPT_JSON)
    out = tmp_path / "mypt.toml"
    cfg = save_config_preserving(src, {"max_iters": 3000}, dest=out)
    assert cfg.max_iters == 3000 and cfg.precision == "bf16" and cfg.warmup_iters == 90  # 0.03 of 3000
    assert 'precision = "bf16"' in out.read_text() and "\nwarmup_iters = 0.03  #" in out.read_text()


# -- architecture against a checkpoint ---------------------------------------------------------

CKPT = {"n_layer": 32, "n_head": 20, "n_embd": 1280, "block_size": 1024, "vocab_size": 50304,
        "dropout": 0.1, "bias": False, "pos_encoding": "learned", "mlp_type": "gelu",
        "norm_type": "layernorm", "tie_weights": True, "rope_theta": 10000.0, "rope_scale": 1.0,
        "lm_head_bias": False}


def test_architecture_conflicts_list_explicit_contradictions_only():
    cfg = load_config_text('n_layer = 12\nn_embd = 1280\nn_head = 20\nbias = true\ndropout = 0.2\n', "c.toml")
    assert architecture_conflicts(cfg, CKPT) == [
        "n_layer: the config says 12 (c.toml:1), the checkpoint has 32",
        "bias: the config says true (c.toml:4), the checkpoint has false",
    ]
    # tie_weights differs from the default, but the config did not set it: no conflict
    assert architecture_conflicts(load_config(PHASE3A), CKPT) == []
    flagged = apply_overrides(load_config(PHASE3A), {"n_head": "16"})
    assert architecture_conflicts(flagged, CKPT) == ["n_head: the config says 16 (--n_head), the checkpoint has 20"]


def test_adopt_architecture_takes_the_checkpoints_and_keeps_training_keys():
    cfg = load_config_text("learning_rate = 1e-4\ndropout = 0.2\n", "c.toml")
    adopted = adopt_architecture(cfg, CKPT)
    assert adopted.tie_weights is True and adopted.vocab_size == 50304 and adopted.dropout == 0.2
    assert adopted.learning_rate == 1e-4 and adopted.origins["tie_weights"] == "checkpoint"
    with pytest.raises(ConfigError, match=r"n_layer: the config says 12 \(c\.toml:1\), the checkpoint has 32"):
        adopt_architecture(load_config_text("n_layer = 12\n", "c.toml"), CKPT)


# -- the table itself ---------------------------------------------------------------------------

def test_fields_cover_every_key_with_group_and_the_guides_reasons():
    assert list(FIELDS) == [f.name for f in dataclasses.fields(TrainConfig) if not f.name.startswith("_")
                            and f.name != "explicit"]
    assert {f.group for f in FIELDS.values()} == {g for g, _ in GROUPS}
    assert all(FIELDS[k].guide for k in (
        "n_layer", "n_embd", "n_head", "block_size", "dropout", "learning_rate", "batch_size",
        "max_iters", "warmup_iters", "eval_interval", "save_every", "weight_decay", "use_loss_mask",
        "batch_sampling_mode", "epoch_seed", "epoch_shuffle", "epoch_drop_last", "episode_min_tokens"))
    assert FIELDS["learning_rate"].note == (
        "Lower LR for fine-tuning - prevents catastrophic forgetting of pretrained knowledge")
    assert FIELDS["grad_clip"].note == "Clip the gradient norm to this (0 = off)"
    assert ARCHITECTURE_KEYS == ("n_layer", "n_embd", "n_head", "block_size", "vocab_size", "bias",
                                 "pos_encoding", "mlp_type", "norm_type", "tie_weights",
                                 "rope_theta", "rope_scale")
    assert not FIELDS["dropout"].architecture and FIELDS["dropout"].group == "architecture"
    assert {k: v.default for k, v in FIELDS.items()} == TrainConfig().to_dict()


def test_each_key_is_declared_once_trainconfig_is_made_from_the_table():
    assert {f.name: (f.type, f.default) for f in dataclasses.fields(TrainConfig) if f.name in FIELDS} == {
        k: (v.type, v.default) for k, v in FIELDS.items()}
    assert FIELDS["vocab_size"].type == (int | None) and FIELDS["warmup_iters"].type is int
    # a default changed in the table is TrainConfig's default (in a fresh interpreter: it rebuilds the class)
    code = ("import dataclasses, importlib\n"
            "import engine.config.schema as schema, engine.config.train_config as train_config\n"
            "schema.FIELDS['n_layer'] = dataclasses.replace(schema.FIELDS['n_layer'], default=7)\n"
            "print(importlib.reload(train_config).TrainConfig().n_layer)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "7"


def test_each_value_is_checked_once_when_a_file_loads(monkeypatch):
    from engine.config import checks
    seen: list[str] = []
    check_value = checks.check_value
    monkeypatch.setattr(checks, "check_value", lambda f, value: seen.append(f.name) or check_value(f, value))
    cfg = load_config_text("n_layer = 4\nn_embd = 256\nn_head = 4\nwarmup_iters = 0.1\n", "c.toml")
    assert sorted(seen) == sorted(FIELDS)
    assert cfg.warmup_iters == 500 and cfg.warmup_fraction == 0.1


def test_choice_lists_are_engine_layouts():
    assert [FIELDS[k].choices for k in ("pos_encoding", "mlp_type", "norm_type", "device", "precision")] == [
        layout.POS_ENCODINGS, layout.MLP_TYPES, layout.NORM_TYPES, layout.DEVICES, layout.PRECISIONS]


def test_to_toml_writes_unset_keys_as_comments_and_the_warmup_fraction():
    cfg = load_config_text("max_iters = 200\nwarmup_iters = 0.05\n", "c.toml")
    text = to_toml(cfg)
    assert "warmup_iters = 10  # 0.05 x max_iters." in text
    assert "# min_lr is unset: learning_rate / 10." in text
    assert "\n# --- Training parameters ---\n" in text
    assert load_config_text(text, "run.toml") == cfg
