"""Hostile training configs (mypt's TOML and MyPT's JSON) and flags, read by `engine.config.load_config`
and by `mypt train` up to the point of building the job. Each is refused naming the file, the line
and the key, before anything is allocated or written; training never starts."""

from __future__ import annotations

import json

import pytest
from conftest import assert_clean_failure, untouched

DEEP_TOML = "[" * 100_000 + "]" * 100_000
DEEP_JSON = "[" * 100_000 + "]" * 100_000
# (id, file name, text, what the error names)
CONFIGS = [
    ("toml-no-value", "c.toml", "n_layer = 2\nbatch_size =\n", ["c.toml:2", "invalid TOML"]),
    ("toml-unclosed-string", "c.toml", 'name = "demo\n', ["c.toml:1", "invalid TOML"]),
    ("toml-duplicate-key", "c.toml", "n_layer = 2\nn_layer = 3\n", ["c.toml:2", "invalid TOML"]),
    ("toml-nul-byte", "c.toml", "n_layer = 2\x00\n", ["c.toml:1", "invalid TOML"]),
    ("toml-deep", "c.toml", "# deep\nn_layer = " + DEEP_TOML, ["c.toml:2", "nested too deeply"]),
    ("toml-deep-inline-tables", "c.toml", "\n\nseed = " + "{a = " * 1000 + "1" + "}" * 1000,
     ["c.toml:3", "nested too deeply"]),
    ("toml-table", "c.toml", "[model]\nn_layer = 2\n", ["c.toml:1", "[model] is a table"]),
    ("toml-inline-table-value", "c.toml", "dropout = {a = 1}\n", ["c.toml:1", "[dropout] is a table"]),
    ("toml-string-for-int", "c.toml", 'max_iters = 10\nn_layer = "2"\n', ["c.toml:2", "n_layer must be an integer",
                                                                         '"2" (a string)']),
    ("toml-bool-for-int", "c.toml", "batch_size = true\n", ["c.toml:1", "batch_size must be", "(a boolean)"]),
    ("toml-list-for-float", "c.toml", "learning_rate = [1]\n", ["c.toml:1", "learning_rate must be", "(a list)"]),
    ("toml-date-for-int", "c.toml", "seed = 1979-05-27\n", ["c.toml:1", "seed must be", "1979-05-27"]),
    ("toml-int-for-choice", "c.toml", "device = 0\n", ["c.toml:1", "device must be one of"]),
    ("toml-fraction-for-int", "c.toml", "n_head = 2.5\n", ["c.toml:1", "n_head must be an integer"]),
    ("toml-dropout-one", "c.toml", "dropout = 1.0\n", ["c.toml:1", "dropout must be a number in [0, 1)"]),
    ("toml-lr-zero", "c.toml", "learning_rate = 0\n", ["c.toml:1", "learning_rate must be a number > 0"]),
    ("toml-lr-nan", "c.toml", "learning_rate = nan\n", ["c.toml:1", "got nan"]),
    ("toml-lr-inf", "c.toml", "learning_rate = inf\n", ["c.toml:1", "got inf"]),
    ("toml-batch-zero", "c.toml", "batch_size = 0\n", ["c.toml:1", "batch_size must be an integer >= 1"]),
    ("toml-seed-negative", "c.toml", "seed = -1\n", ["c.toml:1", "seed must be an integer from 0 to 4294967295"]),
    ("toml-seed-2-32", "c.toml", "seed = 4294967296\n", ["c.toml:1", "seed must be"]),
    ("toml-block-one", "c.toml", "block_size = 1\n", ["c.toml:1", "block_size must be an integer >= 2"]),
    ("toml-warmup-past-max", "c.toml", "max_iters = 10\nwarmup_iters = 20\n", ["warmup_iters = 20 (", "c.toml:2)",
                                                                            "max_iters = 10 ("]),
    ("toml-heads-do-not-divide", "c.toml", "n_embd = 100\nn_head = 3\n", ["n_embd = 100 (", "c.toml:1)",
                                                                         "n_head = 3 ("]),
    ("toml-huge-n-layer", "c.toml", "n_layer = 1000000\n", ["c.toml:1", "n_layer must be at most 1024"]),
    ("toml-huge-n-embd", "c.toml", "n_head = 1\nn_embd = 1000000000\n", ["c.toml:2", "n_embd must be at most 65536"]),
    ("toml-huge-n-head", "c.toml", "n_head = 100000\n", ["c.toml:1", "n_head must be at most 1024"]),
    ("toml-huge-block-size", "c.toml", "block_size = 1000000000000\n", ["c.toml:1", "block_size must be"]),
    ("toml-huge-vocab", "c.toml", "vocab_size = 1099511627776\n", ["c.toml:1", "vocab_size must be"]),
    ("toml-huge-batch", "c.toml", "batch_size = 1000000000\n", ["c.toml:1", "batch_size must be"]),
    ("toml-int-past-64-bits", "c.toml", "n_layer = 99999999999999999999999999\n", ["c.toml:1", "n_layer must be"]),
    ("toml-too-large-together", "c.toml", "n_layer = 1024\nn_embd = 65536\nn_head = 64\n",
     ["n_layer = 1024 (", "n_embd = 65536 (", "c.toml:2)", "parameters, more than mypt can train"]),
    ("toml-unknown-key", "c.toml", "n_layers = 2\n", ["c.toml:1", "unknown key 'n_layers'", "did you mean 'n_layer'"]),
    ("toml-unknown-huge-key", "c.toml", "k" * 100_000 + " = 1\n", ["c.toml:1", "unknown key 'kkk"]),
    ("toml-huge-string-value", "c.toml", 'device = "' + "x" * 100_000 + '"\n', ["c.toml:1", "device must be one of"]),
    ("toml-myPT-spelling", "c.toml", "use_amp = true\n", ["c.toml:1", "precision"]),
    ("toml-not-utf8", "c.toml", b"n_layer = 2\nname = \"\xff\"\n", ["c.toml:2", "not UTF-8 text (at byte offset 20)"]),
    ("json-invalid", "c.json", '{"n_layer": 2,\n "batch_size": }', ["c.json:2:16", "invalid JSON"]),
    ("json-array", "c.json", "[1, 2]", ["c.json", "must be an object"]),
    ("json-deep", "c.json", '{\n"n_layer": ' + DEEP_JSON + "}", ["c.json:2", "nested more than 64 deep"]),
    ("json-number-5000-digits", "c.json", '{"n_layer": ' + "9" * 5000 + "}", ["c.json:1:13", "too many digits"]),
    ("json-number-infinite", "c.json", '{"n_layer": 1e400}', ["c.json:1", "n_layer must be an integer", "inf"]),
    ("json-nan", "c.json", '{"learning_rate": NaN}', ["c.json:1", "learning_rate must be", "nan"]),
    ("json-string-for-int", "c.json", '{"comment": "x",\n "max_iters": "5000"}', ["c.json:2", "max_iters must be"]),
    ("json-object-for-float", "c.json", '{"dropout": {"p": 0.1}}', ["c.json:1", "dropout must be", "(a table)"]),
    ("json-lone-surrogate", "c.json", '{"name": "a\\ud800"}', ["c.json:1", "not valid Unicode"]),
    ("json-eval-set-not-a-path", "c.json", '{"eval_sets": {"a": 5}}', ["c.json:1", "eval_sets key a must be"]),
    ("json-amp-dtype-list", "c.json", '{"use_amp": true, "amp_dtype": ["bf16"]}', ["c.json:1", "amp_dtype must be"]),
    ("json-both-spellings", "c.json", '{"grad_accum_steps": 2, "gradient_accumulation_steps": 2}',
     ["c.json:1", "not both"]),
    ("json-huge-n-layer", "c.json", '{"n_layer": 4000000000}', ["c.json:1", "n_layer must be"]),
    ("json-with-bom", "c.json", '\ufeff{"n_layer": "2"}', ["c.json:1", "n_layer must be"]),
    ("toml-with-bom", "c.toml", '\ufeffn_layer = "2"\n', ["c.toml:1", "n_layer must be"]),
    ("wrong-suffix", "c.yaml", "n_layer: 2\n", ["c.yaml", "must end in .toml"]),
]
IDS = [c[0] for c in CONFIGS]


