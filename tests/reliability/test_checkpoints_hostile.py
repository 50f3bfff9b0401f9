"""Hostile checkpoints: a code-running pickle in every place a `.pt`/`.pkl`/`.bin` can appear (it must
never run: its payload would create a marker file), damaged metadata and weights, sizes that cannot
fit (refused before anything is allocated, naming the key), and paths that are not checkpoints.
Through the engine loaders, `mypt generate`, `mypt chat --no-ui` and `mypt eval`."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import struct
from pathlib import Path

import pytest
import torch
from conftest import assert_clean_failure, assert_not_run, untouched

MARKER = "PWNED"


class Payload:
    """Unpickling this runs a shell command that creates the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def evil_pickles(marker: Path) -> dict[str, bytes]:
    """The payload in the forms a loader may meet: torch's zip format, a raw pickle of any
    protocol, and hidden inside an otherwise plausible state dict."""
    import io

    def torch_bytes(obj) -> bytes:
        buf = io.BytesIO()
        torch.save(obj, buf)
        return buf.getvalue()

    return {
        "torch-zip": torch_bytes(Payload(marker)),
        "raw-pickle": pickle.dumps(Payload(marker), protocol=2),
        "protocol-0": pickle.dumps(Payload(marker), protocol=0),
        "inside-a-state-dict": torch_bytes({"state_dict": {"w": torch.zeros(2), "x": Payload(marker)}}),
        "inside-train-state": torch_bytes({"optimizer": {"state": {0: Payload(marker)}}, "step": 3}),
    }


PICKLE_KINDS = list(evil_pickles(Path("m")))


def myPT_folder(src: Path, dst: Path) -> Path:
    """Our tiny checkpoint rewritten as a MyPT folder (model.pt, config.json, tokenizer.json)."""
    from engine.checkpoint import load_checkpoint

    ckpt = load_checkpoint(src)
    names = {"transformer.wte.weight": "token_embedding_table.weight",
             "transformer.wpe.weight": "position_embedding_table.weight", "lm_head.weight": "lm_head.weight"}
    for end in ("weight", "bias"):
        names[f"transformer.ln_f.{end}"] = f"ln_f.{end}"
        for k in range(ckpt.config.n_layer):
            for ours, theirs in (("attn.c_attn", "sa.qkv"), ("attn.c_proj", "sa.proj"), ("mlp.c_fc", "fwd.net.0"),
                                 ("mlp.c_proj", "fwd.net.2"), ("ln_1", "ln1"), ("ln_2", "ln2")):
                names[f"transformer.h.{k}.{ours}.{end}"] = f"blocks.{k}.{theirs}.{end}"
    dst.mkdir(parents=True)
    torch.save({names[k]: v for k, v in ckpt.state_dict.items()}, dst / "model.pt")
    (dst / "config.json").write_text(json.dumps({**ckpt.config.to_dict(), "batch_size": 4, "device": "cpu"}))
    (dst / "tokenizer.json").write_text(json.dumps(ckpt.tokenizer_state))
    return dst


@pytest.fixture
def myPT_ckpt(tiny_ckpt, tmp_path) -> Path:
    return myPT_folder(tiny_ckpt, tmp_path / "myPT")


def doors(mypt, ckpt: Path, dataset: Path) -> dict:
    """Every way a user opens a checkpoint: name -> a call that returns a Result."""
    return {
        "generate": lambda: mypt("generate", "--model", ckpt, "--prompt", "hi", "--max_new_tokens", "2",
                                 "--device", "cpu"),
        "chat": lambda: mypt("chat", "--model", ckpt, "--no-ui", "--max_new_tokens", "2", "--device", "cpu",
                             stdin=b"hello\n"),
        "eval": lambda: mypt("eval", "--model", ckpt, "--dataset", dataset, "--limit", "1", "--device", "cpu"),
    }


DOORS = ["generate", "chat", "eval"]


# -- pickles that must never run --------------------------------------------------------------

@pytest.mark.parametrize("kind", PICKLE_KINDS)
def test_train_state_pickle_never_runs(tiny_ckpt, tmp_path, kind):
    from engine.checkpoint import CheckpointError, load_train_state

    marker = tmp_path / MARKER
    (tiny_ckpt / "train_state.pt").write_bytes(evil_pickles(marker)[kind])
    with pytest.raises(CheckpointError) as e:
        load_train_state(tiny_ckpt)
    assert_not_run(marker)
    assert "train_state.pt" in str(e.value)


@pytest.mark.parametrize("door", DOORS)
@pytest.mark.parametrize("kind", ["torch-zip", "raw-pickle", "inside-a-state-dict"])
def test_myPT_model_pt_pickle_never_runs(myPT_ckpt, tiny_ds, tmp_path, mypt, kind, door):
    marker = tmp_path / MARKER
    (myPT_ckpt / "model.pt").write_bytes(evil_pickles(marker)[kind])
    with untouched(myPT_ckpt):
        r = doors(mypt, myPT_ckpt, tiny_ds)[door]()
    assert_not_run(marker)
    assert_clean_failure(r, "model.pt")


