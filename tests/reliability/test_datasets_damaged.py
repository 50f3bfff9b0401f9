"""Prepared datasets damaged in every file, opened through the three doors a user has: `mypt inspect`,
the engine (`engine.dataset.open_dataset` and a full read), and the guide's check script
`python tests/test_episode_data_loader.py --dataset DIR`. Each door must name the file and the
place (line, key, episode, byte) and must never change the dataset it reads."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, Result, assert_clean_failure, assert_no_traceback, child_env, untouched


def cut(name: str, drop: int):
    def damage(ds: Path) -> None:
        p = ds / name
        p.write_bytes(p.read_bytes()[:-drop] if drop else b"")
    return damage


def append(name: str, extra: bytes):
    def damage(ds: Path) -> None:
        p = ds / name
        p.write_bytes(p.read_bytes() + extra)
    return damage


def patch_array(name: str, dtype: str, at: int, value: int, shape: tuple = (-1,)):
    def damage(ds: Path) -> None:
        a = np.fromfile(ds / name, dtype=dtype).reshape(shape)
        a[at] = value
        a.tofile(ds / name)
    return damage


def replace_text(name: str, text: str | bytes):
    def damage(ds: Path) -> None:
        (ds / name).write_bytes(text if isinstance(text, bytes) else text.encode())
    return damage


def edit_json(name: str, **changes):
    def damage(ds: Path) -> None:
        obj = json.loads((ds / name).read_text())
        obj.update(changes)
        (ds / name).write_text(json.dumps(obj))
    return damage


def sidecar_line(k: int, line: str | bytes | None = None, **changes):
    """Replace line k (1-based) of train/episodes.jsonl, or change some of its fields."""
    def damage(ds: Path) -> None:
        p = ds / "train" / "episodes.jsonl"
        lines = p.read_bytes().splitlines(keepends=True)
        if line is not None:
            lines[k - 1] = (line.encode() if isinstance(line, str) else line) + b"\n"
        else:
            rec = json.loads(lines[k - 1])
            rec.update(changes)
            lines[k - 1] = json.dumps(rec).encode() + b"\n"
        p.write_bytes(b"".join(lines))
    return damage


def drop_last_line(name: str):
    def damage(ds: Path) -> None:
        p = ds / name
        p.write_bytes(b"".join(p.read_bytes().splitlines(keepends=True)[:-1]))
    return damage


def folder_as_file(name: str):
    def damage(ds: Path) -> None:
        (ds / name).unlink()
        (ds / name).mkdir()
    return damage


def remove(name: str):
    def damage(ds: Path) -> None:
        p = ds / name
        if p.is_dir():
            for f in sorted(p.rglob("*"), reverse=True):
                f.unlink() if f.is_file() else f.rmdir()
            p.rmdir()
        else:
            p.unlink()
    return damage


DEEP = "[" * 5000 + "]" * 5000
T, M, X, S = "train/tokens.bin", "train/mask.bin", "train/episodes.idx", "train/episodes.jsonl"
META, TOKS = "dataset_metadata.json", "tokenizer_state.json"
# (id, damage, what the error names)
DAMAGES = [
    ("tokens-odd-size", cut(T, 2), ["tokens.bin", "not a whole number of uint32 tokens"]),
    ("tokens-one-short", cut(T, 4), ["mask.bin", "mask bytes for"]),
    ("tokens-empty", cut(T, 0), ["mask.bin", "for 0 tokens"]),
    ("tokens-a-folder", folder_as_file(T), ["tokens.bin", "not a file"]),
    ("token-id-far-outside-vocab", patch_array(T, "<u4", 5, 0xFFFFFFFF), ["tokens.bin", "token 5 is id 4294967295"]),
    ("token-id-just-outside-vocab", patch_array(T, "<u4", 0, 128), ["tokens.bin", "token 0 is id 128"]),
    ("mask-one-short", cut(M, 1), ["mask.bin", "mask bytes for"]),
    ("mask-one-long", append(M, b"\x01"), ["mask.bin", "mask bytes for"]),
    ("mask-value-not-0-or-1", patch_array(M, "u1", 17, 7), ["mask.bin", "byte 17 is 7"]),
    ("index-odd-size", cut(X, 3), ["episodes.idx", "16-byte (start, length) pairs"]),
    ("index-empty", cut(X, 0), ["episodes.idx", "0 episodes, but dataset_metadata.json says"]),
    ("index-past-the-end", patch_array(X, "<u8", (4, 1), 10**9, (-1, 2)),
     ["episodes.idx", "episode 4", "past the end"]),
    ("index-start-huge", patch_array(X, "<u8", (2, 0), 2**63, (-1, 2)), ["episodes.idx", "episode 2", "past the end"]),
    ("index-length-zero", patch_array(X, "<u8", (3, 1), 0, (-1, 2)), ["episodes.idx", "episode 3 has length 0"]),
    ("sidecar-invalid-json", sidecar_line(3, '{"index": 2, "id": '), ["episodes.jsonl:3", "not an episode record"]),
    ("sidecar-not-an-object", sidecar_line(2, "[1, 2]"), ["episodes.jsonl:2", "not an episode record"]),
    ("sidecar-deep", sidecar_line(2, DEEP), ["episodes.jsonl:2", "nested more than 64 deep"]),
    ("sidecar-not-utf8", sidecar_line(4, b'{"index": 3, "id": "\xff"}'), ["episodes.jsonl:4", "not an episode record"]),
    ("sidecar-index-text", sidecar_line(1, index="0"), ["episodes.jsonl:1", "says index 0"]),
    ("sidecar-index-wrong", sidecar_line(2, index=7), ["episodes.jsonl:2", "says index 7"]),
    ("sidecar-tokens-wrong", sidecar_line(2, tokens=1), ["episodes.jsonl:2", "with 1 tokens"]),
    ("sidecar-id-object", sidecar_line(2, id={"a": 1}), ["episodes.jsonl:2", '"id" has the wrong type']),
    ("sidecar-sha256-number", sidecar_line(3, sha256=5), ["episodes.jsonl:3", '"sha256" has the wrong type']),
    ("sidecar-meta-list", sidecar_line(3, meta=[1]), ["episodes.jsonl:3", '"meta" has the wrong type']),
    ("sidecar-id-missing", sidecar_line(1, line='{"index": 0, "tokens": 5}'), ["episodes.jsonl:1", "'id'"]),
    ("sidecar-one-line-short", drop_last_line(S), ["episodes.jsonl", "lines for the", "(truncated?)"]),
    ("sidecar-extra-line", append(S, b'{"index": 999}\n'), ["episodes.jsonl", "more lines than the"]),
    ("sidecar-empty", cut(S, 0), ["episodes.jsonl", "0 lines for the"]),
    ("metadata-invalid-json", replace_text(META, '{"format": '), [META, "cannot be read as JSON", "line 1"]),
    ("metadata-empty", replace_text(META, ""), [META, "cannot be read as JSON"]),
    ("metadata-not-utf8", replace_text(META, b'{"format": "\xff"}'), [META, "not UTF-8"]),
    ("metadata-deep", replace_text(META, DEEP), [META, "nested more than 64 deep"]),
    ("metadata-not-an-object", replace_text(META, "[1]"), [META, "expected a JSON object"]),
    ("metadata-other-format", edit_json(META, format="pretrain_shards_v2"), [META, "'pretrain_shards_v2'"]),
    ("metadata-count-text", edit_json(META, num_train_episodes="9"), [META, "num_train_episodes", "'9'"]),
    ("metadata-count-negative", edit_json(META, num_val_episodes=-1), [META, "num_val_episodes", "-1"]),
    ("metadata-count-infinite", replace_text(META, '{"format": "episode_indexed_sft_v1", "num_train_tokens": 1e400}'),
     [META, "num_train_tokens", "inf"]),
    ("metadata-count-bool", edit_json(META, num_train_episodes=True), [META, "num_train_episodes"]),
    ("metadata-count-wrong", edit_json(META, num_train_episodes=1000), ["episodes.idx", "says 1000"]),
    ("tokenizer-invalid-json", replace_text(TOKS, "{"), [TOKS, "cannot be read as JSON"]),
    ("tokenizer-deep", replace_text(TOKS, DEEP), [TOKS, "nested more than 64 deep"]),
    ("tokenizer-not-an-object", replace_text(TOKS, '"char"'), [TOKS, "expected a JSON object"]),
    ("tokenizer-unknown-kind", edit_json(TOKS, tokenization="bpe9"), [TOKS, "unknown tokenization 'bpe9'"]),
    ("tokenizer-kind-list", edit_json(TOKS, tokenization=["char"]), [TOKS, "unknown tokenization ['char']"]),
    ("tokenizer-chars-number", edit_json(TOKS, chars=5), [TOKS, '"chars" must be a list']),
    ("tokenizer-chars-object", edit_json(TOKS, chars={"a": 1}), [TOKS, '"chars" must be a list']),
    ("tokenizer-chars-words", edit_json(TOKS, chars=["ab", "c"]), [TOKS, "single characters"]),
    ("tokenizer-specials-list", edit_json(TOKS, special_tokens=[1, 2]), [TOKS, '"special_tokens" must map']),
    ("tokenizer-specials-infinite", replace_text(TOKS, '{"tokenization": "char", "special_tokens": '
                                                      '{"<myPT_user>": 1e400}}'), [TOKS, '"special_tokens" must map']),
    ("tokenizer-specials-moved", edit_json(TOKS, special_tokens={"<myPT_user>": 3}), [TOKS, "differ from mypt's"]),
    ("tokenizer-missing", remove(TOKS), [TOKS, "missing"]),
    ("train-folder-missing", remove("train"), ["train", "missing, but dataset_metadata.json says"]),
    ("val-folder-missing", remove("val"), ["val", "missing, but dataset_metadata.json says"]),
    ("shard-folders", lambda ds: (ds / "train" / "shard_00000").mkdir(), ["shard_*", "one or the other"]),
]
IDS = [d[0] for d in DAMAGES]
# the check script's mask line is pinned by tests/test_episode_data_loader.py: it counts, it does not locate
SCRIPT_NAMES = {"mask-value-not-0-or-1": ["mask values are 0/1", "1 mask bytes are neither 0 nor 1"]}


def full_read(path: Path) -> None:
    """The engine door: open, then read everything a trainer or a viewer reads."""
    from engine.dataset import open_dataset
    from engine.dataset_checks import check_dataset

    ds = open_dataset(path)
    vocab = ds.tokenizer().model_vocab_size
    for name in ("train", "val"):
        split = ds.split(name)
        if split is not None:
            split.ids, split.meta(0), split.check_token_range(vocab), split.check_mask()  # noqa: B018
    failed = [c for c in check_dataset(ds) if not c.ok]
    assert not failed, failed


@pytest.mark.parametrize("case_id, damage, names", DAMAGES, ids=IDS)
def test_the_engine_names_the_damage(tiny_ds, case_id, damage, names):
    from engine.dataset import DatasetError

    damage(tiny_ds)
    with untouched(tiny_ds), pytest.raises(DatasetError) as e:
        full_read(tiny_ds)
    assert "\n" not in str(e.value)
    for name in names:
        assert name in str(e.value)


@pytest.mark.parametrize("case_id, damage, names", DAMAGES, ids=IDS)
def test_inspect_names_the_damage(tiny_ds, mypt, case_id, damage, names):
    damage(tiny_ds)
    with untouched(tiny_ds):
        r = mypt("inspect", tiny_ds)
    assert_clean_failure(r, *names)


@pytest.fixture(scope="module")
def loader_script():
    """The guide's check script, loaded as a module (its main() is what `python FILE` runs)."""
    import test_episode_data_loader

    return test_episode_data_loader.main


