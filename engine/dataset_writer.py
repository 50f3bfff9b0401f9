"""Writing a prepared dataset (layout in engine.dataset): one split's four files, streaming.

The dtypes are the on-disk format itself (MyPT's loader reads the same bytes), so they live
with the code that writes them; the reader imports them from here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .layout import EPISODES_FILE, INDEX_FILE, MASK_FILE, TOKENS_FILE

TOKEN_DTYPE = np.dtype("<u4")
MASK_DTYPE = np.dtype("u1")
INDEX_DTYPE = np.dtype("<u8")
WEIGHTS_FILE = "mask_weighted.bin"  # float32 loss weight per token (MyPT's --weighted_mask), optional
WEIGHT_DTYPE = np.dtype("<f4")


def episode_tail(episode_id: str, source: str, sha256: str, tokens: int, supervised: int,
                 meta: dict[str, Any]) -> bytes:
    """An episodes.jsonl line without its leading `{"index": N, ` (the index is known only
    when the episode lands in its split). SplitWriter.add_block puts the index in front."""
    return ('"id": %s, "source": %s, "sha256": "%s", "tokens": %d, "supervised": %d, "meta": %s}\n' % (
        _json_str(episode_id), _json_str(source), sha256, tokens, supervised,
        json.dumps(meta, ensure_ascii=False) if meta else "{}")).encode("utf-8")


_json_str = json.encoder.encode_basestring  # a JSON string literal (C speed), like json.dumps(s, ensure_ascii=False)


def split_tail(line: bytes) -> bytes:
    """The tail of an episodes.jsonl line (what follows `{"index": N, `)."""
    return line[line.index(b", ") + 2:]


class SplitWriter:
    """Appends episodes to one split's four files (five with loss weights), streaming: each call
    writes its block."""

    def __init__(self, folder: Path, weighted: bool = False) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._tokens = open(self.folder / TOKENS_FILE, "wb")
        self._mask = open(self.folder / MASK_FILE, "wb")
        self._index = open(self.folder / INDEX_FILE, "wb")
        self._lines = open(self.folder / EPISODES_FILE, "wb")
        self._weights = open(self.folder / WEIGHTS_FILE, "wb") if weighted else None
        self.episodes = 0
        self.tokens = 0
        self.supervised = 0
        self.weight_sum = 0.0  # the loss weights written (weighted splits)

    def add_block(self, ids: np.ndarray, mask: np.ndarray, lengths: np.ndarray, supervised: int,
                  tails: Sequence[bytes], weights: np.ndarray | None = None) -> None:
        """Append episodes given concatenated: their tokens and mask, each one's length, their
        supervised total, each one's episodes.jsonl tail (see episode_tail), and for a weighted
        split the tokens' loss weights."""
        if len(lengths) == 0:
            return
        pairs = np.empty((len(lengths), 2), dtype=INDEX_DTYPE)
        pairs[:, 0] = self.tokens + np.concatenate(([0], np.cumsum(lengths[:-1], dtype=np.int64)))
        pairs[:, 1] = lengths
        self._index.write(pairs.tobytes())
        self._tokens.write(np.ascontiguousarray(ids, dtype=TOKEN_DTYPE).tobytes())
        self._mask.write(np.ascontiguousarray(mask, dtype=MASK_DTYPE).tobytes())
        if self._weights is not None:
            self._weights.write(np.ascontiguousarray(weights, dtype=WEIGHT_DTYPE).tobytes())
            self.weight_sum += float(np.sum(weights, dtype=np.float64))
        k = self.episodes
        self._lines.write(b"".join(b'{"index": %d, ' % (k + j) + t for j, t in enumerate(tails)))
        self.episodes += len(lengths)
        self.tokens += int(len(ids))
        self.supervised += int(supervised)

    def close(self, sync: bool = True) -> None:
        """Close the files; `sync` makes the bytes durable before the folder is renamed into place."""
        for fh in (self._tokens, self._mask, self._index, self._lines, *([self._weights] if self._weights else [])):
            fh.flush()
            if sync:
                os.fsync(fh.fileno())
            fh.close()


def write_json(path: Path, obj: Any) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(obj, fh, indent=2, ensure_ascii=False)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
