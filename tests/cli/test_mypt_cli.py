"""A MyPT user's commands: its current phase configs train (scaled down by flags), its flag spellings,
`mypt prepare`'s MyPT flags, and `mypt generate --mode / --raw / --show_info`."""

from __future__ import annotations

import json

import pytest
import torch

from engine.checkpoint import save_checkpoint
from engine.dataset import open_dataset
from engine.events import RunStart, read_events
from engine.generate import next_token, preset
from engine.model import GPT, GPTConfig
from engine.tokenizer import gpt2
from helpers_data import chat, write_jsonl
from mypt_tui.cli.main import main
from mypt_tui.flags import parse_train_flags

EVAL_KEYS = ("eval_sets", "eval_seed", "gold_selection", "token_accuracy_saturation")  # issue 12's

ARCH = {"vocab_size": 50304, "n_embd": 1280, "n_head": 20, "n_layer": 32, "bias": False, "tie_weights": True,
        "pos_encoding": "rope", "mlp_type": "swiglu", "norm_type": "rmsnorm", "rope_theta": 10000.0,
        "rope_scale": 4.0}
SAMPLING = {"batch_sampling_mode": "epoch", "pad_token_id": None, "episode_min_tokens": 10, "epoch_shuffle": True,
            "epoch_drop_last": True, "weight_decay": 0.05, "use_loss_mask": True}
GATE = {"strategy": "external_gate", "apply_loss_guards": True, "guards": {"overfit_ratio": 6.0},
        "external_gate": {"enabled": True, "script": "scripts/eval/gate.py", "metric_path": "rate"}}

# Configs with the keys of MyPT's configs/sft/ phases 1-6 (and phase 1b), written for these tests.
CONFIGS = {
    "format_lock": {"name": "Phase 1: Format Lock", "description": "Tags and stopping.", "batch_size": 16,
                    "block_size": 512, **ARCH, "dropout": 0.1, "learning_rate": 7e-5, "max_iters": 2000,
                    "eval_interval": 100, "warmup_iters": 100, "use_amp": True, "amp_dtype": "bf16", **SAMPLING,
                    "epoch_seed": 4501, "eval_sets": None, "eval_seed": 1337, "log_file": "logs/train/p1.jsonl"},
    "chat_sft": {"name": "Phase 3: Chat SFT", "description": "Chat.", "batch_size": 4, "block_size": 4096, **ARCH,
                 "dropout": 0.12, "use_checkpoint": True, "learning_rate": 3e-5, "max_iters": 763,
                 "eval_interval": 50, "save_every": 50, "warmup_iters": 100, "use_amp": True, "amp_dtype": "bf16",
                 "grad_accum_steps": 3, **SAMPLING, "epoch_seed": 3301, "eval_sets": {"p1": "data/p1"},
                 "eval_seed": 1337, "log_file": "logs/train/p3.jsonl"},
    "remix_gold": {"name": "Phase 2 Remix", "description": "", "batch_size": 4, "block_size": 4096, **ARCH,
                   "dropout": 0.08, "use_checkpoint": True, "learning_rate": 3e-5, "max_iters": 194,
                   "eval_interval": 10, "warmup_iters": 19, "use_amp": True, "amp_dtype": "bf16",
                   "grad_accum_steps": 4, **SAMPLING, "epoch_seed": 2907, "eval_seed": 1337,
                   "log_file": "logs/train/p2.jsonl", "gold_selection": GATE},
    "restart_saturation": {"name": "Phase 3.1", "description": "Restart.", "batch_size": 4, "block_size": 4096,
                           **ARCH, "dropout": 0.12, "use_checkpoint": True, "learning_rate": 1.5e-5,
                           "max_iters": 450, "eval_interval": 50, "save_every": 50, "warmup_iters": 60,
                           "use_amp": True, "amp_dtype": "bf16", "grad_accum_steps": 3, **SAMPLING,
                           "epoch_seed": 3301, "eval_seed": 1337, "log_file": "logs/train/p31.jsonl",
                           "token_accuracy_saturation": {"enabled": True, "window": 4}},
    "context_extension": {"name": "Phase 1b", "description": "PI.", "batch_size": 4, "block_size": 4096,
                          "vocab_size": 50304, "n_embd": 1280, "n_head": 20, "n_layer": 32, "dropout": 0.05,
                          "bias": False, "tie_weights": True, "pos_encoding": "rope", "mlp_type": "swiglu",
                          "norm_type": "rmsnorm", "rope_theta": 10000.0, "rope_scale": 4.0,
                          "segment_position_reset": False, "learning_rate": 3e-5, "max_iters": 12000,
                          "eval_interval": 500, "eval_iters": 100, "warmup_iters": 400, "grad_clip": 1.0,
                          "weight_decay": 0.05, "use_amp": True, "amp_dtype": "bf16", "grad_accum_steps": 4,
                          "use_loss_mask": True, "batch_sampling_mode": "epoch", "pad_token_id": 50256,
                          "episode_min_tokens": 64, "epoch_seed": 1729, "epoch_shuffle": True,
                          "epoch_drop_last": True, "eval_seed": 1337, "log_file": "logs/train/p1b.jsonl"},
    "guide_keys": {"name": "Phase 6", "description": "Agentic.", "batch_size": 3, "block_size": 4096, **ARCH,
                   "dropout": 0.08, "use_checkpoint": True, "neftune_alpha": 5.0, "freeze_layers": 1,
                   "freeze_embeddings": False, "save_dtype": "bfloat16", "learning_rate": 1.5e-5, "max_iters": 4000,
                   "eval_interval": 400, "save_every": 1000, "warmup_iters": 120, "use_amp": True,
                   "amp_dtype": "bf16", "grad_accum_steps": 2, **SAMPLING, "epoch_seed": 6601,
                   "log_file": "logs/train/p6.jsonl", "curriculum": {"description": "two phases", "phases": [
                       {"name": "first", "dataset_dir": "DATASET", "until_iter": 1},
                       {"name": "second", "dataset_dir": "DATASET", "until_iter": None}]}},
}
SCALED_DOWN = ["--n_layer", "2", "--n_embd", "32", "--n_head", "2", "--block_size", "128", "--batch_size", "2",
               "--max_iters", "2", "--eval_interval", "2", "--eval_iters", "1", "--save_every", "2",
               "--warmup_iters", "0", "--precision", "fp32", "--device", "cpu"]