@pytest.mark.parametrize("case_id, damage, names", DAMAGES, ids=IDS)
def test_the_check_script_names_the_damage(tiny_ds, loader_script, capsys, case_id, damage, names):
    damage(tiny_ds)
    with untouched(tiny_ds):
        rc = loader_script(["--dataset", str(tiny_ds), "--no-tests"])
    out = capsys.readouterr().out
    failures = [line for line in out.splitlines() if line.startswith(("Dataset FAILED: ", "  FAIL "))]
    assert rc == 1 and failures and "Traceback" not in out, out
    for name in SCRIPT_NAMES.get(case_id, names):
        assert any(name in line for line in failures), f"no failure names {name!r}:\n{out}"


@pytest.mark.parametrize("case_id", ["index-past-the-end", "sidecar-deep", "tokenizer-specials-list"])
def test_the_check_script_run_as_the_guide_runs_it(tiny_ds, case_id):
    _, damage, names = DAMAGES[IDS.index(case_id)]
    damage(tiny_ds)
    proc = subprocess.run([sys.executable, str(REPO / "tests" / "test_episode_data_loader.py"), "--dataset",
                           str(tiny_ds), "--no-tests"], capture_output=True, text=True, env=child_env(), timeout=120)
    r = Result(proc.returncode, proc.stdout, proc.stderr)
    assert_no_traceback(r)
    assert r.rc == 1 and all(name in r.out for name in names), r.out


def test_an_intact_dataset_passes_every_door(tiny_ds, mypt, loader_script, capsys):
    full_read(tiny_ds)
    assert mypt("inspect", tiny_ds).rc == 0
    assert loader_script(["--dataset", str(tiny_ds), "--no-tests"]) == 0