def write(tmp_path, name: str, text: str | bytes):
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


@pytest.fixture
def no_training(monkeypatch):
    """Training must never start in these cases: if it would, the test fails instead of allocating."""
    import engine.train.loop

    def refuse(*args, **kwargs):
        raise AssertionError("a hostile config reached run_training")

    monkeypatch.setattr(engine.train.loop, "run_training", refuse)


@pytest.mark.parametrize("case_id, name, text, names", CONFIGS, ids=IDS)
def test_load_config_names_file_line_and_key(tmp_path, case_id, name, text, names):
    from engine.config import ConfigError, load_config

    path = write(tmp_path, name, text)
    with untouched(path), pytest.raises(ConfigError) as e:
        load_config(path)
    message = str(e.value)
    assert len(message) < 600, "a message quotes the file at length"
    for n in names:
        assert n in message


@pytest.mark.parametrize("case_id, name, text, names", CONFIGS, ids=IDS)
def test_mypt_train_refuses_before_building_anything(tmp_path, mypt, no_training, case_id, name, text, names):
    path = write(tmp_path, name, text)
    with untouched(path, tmp_path / "run"):
        r = mypt("train", "--config", path, "--dataset", tmp_path / "ds", "--output", tmp_path / "run", "--no-ui")
    assert_clean_failure(r, path.name, names[-1])