@pytest.mark.parametrize("where", ["optimizer.pt", "rng_state.pkl", "extra/anything.pt", "tokenizer.pkl"])
def test_pickles_beside_a_myPT_model_are_never_read(myPT_ckpt, tiny_ds, tmp_path, mypt, where):
    marker = tmp_path / MARKER
    (myPT_ckpt / where).parent.mkdir(exist_ok=True)
    (myPT_ckpt / where).write_bytes(evil_pickles(marker)["torch-zip"])
    for door in DOORS:
        r = doors(mypt, myPT_ckpt, tiny_ds)[door]()
        assert r.rc == 0, r.err
    assert_not_run(marker)


@pytest.mark.parametrize("where", ["train_state.pt", "model.pt", "optimizer.pt", "data.pkl"])
def test_pickles_in_our_checkpoint_are_never_run_by_generate_chat_or_eval(tiny_ckpt, tiny_ds, tmp_path, mypt, where):
    marker = tmp_path / MARKER
    (tiny_ckpt / where).write_bytes(evil_pickles(marker)["torch-zip"])
    for door in DOORS:
        assert doors(mypt, tiny_ckpt, tiny_ds)[door]().rc == 0
    assert_not_run(marker)


def test_safetensors_that_is_really_a_pickle(tiny_ckpt, tmp_path, mypt):
    marker = tmp_path / MARKER
    (tiny_ckpt / "model.safetensors").write_bytes(evil_pickles(marker)["torch-zip"])
    r = mypt("generate", "--model", tiny_ckpt, "--prompt", "hi", "--max_new_tokens", "1")
    assert_not_run(marker)
    assert_clean_failure(r, "model.safetensors", "cannot be read")


@pytest.mark.parametrize("kind", ["torch-zip", "raw-pickle", "inside-a-state-dict"])
def test_hugging_face_pytorch_model_bin_pickle_never_runs(tmp_path, mypt, kind):
    marker = tmp_path / MARKER
    src = tmp_path / "hf"
    src.mkdir()
    (src / "config.json").write_text(json.dumps({"n_layer": 1, "n_head": 1, "n_embd": 8, "n_positions": 16,
                                                 "vocab_size": 50257}))
    (src / "pytorch_model.bin").write_bytes(evil_pickles(marker)[kind])
    with untouched(tmp_path / "out"):
        r = mypt("import", "gpt2", "--from", src, "--output", tmp_path / "out")
    assert_not_run(marker)
    assert_clean_failure(r, "pytorch_model.bin", "refusing")


# -- damaged metadata, weights and sizes ------------------------------------------------------

def edit_meta(**model_config):
    def damage(ckpt: Path) -> None:
        meta = json.loads((ckpt / "meta.json").read_text())
        meta["model_config"].update(model_config)
        (ckpt / "meta.json").write_text(json.dumps(meta))
    return damage


def set_meta(key: str, value):
    def damage(ckpt: Path) -> None:
        meta = json.loads((ckpt / "meta.json").read_text())
        meta[key] = value
        (ckpt / "meta.json").write_text(json.dumps(meta))
    return damage


def write(name: str, data: bytes):
    def damage(ckpt: Path) -> None:
        (ckpt / name).write_bytes(data)
    return damage


def cut_weights(drop: int):
    def damage(ckpt: Path) -> None:
        p = ckpt / "model.safetensors"
        p.write_bytes(p.read_bytes()[:-drop])
    return damage


def retensor(change):
    """Rewrite model.safetensors with its tensors changed by `change(dict)`."""
    def damage(ckpt: Path) -> None:
        from safetensors.torch import load_file, save_file

        sd = load_file(str(ckpt / "model.safetensors"))
        change(sd)
        save_file(sd, str(ckpt / "model.safetensors"), metadata={"format": "pt"})
    return damage


