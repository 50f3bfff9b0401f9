"""Integrity checks of a prepared dataset, beyond the file sizes open_dataset checks: mask values,
token ids, episode ends, supervised counts, the sidecar. `tests/test_episode_data_loader.py
--dataset PATH` prints them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .dataset import Dataset, DatasetError, EpisodeSplit
from .layout import SPLITS
from .tokenizer import Tokenizer, TokenizerError


@dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""


def check_dataset(ds: Dataset) -> list[Check]:
    """Full integrity checks (reads every byte once, a chunk at a time). open_dataset has
    already checked that the files exist and that their sizes agree."""
    checks = [Check("files present, sizes consistent", True,
                    ", ".join(f"{n}: {len(s)} episodes, {len(s.tokens)} tokens"
                              for n in SPLITS if (s := ds.split(n)) is not None))]
    try:
        tok = ds.tokenizer()
        checks.append(Check("tokenizer state readable", True, f"{tok.kind}, model vocab {tok.model_vocab_size}"))
    except (TokenizerError, ValueError) as e:
        checks.append(Check("tokenizer state readable", False, str(e)))
        tok = None
    for name in SPLITS:
        split = ds.split(name)
        if split is None:
            continue
        checks += _check_split(ds, split, tok)
    return checks


def _check_split(ds: Dataset, split: EpisodeSplit, tok: Tokenizer | None) -> list[Check]:
    name = split.name
    out: list[Check] = []
    bad_mask = top_id = n_bad_end = 0
    bad_end: list[int] = []
    # our episodes always end with <myPT_eot>; MyPT's tool sets put a newline after it
    eot = tok.eot_id if tok and split.has_sidecar else None
    for lo, hi, base, t, m in split.chunks():
        bad_mask += int(np.count_nonzero(m > 1))
        top_id = max(top_id, int(t.max()))
        if eot is not None:
            wrong = np.flatnonzero(t[split.starts[lo:hi] + split.lengths[lo:hi] - 1 - base] != eot) + lo
            n_bad_end += len(wrong)
            bad_end += wrong[:5 - len(bad_end)].tolist()
    out.append(Check(f"{name}: mask values are 0/1", bad_mask == 0,
                     f"{bad_mask} mask bytes are neither 0 nor 1" if bad_mask else f"{len(split.mask)} bytes"))
    if tok is not None:
        vocab = tok.model_vocab_size
        out.append(Check(f"{name}: token ids below the model vocabulary", top_id < vocab,
                         f"largest id {top_id}, vocabulary {vocab}" if top_id < vocab
                         else _first_problem(lambda: split.check_token_range(vocab))))
    if eot is not None:
        out.append(Check(f"{name}: every episode ends with <myPT_eot>", not bad_end,
                         f"{n_bad_end} do not (first: {bad_end}); is the index aligned with the tokens?"
                         if n_bad_end else ""))
    sup = split.supervised
    empty = np.flatnonzero(sup == 0)
    out.append(Check(f"{name}: every episode has supervised tokens", len(empty) == 0,
                     f"{len(empty)} episodes have none (first: index {empty[0]})" if len(empty)
                     else f"{int(sup.sum())} supervised of {len(split.tokens)} tokens"))
    want = ds.metadata.get(f"num_{name}_mask_tokens")
    if want is not None:
        out.append(Check(f"{name}: supervised count matches metadata", want == int(sup.sum()),
                         f"metadata {want}, mask.bin {int(sup.sum())}"))
    if split.has_sidecar:
        try:
            split.ids  # reads and cross-checks episodes.jsonl
            out.append(Check(f"{name}: episodes.jsonl matches the index", True, f"{len(split.ids)} records"))
        except DatasetError as e:
            out.append(Check(f"{name}: episodes.jsonl matches the index", False, str(e)))
    return out


def _first_problem(check: Callable[[], None]) -> str:
    """What a check says about the first bad value: the file and its position."""
    try:
        check()
    except DatasetError as e:
        return str(e)
    return ""