FLAGS = [
    ("flag-huge-n-layer", ["--n_layer", "100000000"], ["--n_layer", "at most 1024"]),
    ("flag-n-embd-1e12", ["--n_embd", "1e12"], ["--n_embd"]),
    ("flag-lr-nan", ["--learning_rate", "nan"], ["--learning_rate", "'nan'"]),
    ("flag-max-iters-inf", ["--max_iters", "1e400"], ["--max_iters"]),
    ("flag-batch-text", ["--batch_size", "ten"], ["--batch_size", "'ten'"]),
    ("flag-device-unknown", ["--device", "tpu"], ["--device"]),
]


@pytest.mark.parametrize("case_id, flags, names", FLAGS, ids=[c[0] for c in FLAGS])
def test_flags_are_checked_like_the_file(tmp_path, mypt, no_training, case_id, flags, names):
    path = write(tmp_path, "c.toml", "n_layer = 2\nn_embd = 32\nn_head = 2\n")
    with untouched(tmp_path / "run"):
        r = mypt("train", "--config", path, "--dataset", tmp_path / "ds", "--output", tmp_path / "run", "--no-ui",
                 *flags)
    assert_clean_failure(r, *names, prefix="mypt train: error:")  # argparse's own line, after its usage


def test_a_model_too_large_for_this_machine_is_refused_before_it_is_allocated(tmp_path, mypt):
    """Within every bound, but GPT-3's size: the trainer's memory check refuses it before the model
    is allocated or the run folder made."""
    from helpers_data import prepared, varied

    prepared(tmp_path, varied(8), name="ds", tokenization="char", val_split=0.25, seed=1)
    path = write(tmp_path, "c.toml", "n_layer = 96\nn_embd = 12288\nn_head = 96\ndevice = \"cpu\"\n")
    with untouched(tmp_path / "run"):
        r = mypt("train", "--config", path, "--dataset", tmp_path / "ds", "--output", tmp_path / "run", "--no-ui")
    assert_clean_failure(r, "n_layer 96", "n_embd 12288", "free on cpu")


def test_a_json_config_of_every_field_type_wrong_lists_every_key(tmp_path):
    """One file, every key of the wrong type: one line per key, each naming its line."""
    from engine.config import FIELDS, ConfigError, load_config

    wrong = {name: ([1] if f.kind in ("str", "choice") else "x") for name, f in FIELDS.items()}
    path = write(tmp_path, "c.json", json.dumps(wrong, indent=0))
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert len(e.value.problems) == len(FIELDS)
    for problem, name in zip(e.value.problems, FIELDS):
        assert problem.startswith("c.json:") or problem.startswith(str(path) + ":"), problem
        assert f" {name} must be" in problem
