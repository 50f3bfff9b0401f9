"""What a run may write, and what a run that cannot start leaves behind: --overwrite replaces a
mypt run and nothing else, a failed start puts the replaced run back, and a job that cannot fit
(memory, vocabulary) is refused before its folder exists."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from engine.config import TrainConfig
from engine.train.job import TrainError, TrainJob
from engine.train.loop import run_training
from helpers_data import prepared, varied


def tiny(**kw) -> TrainConfig:
    base = dict(n_layer=1, n_embd=16, n_head=2, block_size=96, dropout=0.0, learning_rate=3e-3, batch_size=4,
                max_iters=2, warmup_iters=0, eval_interval=2, eval_iters=1, save_every=2, device="cpu",
                precision="fp32", batching="pack", episode_min_tokens=4)
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("data")
    prepared(tmp, varied(24), tokenization="char", val_split=0.2, seed=3)
    return tmp / "out"


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_overwrite_refuses_a_folder_that_is_not_a_run(dataset, tmp_path):
    mine = tmp_path / "my_files"
    mine.mkdir()
    (mine / "thesis.txt").write_text("years of work")
    with pytest.raises(TrainError, match="not a mypt run"):
        run_training(TrainJob(config=tiny(), dataset=dataset, output=mine, overwrite=True))
    assert tree(mine) == {"thesis.txt": b"years of work"}


def test_overwrite_refuses_the_current_folder_and_its_parents(dataset, tmp_path, monkeypatch):
    run = tmp_path / "run"
    run_training(TrainJob(config=tiny(), dataset=dataset, output=run))
    inside = run / "sub"
    inside.mkdir()
    (inside / "notes.txt").write_text("mine")
    before = tree(run)
    for cwd, output in ((run, Path(".")), (inside, Path(".")), (inside, Path(".."))):
        monkeypatch.chdir(cwd)
        with pytest.raises(TrainError, match="current folder or one above it"):
            run_training(TrainJob(config=tiny(), dataset=dataset, output=output, overwrite=True))
    assert tree(run) == before


def test_output_that_is_a_file_or_a_link_is_refused(dataset, tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text("x")
    with pytest.raises(TrainError, match="is a file"):
        run_training(TrainJob(config=tiny(), dataset=dataset, output=f, overwrite=True))
    link = tmp_path / "link"
    os.symlink(tmp_path, link)
    with pytest.raises(TrainError, match="is a link"):
        run_training(TrainJob(config=tiny(), dataset=dataset, output=link, overwrite=True))
    assert f.read_text() == "x"


def test_a_run_that_cannot_start_puts_the_replaced_run_back(dataset, tmp_path, monkeypatch):
    run = tmp_path / "run"
    run_training(TrainJob(config=tiny(), dataset=dataset, output=run))
    before = tree(run)
    import engine.train.outputs as outputs

    def broken(self):
        raise OSError(28, "No space left on device", str(self.dir / "run.json"))

    monkeypatch.setattr(outputs.RunOutputs, "_open", broken)
    with pytest.raises(OSError):
        run_training(TrainJob(config=tiny(), dataset=dataset, output=run, overwrite=True))
    assert tree(run) == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_fresh_run_that_cannot_start_leaves_no_folder(dataset, tmp_path, monkeypatch):
    import engine.train.outputs as outputs

    monkeypatch.setattr(outputs.RunOutputs, "_announce", lambda self: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        run_training(TrainJob(config=tiny(), dataset=dataset, output=tmp_path / "new"))
    assert not (tmp_path / "new").exists()


def test_overwrite_replaces_a_run(dataset, tmp_path):
    run = tmp_path / "run"
    run_training(TrainJob(config=tiny(), dataset=dataset, output=run))
    (run / "stale.txt").write_text("old")
    run_training(TrainJob(config=tiny(), dataset=dataset, output=run, overwrite=True))
    assert not (run / "stale.txt").exists() and (run / "events.jsonl").exists()


def test_a_pad_token_id_outside_the_vocabulary_is_refused_before_the_folder(dataset, tmp_path):
    with pytest.raises(TrainError, match=r"pad_token_id 999 is outside the model's vocabulary"):
        run_training(TrainJob(config=tiny(pad_token_id=999), dataset=dataset, output=tmp_path / "r"))
    assert not (tmp_path / "r").exists()


def test_a_token_id_outside_the_vocabulary_is_refused_before_the_folder(dataset, tmp_path):
    import shutil

    broken = tmp_path / "ds"
    shutil.copytree(dataset, broken)
    tokens = np.memmap(broken / "train" / "tokens.bin", dtype="<u4", mode="r+")
    tokens[7] = 10_000
    tokens.flush()
    del tokens
    with pytest.raises(TrainError, match=r"tokens.bin: token 7 is id 10000, outside the model's vocabulary"):
        run_training(TrainJob(config=tiny(), dataset=broken, output=tmp_path / "r"))
    assert not (tmp_path / "r").exists()


def test_a_model_that_cannot_fit_is_refused_before_anything_is_allocated(dataset, tmp_path):
    huge = tiny(n_layer=96, n_embd=12288, n_head=96, block_size=96)  # GPT-3 sized: ~175B parameters
    with pytest.raises(TrainError, match=r"the run needs about .* GiB on cpu .* but only .* is free on cpu"):
        run_training(TrainJob(config=huge, dataset=dataset, output=tmp_path / "r"))
    assert not (tmp_path / "r").exists()
