"""Episode-indexed datasets: the format checks (and, below them, the loader's tests).

The guide's "Verify Dataset Quality" step runs this file as a script:

    python tests/test_episode_data_loader.py                   # run the tests in this file
    python tests/test_episode_data_loader.py --dataset PATH    # ... and check a prepared dataset
    python tests/test_episode_data_loader.py --dataset PATH --no-tests   # only check the dataset

Checking a dataset means: its files are present and their sizes agree, masks are 0/1 and
aligned with the tokens, every episode ends with <myPT_eot> and has supervised tokens, the
token ids fit the vocabulary, episodes.jsonl matches the index, the tokenizer state is readable.
It prints one line per check and exits 1 when any fails. Under pytest this file is ordinary
tests; new sections are appended at the end, before the script entry point.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
from pathlib import Path

if __name__ == "__main__":  # run from a checkout: make `engine` and the helpers importable
    sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]

import numpy as np
import pytest

from engine.dataset import DatasetError, open_dataset
from engine.dataset_checks import check_dataset
from engine.episode import read_episodes
from engine.render import render_episode
from engine.tokenizer import gpt2

# -- dataset format -----------------------------------------------------------------------------


def _episodes(n: int) -> list[dict]:
    from helpers_data import chat, tool_episode

    eps = [chat(f"e{i:02d}", f"Question {i}: what is {i} + {i}?", f"It is {2 * i}.",
                system="You are terse." if i % 2 else None, meta={"family": "math" if i % 3 else "chat"})
           for i in range(n)]
    eps[3] = tool_episode("e03", 3, 9)
    return eps


@pytest.fixture
def dataset(tmp_path) -> Path:
    from helpers_data import prepared

    prepared(tmp_path, _episodes(12), val_split=0.25, seed=11)
    return tmp_path / "out"


def test_format_is_detected_and_counts_match_metadata(dataset):
    ds = open_dataset(dataset)
    meta = ds.metadata
    assert meta["format"] == meta["schema"] == "episode_indexed_sft_v1"
    train, val = ds.split("train"), ds.split("val")
    assert (len(train), len(val)) == (meta["num_train_episodes"], meta["num_val_episodes"]) == (9, 3)
    assert (len(train.tokens), len(val.tokens)) == (meta["num_train_tokens"], meta["num_val_tokens"])
    assert int(train.supervised.sum()) == meta["num_train_mask_tokens"]
    assert int(val.supervised.sum()) == meta["num_val_mask_tokens"]
    assert ds.tokenizer().same_as(gpt2().state())


def test_shapes_and_dtypes(dataset):
    split = open_dataset(dataset).split("train")
    assert split.tokens.dtype == np.uint32 and split.mask.dtype == np.uint8
    assert split.index.shape == (9, 2) and split.index.dtype == np.uint64
    assert split.lengths.dtype == np.int64 and split.supervised.dtype == np.int64
    assert len(split.tokens) == len(split.mask) == int(split.lengths.sum())
    # episodes are contiguous, in order, and cover the file exactly
    assert split.index[:, 0].tolist() == np.concatenate(([0], np.cumsum(split.lengths)[:-1])).tolist()


def test_every_episode_matches_its_rendering_and_mask(dataset, tmp_path):
    ds = open_dataset(dataset)
    tok = ds.tokenizer()
    by_id = {ep.id: ep for ep in read_episodes(tmp_path / "in.jsonl")}
    seen = []
    for name in ("train", "val"):
        split = ds.split(name)
        for i, eid in enumerate(split.ids):
            ids, mask = split.episode(i)
            r = render_episode(by_id[eid], tok)
            np.testing.assert_array_equal(ids, r.ids)
            np.testing.assert_array_equal(mask, r.mask)
            assert split.supervised[i] == int(r.mask.sum()) == split.meta(i)["supervised"]
            assert split.hashes[i] == by_id[eid].sha256
            assert ids[-1] == tok.eot_id
            seen.append(eid)
    assert sorted(seen) == sorted(by_id)


def test_families_from_meta(dataset):
    split = open_dataset(dataset).split("train")
    assert set(split.families) <= {"math", "chat", "all"}
    assert split.families == [split.meta(i)["meta"].get("family", "all") for i in range(len(split))]


@pytest.mark.parametrize("what", ["missing folder", "empty folder", "a file", "other format"])
def test_not_a_dataset(tmp_path, what):
    path = tmp_path / "d"
    if what == "empty folder":
        path.mkdir()
    elif what == "a file":
        path.write_text("x")
    elif what == "other format":
        path.mkdir()
        (path / "dataset_metadata.json").write_text('{"schema": "pretrain_shards_v2"}')
    with pytest.raises(DatasetError) as e:
        open_dataset(path)
    assert str(e.value) == {
        "missing folder": f"{path}: no such folder",
        "empty folder": f"{path} is not a prepared dataset: it has no dataset_metadata.json and no train/ folder "
                        f"(make one with `mypt prepare chat --input FILE --output {path}`)",
        "a file": f"{path}: not a folder (a prepared dataset is a folder made by `mypt prepare`)",
        "other format": f"{path / 'dataset_metadata.json'}: format 'pretrain_shards_v2' is not 'episode_indexed_sft_v1'",
    }[what]


def _truncate(p: Path, drop: int) -> None:
    p.write_bytes(p.read_bytes()[:-drop])


def test_truncated_tokens_and_misaligned_mask_are_named(dataset):
    tr = dataset / "train"
    n_tokens = (tr / "tokens.bin").stat().st_size // 4
    _truncate(tr / "tokens.bin", 2)
    with pytest.raises(DatasetError) as e:
        open_dataset(dataset)
    assert str(e.value) == (f"{tr / 'tokens.bin'}: {4 * n_tokens - 2} bytes is not a whole number of uint32 "
                            "tokens (truncated?)")
    _truncate(tr / "tokens.bin", 2)
    with pytest.raises(DatasetError) as e:
        open_dataset(dataset)
    assert str(e.value) == (f"{tr / 'mask.bin'}: {n_tokens} mask bytes for {n_tokens - 1} tokens in tokens.bin "
                            "(they must be aligned, one byte per token)")


def test_index_past_the_tokens_and_metadata_mismatch(dataset):
    tr = dataset / "train"
    idx = np.fromfile(tr / "episodes.idx", dtype="<u8").reshape(-1, 2)
    n_tokens = (tr / "tokens.bin").stat().st_size // 4
    bad = idx.copy()
    bad[4, 1] += 10_000
    bad.tofile(tr / "episodes.idx")
    with pytest.raises(DatasetError) as e:
        open_dataset(dataset)
    assert str(e.value) == (f"{tr / 'episodes.idx'}: episode 4 (start {idx[4, 0]}, length {idx[4, 1] + 10_000}) "
                            f"points past the end of tokens.bin ({n_tokens} tokens)")
    idx[:-1].tofile(tr / "episodes.idx")
    with pytest.raises(DatasetError) as e:
        open_dataset(dataset)
    assert str(e.value) == f"{tr / 'episodes.idx'}: 8 episodes, but dataset_metadata.json says 9"
    _truncate(tr / "episodes.idx", 3)
    with pytest.raises(DatasetError, match=r"is not a whole number of 16-byte \(start, length\) pairs"):
        open_dataset(dataset)


def test_missing_file_and_truncated_sidecar(dataset):
    lines = (dataset / "val" / "episodes.jsonl").read_bytes().splitlines(keepends=True)
    (dataset / "val" / "episodes.jsonl").write_bytes(b"".join(lines[:-1]))
    val = open_dataset(dataset).split("val")
    with pytest.raises(DatasetError) as e:
        val.ids
    assert str(e.value) == f"{dataset / 'val' / 'episodes.jsonl'}: 2 lines for the 3 episodes in episodes.idx (truncated?)"
    (dataset / "train" / "mask.bin").unlink()
    with pytest.raises(DatasetError) as e:
        open_dataset(dataset)
    assert str(e.value) == f"{dataset / 'train' / 'mask.bin'}: missing"


def test_a_mypt_dataset_without_our_sidecars(tmp_path):
    """MyPT's prepare writes the binaries and metadata only (no episodes.jsonl, and its
    tokenizer_state.json may be absent for gpt2)."""
    tok = gpt2()
    eps = [np.array([tok.tag_id("user"), 40, tok.tag_id("/user"), tok.tag_id("assistant"), 41,
                     tok.tag_id("/assistant"), tok.eot_id], dtype="<u4"),
           np.array([tok.tag_id("user"), 42, tok.tag_id("/user"), tok.tag_id("assistant"), 43, 44,
                     tok.tag_id("/assistant"), tok.eot_id], dtype="<u4")]
    masks = [np.array([0, 0, 0, 0, 1, 1, 0], dtype="u1"), np.array([0, 0, 0, 0, 1, 1, 1, 0], dtype="u1")]
    root = tmp_path / "mypt"
    (root / "train").mkdir(parents=True)
    np.concatenate(eps).tofile(root / "train" / "tokens.bin")
    np.concatenate(masks).tofile(root / "train" / "mask.bin")
    np.array([[0, 7], [7, 8]], dtype="<u8").tofile(root / "train" / "episodes.idx")
    (root / "dataset_metadata.json").write_text(json.dumps({
        "schema": "episode_indexed_sft_v1", "num_train_episodes": 2, "num_val_episodes": 0,
        "num_train_tokens": 15, "num_val_tokens": 0, "tokenization": "gpt2"}))
    ds = open_dataset(root)
    split = ds.split("train")
    assert ds.split("val") is None and not split.has_sidecar
    assert split.ids == ["train:0", "train:1"]
    assert split.hashes == [hashlib.sha256(e.tobytes()).hexdigest() for e in eps]
    assert split.supervised.tolist() == [2, 3] and split.families == ["all", "all"]
    assert split.meta(1) == {"index": 1, "id": "train:1", "source": None, "sha256": None, "tokens": 8,
                             "supervised": 3, "meta": {}}
    np.testing.assert_array_equal(split.episode(1)[0], eps[1])
    assert ds.tokenizer().kind == "gpt2"
    assert all(c.ok for c in check_dataset(ds))


def test_checks_pass_on_a_prepared_dataset_and_catch_bad_masks(dataset):
    checks = check_dataset(open_dataset(dataset))
    assert [c.name for c in checks if not c.ok] == []
    assert {c.name for c in checks} >= {
        "files present, sizes consistent", "tokenizer state readable", "train: mask values are 0/1",
        "train: every episode has supervised tokens", "train: every episode ends with <myPT_eot>",
        "train: token ids below the model vocabulary", "val: episodes.jsonl matches the index"}
    split = open_dataset(dataset).split("train")
    mask = np.fromfile(dataset / "train" / "mask.bin", dtype="u1")
    s, n = int(split.starts[2]), int(split.lengths[2])
    mask[s:s + n] = 0
    mask[0] = 2
    mask.tofile(dataset / "train" / "mask.bin")
    failed = {c.name: c.detail for c in check_dataset(open_dataset(dataset)) if not c.ok}
    assert failed["train: mask values are 0/1"] == "1 mask bytes are neither 0 nor 1"
    assert failed["train: every episode has supervised tokens"] == "1 episodes have none (first: index 2)"
    assert "train: supervised count matches metadata" in failed


def _script(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)


def test_script_checks_a_dataset(dataset):
    ok = _script("--dataset", str(dataset), "--no-tests")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.splitlines()[0] == f"Checking {dataset}"
    assert "  PASS  train: every episode has supervised tokens" in ok.stdout
    assert ok.stdout.splitlines()[-1].startswith("Dataset OK: ")
    n_val = (dataset / "val" / "tokens.bin").stat().st_size // 4
    (dataset / "val" / "mask.bin").write_bytes(b"\x01")
    bad = _script("--dataset", str(dataset), "--no-tests")
    assert bad.returncode == 1
    assert bad.stdout.splitlines()[-1] == (f"Dataset FAILED: {dataset / 'val' / 'mask.bin'}: 1 mask bytes for "
                                           f"{n_val} tokens in tokens.bin (they must be aligned, one byte per token)")


# -- the loader: sampler + batching, as the trainer uses them ----------------------------------


def _loader(dataset: Path, **kw):
    from engine.batching import collate
    from engine.sampler import EpisodeSampler, eligible_episodes

    split = open_dataset(dataset).split("train")
    opts = dict(block_size=64, min_tokens=10, overlong="truncate", batch_size=3, batching="pad", seed=3301,
                shuffle=True, drop_last=True, use_loss_mask=True)
    opts.update(kw)
    elig = eligible_episodes(split.lengths, split.supervised,
                             lambda i: int(split.episode(i)[1][1:opts["block_size"] + 1].sum()),
                             block_size=opts["block_size"], min_tokens=opts["min_tokens"], overlong=opts["overlong"])
    sampler = EpisodeSampler(elig.eligible, split.lengths, batch_size=opts["batch_size"],
                             block_size=opts["block_size"], batching=opts["batching"], seed=opts["seed"],
                             shuffle=opts["shuffle"], drop_last=opts["drop_last"])

    def next_batch():
        drawn = sampler.next_batch()
        return drawn, collate(drawn.rows, split, block_size=opts["block_size"], batching=opts["batching"],
                              pad_id=50275, use_loss_mask=opts["use_loss_mask"])

    return split, elig, next_batch


def test_pad_batches_have_fixed_shape_targets_shifted_and_mask_aligned(dataset):
    split, _, next_batch = _loader(dataset)
    drawn, b = next_batch()
    assert b.x.shape == b.y.shape == b.mask.shape == (3, 64) and b.segment_ids is None
    for r, (i,) in enumerate(drawn.rows):
        ids, mask = split.episode(i)
        n = len(ids) - 1
        assert b.x[r, :n].tolist() == ids[:-1].tolist() and b.y[r, :n].tolist() == ids[1:].tolist()
        assert b.mask[r, :n].tolist() == (mask[1:] == 1).tolist()  # the mask of the TARGET token
        assert b.x[r, n:].eq(50275).all() and not b.mask[r, n:].any()  # padding is never trained
    assert b.supervised == sum(int(split.episode(i)[1][1:].sum()) for (i,) in drawn.rows)


def test_pack_rows_restart_positions_and_keep_episodes_apart(dataset):
    split, _, next_batch = _loader(dataset, batching="pack", block_size=128)
    drawn, b = next_batch()
    for r, row in enumerate(drawn.rows):
        at = 0
        for k, i in enumerate(row, 1):
            ids, mask = split.episode(i)
            n = len(ids) - 1
            assert b.segment_ids[r, at:at + n].eq(k).all()
            assert b.position_ids[r, at:at + n].tolist() == list(range(n))
            assert b.y[r, at:at + n].tolist() == ids[1:].tolist()
            assert b.mask[r, at:at + n].tolist() == (mask[1:] == 1).tolist()
            at += n
        assert b.segment_ids[r, at:].eq(0).all() and not b.mask[r, at:].any()


def test_same_seed_same_batches_other_seed_other_batches(dataset):
    _, _, a = _loader(dataset, seed=3301)
    _, _, b = _loader(dataset, seed=3301)
    _, _, c = _loader(dataset, seed=1)
    first = [a()[0].rows for _ in range(4)]
    assert first == [b()[0].rows for _ in range(4)]
    assert first != [c()[0].rows for _ in range(4)]


def test_drop_last_drops_the_incomplete_batch_of_each_epoch(dataset):
    _, elig, next_batch = _loader(dataset, batch_size=4)  # 9 eligible: 2 batches of 4, 1 dropped
    assert len(elig.eligible) == 9
    drawn = [next_batch()[0] for _ in range(3)]
    assert [d.epoch for d in drawn] == [0, 0, 1]
    assert drawn[1].closes_epoch and len(drawn[1].dropped) == 1
    _, _, keep = _loader(dataset, batch_size=4, drop_last=False)
    assert [len(keep()[0].rows) for _ in range(3)] == [4, 4, 1]


def test_episode_min_tokens_skips_short_episodes(dataset):
    lengths = open_dataset(dataset).split("train").lengths
    cut = int(np.median(lengths)) + 1
    _, elig, _ = _loader(dataset, min_tokens=cut, block_size=256)
    assert elig.eligible.tolist() == [i for i, n in enumerate(lengths) if n >= cut]
    assert elig.too_short == int((lengths < cut).sum()) > 0


def test_overlong_episodes_are_truncated_keeping_the_head_or_dropped(dataset):
    from engine.sampler import eligible_episodes

    split, _, _ = _loader(dataset)
    block = int(split.lengths.min()) - 3  # every episode is over-long at this size
    _, elig, next_batch = _loader(dataset, block_size=block, min_tokens=1)
    assert elig.overlong == len(split) and elig.overlong_truncated + elig.no_supervised == len(split)
    drawn, b = next_batch()
    ids, _ = split.episode(drawn.rows[0][0])
    assert b.x[0].tolist() == ids[:block].tolist() and b.y[0].tolist() == ids[1:block + 1].tolist()
    dropped = eligible_episodes(split.lengths, split.supervised, lambda i: 1, block_size=block, min_tokens=1,
                                overlong="drop")
    assert len(dropped.eligible) == 0 and dropped.overlong_dropped == len(split)


def test_without_loss_masking_every_real_target_trains(dataset):
    split, _, next_batch = _loader(dataset, use_loss_mask=False)
    drawn, b = next_batch()
    assert b.supervised == sum(len(split.episode(i)[0]) - 1 for (i,) in drawn.rows)


# -- the script --------------------------------------------------------------------------------


def check_path(path: str) -> bool:
    """Print one line per integrity check of the dataset at `path`; True when all pass."""
    print(f"Checking {path}")
    try:
        checks = check_dataset(open_dataset(path))
    except DatasetError as e:
        print(f"Dataset FAILED: {e}")
        return False
    for c in checks:
        print(f"  {'PASS' if c.ok else 'FAIL'}  {c.name}" + (f": {c.detail}" if c.detail else ""))
    failed = [c for c in checks if not c.ok]
    if failed:
        print(f"Dataset FAILED: {len(failed)} of {len(checks)} checks")
        return False
    print(f"Dataset OK: {len(checks)} checks passed")
    return True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Run the episode-dataset tests; optionally check a prepared dataset.")
    ap.add_argument("--dataset", help="a prepared dataset folder to check")
    ap.add_argument("--no-tests", action="store_true", help="only check --dataset, do not run the tests")
    args = ap.parse_args(argv)
    ok = True
    if not args.no_tests:
        ok = pytest.main([__file__, "-q", "-p", "no:cacheprovider"]) == 0
        print("All tests passed" if ok else "Some tests FAILED")
    if args.dataset:
        ok = check_path(args.dataset) and ok
    elif args.no_tests:
        ap.error("--no-tests needs --dataset")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