DEEP = "[" * 100_000 + "]" * 100_000
# (id, damage, what the error names)
DAMAGES = [
    ("meta-invalid-json", write("meta.json", b'{"format": '), ["meta.json", "invalid JSON at line 1"]),
    ("meta-empty", write("meta.json", b""), ["meta.json", "invalid JSON"]),
    ("meta-deep", write("meta.json", DEEP.encode()), ["meta.json", "nested more than 64 deep"]),
    ("meta-not-utf8", write("meta.json", b'{"format": "\xff"}'), ["meta.json", "not UTF-8"]),
    ("meta-not-an-object", write("meta.json", b"[]"), ["meta.json", "expected a JSON object"]),
    ("meta-other-format", set_meta("format", "other"), ["meta.json", "format is 'other'"]),
    ("meta-no-model-config", set_meta("model_config", None), ["meta.json", "model_config must be an object"]),
    ("meta-model-config-number", set_meta("model_config", 5), ["meta.json", "model_config must be an object"]),
    ("meta-n-layer-text", edit_meta(n_layer="1"), ["meta.json", "'n_layer' must be int"]),
    ("meta-unknown-key", edit_meta(n_layers=1), ["meta.json", "unknown model config key(s) 'n_layers'"]),
    ("meta-dropout-nan", write("meta.json", b'{"format": "mypt_checkpoint_v1", "model_config": {"dropout": NaN}}'),
     ["meta.json", "'dropout'"]),
    ("meta-n-layer-million", edit_meta(n_layer=10**6), ["meta.json", "'n_layer' must be from 1 to 1024"]),
    ("meta-n-layer-1000", edit_meta(n_layer=1000), ["meta.json", "n_layer is 1000", "holds 1 layers"]),
    ("meta-vocab-2-40", edit_meta(vocab_size=2**40), ["meta.json", "'vocab_size' must be from 1 to"]),
    ("meta-vocab-too-many-rows", edit_meta(vocab_size=4_000_000), ["meta.json", "vocab_size is 4000000"]),
    ("meta-n-embd-wider", edit_meta(n_embd=4096, n_head=2), ["meta.json", "n_embd is 4096", "holds 16 columns"]),
    ("meta-block-size-huge", edit_meta(block_size=2**40), ["meta.json", "'block_size' must be from 1 to"]),
    ("meta-block-size-rope", edit_meta(block_size=2**20, pos_encoding="rope"), ["meta.json", "parameters"]),
    ("meta-swiglu-mlp", edit_meta(mlp_type="swiglu"), ["meta.json", "parameters", "model.safetensors"]),
    ("meta-rope-theta-inf", write("meta.json", b'{"format": "mypt_checkpoint_v1", "model_config": '
                                               b'{"rope_theta": 1e400}}'), ["meta.json", "rope_theta"]),
    ("meta-no-tokenizer", set_meta("tokenizer", None), ["meta.json", "no tokenizer state"]),
    ("meta-tokenizer-specials-list", set_meta("tokenizer", {"tokenization": "char", "special_tokens": [1]}),
     ["special_tokens"]),
    ("meta-tokenizer-unknown", set_meta("tokenizer", {"tokenization": "morse"}), ["unknown tokenization 'morse'"]),
    ("weights-empty", write("model.safetensors", b""), ["model.safetensors", "cannot be read"]),
    ("weights-cut", cut_weights(100), ["model.safetensors", "cannot be read"]),
    ("weights-garbage", write("model.safetensors", os.urandom(4096)), ["model.safetensors", "cannot be read"]),
    ("weights-header-huge", write("model.safetensors", struct.pack("<Q", 2**62) + b"{}"),
     ["model.safetensors", "cannot be read"]),
    ("weights-header-deep", write("model.safetensors", struct.pack("<Q", 20_000) + b"[" * 10_000 + b"]" * 10_000),
     ["model.safetensors", "cannot be read"]),
    ("weights-tensor-missing", retensor(lambda sd: sd.pop("transformer.ln_f.weight")),
     ["meta.json", "parameters", "model.safetensors"]),
    ("weights-extra-tensor", retensor(lambda sd: sd.update(extra=torch.zeros(3))), ["meta.json", "holds 9,459"]),
    ("weights-wrong-shape", retensor(lambda sd: sd.update({"transformer.ln_f.weight": torch.zeros(17)})),
     ["meta.json", "parameters"]),
    ("weights-a-folder", lambda c: ((c / "model.safetensors").unlink(), (c / "model.safetensors").mkdir()),
     ["model.safetensors"]),
    ("weights-missing", lambda c: (c / "model.safetensors").unlink(), ["model.safetensors", "missing"]),
]
IDS = [d[0] for d in DAMAGES]


@pytest.mark.parametrize("case_id, damage, names", DAMAGES, ids=IDS)
def test_the_engine_loader_names_the_damage_before_allocating(tiny_ckpt, case_id, damage, names):
    from engine.checkpoint import load_model
    from engine.errors import MyptError
    from engine.tokenizer import from_state

    damage(tiny_ckpt)
    with untouched(tiny_ckpt), pytest.raises(MyptError) as e:
        _, ckpt = load_model(tiny_ckpt)
        from_state(ckpt.tokenizer_state)
    for name in names:
        assert name in str(e.value)


@pytest.mark.parametrize("door", DOORS)
@pytest.mark.parametrize("case_id, damage, names", DAMAGES, ids=IDS)
def test_generate_chat_and_eval_name_the_damage(tiny_ckpt, tiny_ds, mypt, case_id, damage, names, door):
    damage(tiny_ckpt)
    with untouched(tiny_ckpt):
        r = doors(mypt, tiny_ckpt, tiny_ds)[door]()
    assert_clean_failure(r, *names)