def long_episodes(n: int) -> list[dict]:
    words = "the quick brown fox jumps over the lazy dog and runs far away into the green woods".split()
    return [chat(f"e{i:02d}", " ".join(words[i % 5:] * 2), " ".join(words[:8 + i % 7] * 3)) for i in range(n)]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gpt2")
    src = write_jsonl(tmp / "in.jsonl", long_episodes(12))
    assert main(["prepare", "chat", "--input", str(src), "--output_dir", str(tmp / "out"), "--val_split", "0.25"]) == 0
    return tmp / "out"


@pytest.mark.parametrize("name", list(CONFIGS))
def test_myPTs_phase_configs_load_and_train_two_steps_scaled_down(name, dataset, tmp_path, capsys):
    config = {k: v for k, v in CONFIGS[name].items() if k not in EVAL_KEYS}  # the eval keys are issue 12's
    text = json.dumps(config).replace('"DATASET"', json.dumps(str(dataset)))
    (tmp_path / f"{name}.json").write_text(text)
    argv = ["train", "--no-ui", "--config_file", str(tmp_path / f"{name}.json"), "--output_dir", str(tmp_path / "run"),
            "--terminal_log_file", "logs/console.log", *SCALED_DOWN]
    if "curriculum" not in config:
        argv += ["--dataset_dir", str(dataset)]
    assert main(argv) == 0, capsys.readouterr().err
    [start] = [e for e in read_events(tmp_path / "run" / "events.jsonl") if isinstance(e, RunStart)]
    assert start.name == config["name"] and start.config["max_iters"] == 2
    log = [json.loads(line) for line in open(config["log_file"], encoding="utf-8")]
    assert log[0]["event"] == "training_start" and log[-1]["event"] == "training_complete"
    console = open("logs/console.log", encoding="utf-8").read()
    assert f"config: {config['name']}" in console and "Training complete at step 2" in console


def test_myPTs_flag_spellings():
    req = parse_train_flags(["--model_name", "x", "--config_file", "c.json", "--dataset_dir", "data/d",
                             "--output_dir", "out", "--save_dtype", "bfloat16", "--terminal_log_file", "t.log"])
    assert (req.model, req.config, req.dataset, req.output) == ("x", "c.json", "data/d", "out")
    assert req.overrides == {"save_dtype": "bf16", "terminal_log_file": "t.log"}
    req = parse_train_flags(["--init_from_model", "checkpoints/phase1_gold", "--output", "o"])
    assert req.init_from_model == "checkpoints/phase1_gold" and req.model is None
    # MyPT's train.py: --model_name is the run it writes, --init_from_model the weights it starts from
    req = parse_train_flags(["--model_name", "phase2", "--init_from_model", "phase1_gold", "--dataset_dir", "d"])
    assert (req.output, req.model, req.init_from_model) == ("phase2", None, "phase1_gold")


def test_prepare_takes_myPTs_flags(tmp_path, capsys):
    src = write_jsonl(tmp_path / "in.jsonl", long_episodes(4))
    assert main(["prepare", "chat", "--input", str(src), "--output_dir", str(tmp_path / "ev"), "--val_only",
                 "--weighted_mask", "--enable_packing", "--pack_block_size", "4096"]) == 0
    out = capsys.readouterr().out
    assert "Split: val only" in out and "Loss weights: mask_weighted.bin" in out and "rows of 4096 tokens" in out
    ds = open_dataset(tmp_path / "ev")
    assert ds.split("train") is None and ds.split("val").weighted
    assert main(["train", "--no-ui", "--dataset_dir", str(tmp_path / "ev"), "--output", str(tmp_path / "r")]) == 2
    assert "is an eval-only dataset (prepared with --val_only)" in capsys.readouterr().err


