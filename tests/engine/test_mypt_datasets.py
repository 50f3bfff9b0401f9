"""MyPT's dataset shapes: packed rows (segment_ids.bin), shards (shard_*/), loss weights
(mask_weighted.bin), and `mypt prepare --val_only / --weighted_mask / --enable_packing`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers_mypt import pack, write_dataset

from engine.batching import collate
from engine.dataset import DatasetError, open_dataset
from engine.dataset_store import Concat
from engine.model import GPT, GPTConfig
from engine.prepare import PrepareError
from helpers_data import prepared, varied


@pytest.fixture(scope="module")
def ours(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ours")
    prepared(tmp, varied(21), tokenization="char", val_split=0.0, seed=1)
    return open_dataset(tmp / "out")


def episodes_of(split):
    return [tuple(np.array(a) for a in split.episode(i)) for i in range(len(split))]


def myPT_packed(root, ds, block=96):
    tok = ds.tokenizer()
    rows, segs = pack(episodes_of(ds.split("train")), block, tok.eot_id)
    return write_dataset(root, ds.tokenizer_state, {"rows": rows, "segments": segs},
                         packing_enabled=True, pack_block_size=block)


def test_a_myPT_packed_dataset_reads_as_its_episodes(ours, tmp_path):
    split = open_dataset(myPT_packed(tmp_path / "packed", ours)).split("train")
    assert split.packed and not split.has_sidecar and len(split) == 21
    for (a_ids, a_mask), (b_ids, b_mask) in zip(episodes_of(ours.split("train")), episodes_of(split)):
        assert a_ids.tolist() == b_ids.tolist() and a_mask.tolist() == b_mask.tolist()
    assert split.ids[:2] == ["train:0", "train:1"]


def test_a_packed_dataset_gives_each_episode_the_loss_it_has_unpacked_and_myPTs_packed_loss(ours, tmp_path):
    root = myPT_packed(tmp_path / "packed", ours)
    packed = open_dataset(root).split("train")
    torch.manual_seed(0)
    model = GPT(GPTConfig(n_layer=2, n_head=2, n_embd=32, block_size=128, vocab_size=ours.tokenizer().model_vocab_size))
    model.eval()
    eot = ours.tokenizer().eot_id

    def loss(source, i):  # one episode, as the trainer batches it (pack mode)
        b = collate([[i]], source, block_size=96, batching="pack", pad_id=eot)
        with torch.no_grad():
            return model.supervised_loss(b.x, b.y, b.mask, segment_ids=b.segment_ids, position_ids=b.position_ids)

    per_episode = [loss(packed, i) for i in range(len(packed))]
    for i in range(len(packed)):
        torch.testing.assert_close(per_episode[i], loss(ours.split("train"), i), rtol=0, atol=0)
    # MyPT's own reading of a packed row: x = row[:-1], y = row[1:], attention inside each segment,
    # positions restarting; its loss per segment is ours (the target across two episodes is masked).
    seg = np.fromfile(root / "train" / "segment_ids.bin", dtype=np.uint8)[:96]  # the first packed row
    row_ids = np.fromfile(root / "train" / "tokens.bin", dtype=np.uint32).astype(np.int64)[:96]
    row_mask = np.fromfile(root / "train" / "mask.bin", dtype=np.uint8)[:96]
    x, y = torch.tensor(row_ids[None, :-1]), torch.tensor(row_ids[None, 1:])
    s = torch.tensor(seg[None, :-1].astype(np.int64))
    with torch.no_grad():
        logits = model(x, segment_ids=s)
    ce = torch.nn.functional.cross_entropy(logits[0], y[0], reduction="none")
    m = torch.tensor(row_mask[1:] == 1)
    for k in range(1, int(seg.max()) + 1):
        at = torch.tensor(seg[:95] == k) & m
        torch.testing.assert_close(ce[at].sum(), per_episode[k - 1], rtol=1e-5, atol=1e-5)


def test_shards_read_as_one_split_memory_mapped(ours, tmp_path):
    eps = episodes_of(ours.split("train"))
    root = write_dataset(tmp_path / "sharded", ours.tokenizer_state,
                         [{"rows": eps[:8]}, {"rows": eps[8:15]}, {"rows": eps[15:]}])
    split = open_dataset(root).split("train")
    assert len(split) == 21 and len(split.parts) == 3 and isinstance(split.tokens, Concat)
    assert all(isinstance(a, np.memmap) for a in split.tokens.arrays)  # mapped, never read whole
    for i, (ids, mask) in enumerate(eps):
        got_ids, got_mask = split.episode(i)
        assert got_ids.tolist() == ids.tolist() and got_mask.tolist() == mask.tolist()
    assert split.supervised.tolist() == ours.split("train").supervised.tolist()
    vocab = ours.tokenizer().model_vocab_size
    split.check_token_range(vocab)  # scans every shard
    damaged = root / "train" / "shard_00001" / "tokens.bin"
    ids = np.fromfile(damaged, dtype=np.uint32)
    ids[3] = vocab
    ids.tofile(damaged)
    with pytest.raises(DatasetError, match=f"shard_00001/tokens.bin: token 3 is id {vocab}, outside"):
        open_dataset(root).split("train").check_token_range(vocab)


def test_damaged_myPT_files_are_named(ours, tmp_path):
    root = myPT_packed(tmp_path / "packed", ours)
    seg = root / "train" / "segment_ids.bin"
    seg.write_bytes(seg.read_bytes()[:-1])
    with pytest.raises(DatasetError, match="segment_ids.bin: .* bytes for .* tokens"):
        open_dataset(root)
    eps = episodes_of(ours.split("train"))
    bad = write_dataset(tmp_path / "w", ours.tokenizer_state,
                        {"rows": eps[:2], "weights": [np.ones(len(eps[0][0]))]})
    with pytest.raises(DatasetError, match="mask_weighted.bin"):
        open_dataset(bad)


def test_prepare_weighted_mask_writes_myPTs_weights(tmp_path):
    from helpers_data import tool_episode

    rep = prepared(tmp_path, [tool_episode("t1", 3, 4), *varied(3)], weighted_mask=True, val_split=0.0)
    ds = open_dataset(tmp_path / "out")
    split, tok = ds.split("train"), ds.tokenizer()
    assert split.weighted
    ids, mask = split.episode(0)
    w = split.weights_of(0)
    expected = {tok.tag_id("/assistant"): 2.0, tok.tag_id("eot"): 2.0, tok.tag_id("toolcall"): 2.0,
                tok.tag_id("/toolcall"): 2.0}
    for t, m, wt in zip(ids, mask, w):
        assert wt == (0.0 if m == 0 else expected.get(int(t), 1.0))
    assert rep.metadata["weighted_mask"] and rep.metadata["num_train_mask_weight"] == pytest.approx(
        float(sum(split.weights_of(i).sum() for i in range(len(split)))))
    assert split.weight_sums[0] == pytest.approx(float(w.sum()))


def test_prepare_val_only_makes_an_evaluation_dataset(tmp_path):
    rep = prepared(tmp_path, varied(5), val_only=True)
    ds = open_dataset(tmp_path / "out")
    assert ds.split("train") is None and len(ds.split("val")) == 5 and not (tmp_path / "out" / "train").exists()
    assert rep.metadata["val_only"] and rep.metadata["prepare_mode"] == "val_only"
    with pytest.raises(PrepareError, match="--val_only and --val_file contradict"):
        prepared(tmp_path, varied(5), name="o2", val_only=True, val_file=tmp_path / "in.jsonl")


def test_prepare_enable_packing_records_packing(tmp_path):
    rep = prepared(tmp_path, varied(5), enable_packing=True, pack_block_size=512)
    assert (rep.metadata["batching"], rep.metadata["pack_block_size"]) == ("pack", 512)
    meta = json.loads((tmp_path / "out" / "dataset_metadata.json").read_text())
    assert meta["options"]["enable_packing"]
    with pytest.raises(PrepareError, match="--pack_block_size needs --enable_packing"):
        prepared(tmp_path, varied(5), name="o2", pack_block_size=512)