MYPT_DAMAGES = [
    ("config-invalid-json", write("config.json", b"{"), ["config.json", "invalid JSON"]),
    ("config-deep", write("config.json", DEEP.encode()), ["config.json", "nested more than 64 deep"]),
    ("config-n-layer-text", lambda c: _myPT_config(c, n_layer="1"), ["config.json", "'n_layer' must be int"]),
    ("config-n-layer-1000", lambda c: _myPT_config(c, n_layer=1000), ["config.json", "n_layer is 1000", "model.pt"]),
    ("config-vocab-huge", lambda c: _myPT_config(c, vocab_size=3_000_000), ["config.json", "vocab_size is 3000000"]),
    ("tokenizer-chars-number", write("tokenizer.json", b'{"token_kind": "char", "chars": 5}'),
     ["tokenizer.json", '"chars" must be a list']),
    ("model-pt-a-list", lambda c: torch.save([torch.zeros(1)], c / "model.pt"), ["model.pt", "state dict of tensors"]),
    ("model-pt-cut", lambda c: (c / "model.pt").write_bytes((c / "model.pt").read_bytes()[:200]),
     ["model.pt", "cannot be read"]),
    ("model-pt-unknown-keys", lambda c: torch.save({"w": torch.zeros(1)}, c / "model.pt"), ["model.pt", "w"]),
]


def _myPT_config(folder: Path, **changes) -> None:
    config = json.loads((folder / "config.json").read_text())
    config.update(changes)
    (folder / "config.json").write_text(json.dumps(config))


@pytest.mark.parametrize("case_id, damage, names", MYPT_DAMAGES, ids=[c[0] for c in MYPT_DAMAGES])
def test_a_damaged_myPT_folder_is_named(myPT_ckpt, mypt, case_id, damage, names):
    damage(myPT_ckpt)
    with untouched(myPT_ckpt):
        r = mypt("generate", "--model", myPT_ckpt, "--prompt", "hi", "--max_new_tokens", "1")
    assert_clean_failure(r, *names)


# -- paths that are not checkpoints -----------------------------------------------------------

def not_a_checkpoint(kind: str, tmp_path: Path) -> Path:
    path = tmp_path / "model"
    if kind == "a-file":
        path.write_text("weights")
    elif kind == "an-empty-folder":
        path.mkdir()
    elif kind == "a-symlink-loop":
        path.symlink_to(path)
    elif kind == "a-dangling-symlink":
        path.symlink_to(tmp_path / "nowhere")
    elif kind == "meta-json-is-a-loop":
        path.mkdir()
        (path / "meta.json").symlink_to(path / "meta.json")
    elif kind == "meta-json-is-a-folder":
        (path / "meta.json").mkdir(parents=True)
    elif kind == "a-run-of-empty-steps":
        (path / "step_000010").mkdir(parents=True)
    return path


PATHS = ["a-file", "an-empty-folder", "a-symlink-loop", "a-dangling-symlink", "meta-json-is-a-loop",
         "meta-json-is-a-folder", "a-run-of-empty-steps", "missing"]


@pytest.mark.parametrize("door", DOORS)
@pytest.mark.parametrize("kind", PATHS)
def test_a_path_that_is_not_a_checkpoint(tmp_path, tiny_ds, mypt, kind, door):
    path = not_a_checkpoint(kind, tmp_path)
    with untouched(path):
        r = doors(mypt, path, tiny_ds)[door]()
    assert_clean_failure(r, "model")


def test_an_intact_checkpoint_passes_every_door(tiny_ckpt, myPT_ckpt, tiny_ds, mypt):
    for ckpt in (tiny_ckpt, myPT_ckpt):
        for door in DOORS:
            r = doors(mypt, ckpt, tiny_ds)[door]()
            assert r.rc == 0, r.err
    shutil.rmtree(myPT_ckpt)


SIZES = [i for i in IDS if any(w in i for w in ("n-layer", "vocab", "n-embd", "block-size", "swiglu", "tensor",
                                                 "shape"))]


@pytest.mark.parametrize("case_id", SIZES)
def test_sizes_that_do_not_fit_are_refused_before_a_model_is_built(tiny_ckpt, monkeypatch, case_id):
    import engine.checkpoint.load as load
    from engine.checkpoint import CheckpointError

    def refuse(config):
        raise AssertionError(f"a model was built from metadata that does not fit its weights: {config}")

    monkeypatch.setattr(load, "GPT", refuse)
    DAMAGES[IDS.index(case_id)][1](tiny_ckpt)
    with pytest.raises(CheckpointError):
        load.load_model(tiny_ckpt)