# -- generate -------------------------------------------------------------------------------------------------

@pytest.fixture
def checkpoints(tmp_path):
    torch.manual_seed(0)
    m = GPT(GPTConfig(n_layer=1, n_head=2, n_embd=16, block_size=64, vocab_size=50304))
    save_checkpoint(tmp_path / "ck" / "chat", m, tokenizer_state=gpt2().state(), step=5, extra={"run": "r"})
    save_checkpoint(tmp_path / "ck" / "base", m, tokenizer_state=gpt2().state(), step=0,
                    extra={"imported_from": "gpt2"})
    return tmp_path / "ck"


@pytest.fixture
def asked(monkeypatch):
    """What generate was asked: the prompt ids and the sampling settings (the fake stops at once)."""
    import engine.generate

    seen = {}

    def fake(model, ids, sampling, **kw):
        seen.update(ids=list(ids), sampling=sampling)
        yield from kw["stop_ids"]

    monkeypatch.setattr(engine.generate, "generate", fake)
    return seen


def test_generate_wraps_a_plain_prompt_unless_raw_and_a_base_model_continues_it(checkpoints, asked):
    tok = gpt2()
    gen = ["generate", "--checkpoints", str(checkpoints), "--prompt", "Once upon"]
    assert main([*gen, "--model", "chat"]) == 0
    assert asked["ids"][:1] == [tok.tag_id("user")] and asked["ids"][-1] == tok.tag_id("assistant")
    assert main([*gen, "--model", "chat", "--raw"]) == 0
    assert asked["ids"] == tok.encode("Once upon")
    assert main([*gen, "--model", "base"]) == 0  # never fine-tuned: raw by default
    assert asked["ids"] == tok.encode("Once upon")


@pytest.mark.parametrize("mode, temperature", [("basic", 0.8), ("qa", 0.3), ("creative", 1.0), ("factual", 0.3),
                                               ("code", 0.2)])
def test_generate_modes_sample_with_myPTs_settings(checkpoints, asked, mode, temperature):
    assert main(["generate", "--checkpoints", str(checkpoints), "--model", "chat", "--prompt", "a\\nb",
                 "--mode", mode]) == 0
    assert asked["sampling"].temperature == temperature
    assert gpt2().decode(asked["ids"]).count("a\nb") == 1  # MyPT's \n escape


def test_generate_mode_and_a_preset_contradict(checkpoints, capsys):
    assert main(["generate", "--checkpoints", str(checkpoints), "--model", "chat", "--prompt", "x",
                 "--mode", "creative", "--preset", "chat"]) == 2
    assert "--mode creative samples with the creative preset: drop --preset" in capsys.readouterr().err


def test_generate_show_info_describes_the_checkpoint(checkpoints, asked, capsys):
    assert main(["generate", "--checkpoints", str(checkpoints), "--model", "base", "--prompt", "x",
                 "--show_info"]) == 0
    err = capsys.readouterr().err
    assert "(mypt checkpoint, step 0)" in err and "1 layers, 2 heads, 16 wide, context 64" in err
    assert "a base model (never fine-tuned on chat)" in err


def test_temperature_zero_is_greedy_over_the_penalised_logits():
    logits = torch.tensor([5.0, 4.0, 1.0])
    seen = torch.tensor([True, False, False])
    chat_greedy = preset("chat", temperature=0.0, repetition_penalty=2.0)
    assert next_token(logits, chat_greedy, seen=seen) == 1  # the preset's penalty still applies
    assert next_token(logits, preset("deterministic"), seen=seen) == 0  # penalty 1: plain argmax


def test_input_file_is_prepared_once_and_again_when_the_text_changes(tmp_path, monkeypatch, capsys):
    """MyPT's `train.py --input_file`: the text becomes data/prepared/<stem>_stream, reused while
    the file is unchanged and prepared again when it changes."""
    from engine.train.job import TrainRequest
    from mypt_tui.cli.prepare_text import stream_of

    monkeypatch.chdir(tmp_path)
    book = tmp_path / "book.txt"
    book.write_text("".join(f"Paragraph {k} about the fox.\n\n" for k in range(50)))
    request = TrainRequest(output="run", input_file=str(book), tokenization="char")
    assert stream_of(request) == "data/prepared/book_stream"
    assert "preparing" in capsys.readouterr().err
    shard = tmp_path / "data/prepared/book_stream/train/shard_00000.bin"
    first = shard.stat().st_mtime_ns
    assert stream_of(request) == "data/prepared/book_stream"
    assert "preparing" not in capsys.readouterr().err and shard.stat().st_mtime_ns == first
    book.write_text(book.read_text() + "One more paragraph.\n")
    stream_of(request)
    assert "preparing" in capsys.readouterr().err
