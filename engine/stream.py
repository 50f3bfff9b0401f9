"""Token-stream datasets, for pretraining: documents as one stream of token ids, in shards.

Layout (MyPT's sharded pretraining layout, plus our metadata):

    <root>/train/shard_00000.bin   uint32 little-endian token ids; documents end with the
    <root>/val/shard_00000.bin     tokenizer's document separator (<|endoftext|> for gpt2)
    <root>/tokenizer_state.json    the tokenizer's state()
    <root>/dataset_metadata.json   format "token_stream_v1", counts, shards, the split, inputs

Training reads the stream as windows of block_size + 1 tokens at a stride of block_size (every
position is trained once per epoch). A `WindowSplit` offers the windows in the shape the trainer
already knows from an episode split: window i is "episode" i, with an id naming its shard and
offset (`shard_00003.bin:81920`), so sampling, batching, eval, the audit and resume work alike.
Shards are memory-mapped: opening a stream costs nothing, however large it is.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from . import jsonio
from .dataset_writer import TOKEN_DTYPE
from .errors import MyptError
from .layout import METADATA_FILE, SPLITS, STREAM_FORMAT, TOKENIZER_FILE
from .tokenizer import Tokenizer, from_state

SHARD_GLOB = "shard_*.bin"


class StreamError(MyptError, ValueError):
    """A token-stream dataset whose files are missing or inconsistent; names the file."""


def shard_name(k: int) -> str:
    return f"shard_{k:05d}.bin"


def is_window_id(text: str) -> bool:
    """Whether an audit id names a window of a stream (`shard_00003.bin:81920`), not an episode."""
    name, _, offset = text.rpartition(":")
    return name.startswith("shard_") and name.endswith(".bin") and offset.isdigit()


def is_stream(root: Path) -> bool:
    """Whether a folder holds a token stream (ours, or MyPT's sharded pretraining layout)."""
    root = Path(root)
    meta = root / METADATA_FILE
    if meta.exists():
        try:
            data = jsonio.read_json(meta)
        except (OSError, ValueError):
            return False
        if isinstance(data, dict) and data.get("format") == STREAM_FORMAT:
            return True
    return any((root / "train").glob(SHARD_GLOB))


@dataclass
class Shards:
    """The shards of one split, memory-mapped, with each one's first token in the whole stream."""

    folder: Path
    files: list[Path]
    maps: list[np.ndarray]
    starts: np.ndarray  # int64, len(files) + 1: cumulative token offsets

    @property
    def tokens(self) -> int:
        return int(self.starts[-1])

    def read(self, start: int, stop: int) -> np.ndarray:
        """Tokens [start, stop) of the stream (a window may span two shards)."""
        out = []
        k = int(np.searchsorted(self.starts, start, side="right")) - 1
        while start < stop:
            lo, hi = int(self.starts[k]), int(self.starts[k + 1])
            take = min(stop, hi) - start
            out.append(self.maps[k][start - lo:start - lo + take])
            start += take
            k += 1
        return out[0] if len(out) == 1 else np.concatenate(out)

    def where(self, offset: int) -> tuple[str, int]:
        """(shard file name, offset inside it) of a stream offset."""
        k = int(np.searchsorted(self.starts, offset, side="right")) - 1
        return self.files[k].name, offset - int(self.starts[k])


def open_shards(folder: Path) -> Shards | None:
    files = sorted(folder.glob(SHARD_GLOB))
    if not files:
        return None
    sizes = []
    for f in files:
        size = f.stat().st_size
        if size % TOKEN_DTYPE.itemsize:
            raise StreamError(f"{f}: {size} bytes is not a whole number of uint32 tokens (truncated?)")
        sizes.append(size // TOKEN_DTYPE.itemsize)
    maps = [np.memmap(f, dtype=TOKEN_DTYPE, mode="r") if n else np.zeros(0, TOKEN_DTYPE) for f, n in zip(files, sizes)]
    return Shards(folder, files, maps, np.concatenate(([0], np.cumsum(sizes))).astype(np.int64))


class WindowIds:
    """The id of each window, made when asked for (a stream may hold millions of windows)."""

    def __init__(self, split: "WindowSplit") -> None:
        self.split = split

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, i: int) -> str:
        name, offset = self.split.shards.where(self.split.offset(i))
        return f"{name}:{offset}"

    def __iter__(self) -> Iterator[str]:
        return (self[i] for i in range(len(self)))


class WindowHashes(WindowIds):
    def __getitem__(self, i: int) -> str:
        ids, _ = self.split.episode(i)
        return hashlib.sha256(np.ascontiguousarray(ids, dtype=TOKEN_DTYPE).tobytes()).hexdigest()


class WindowSplit:
    """A split read as windows of block_size + 1 tokens (stride block_size), shaped like an
    episode split: `episode(i)` gives window i's tokens and a mask of ones (every position trains)."""

    has_sidecar = False
    weighted = False  # every position trains with weight 1
    packed = False

    def __init__(self, name: str, shards: Shards, block_size: int) -> None:
        self.name, self.shards, self.block_size = name, shards, block_size
        self.folder = shards.folder
        n = max((shards.tokens - 1) // block_size, 0)
        self.lengths = np.full(n, block_size + 1, dtype=np.int64)
        self.supervised = np.full(n, block_size, dtype=np.int64)
        self.ids = WindowIds(self)
        self.hashes = WindowHashes(self)

    def __len__(self) -> int:
        return len(self.lengths)

    def __repr__(self) -> str:
        return f"WindowSplit({self.name!r}, {len(self)} windows of {self.block_size + 1}, {self.shards.tokens} tokens)"

    @property
    def families(self) -> list[str]:
        return ["all"] * len(self)

    def offset(self, i: int) -> int:
        if not 0 <= i < len(self):
            raise IndexError(f"{self.name}: window {i} out of range (0..{len(self) - 1})")
        return i * self.block_size

    def episode(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        start = self.offset(i)
        ids = self.shards.read(start, start + self.block_size + 1)
        return ids, np.ones(len(ids), dtype=np.uint8)

    def meta(self, i: int) -> dict[str, Any]:
        return {"index": i, "id": self.ids[i], "source": None, "sha256": None, "tokens": self.block_size + 1,
                "supervised": self.block_size, "meta": {}}

    def check_token_range(self, vocab_size: int) -> None:
        """Every token id below `vocab_size` (StreamError naming the shard and offset otherwise)."""
        for f, tokens in zip(self.shards.files, self.shards.maps):
            for start in range(0, len(tokens), 1 << 22):
                chunk = np.asarray(tokens[start:start + (1 << 22)])
                bad = np.flatnonzero(chunk >= vocab_size)
                if len(bad):
                    raise StreamError(f"{f}: token {start + int(bad[0])} is id {int(chunk[bad[0]])}, outside the "
                                      f"model's vocabulary of {vocab_size} ids (a damaged file, or another tokenizer)")


class StreamDataset:
    """A token-stream dataset, opened and checked (see open_stream)."""

    kind = "pretrain"

    def __init__(self, root: Path, metadata: dict[str, Any], tokenizer_state: dict[str, Any],
                 shards: dict[str, Shards | None]) -> None:
        self.root, self.metadata, self.tokenizer_state, self._shards = root, metadata, tokenizer_state, shards

    def tokenizer(self) -> Tokenizer:
        return from_state(self.tokenizer_state)

    def tokens(self, split: str) -> int:
        shards = self._shards.get(split)
        return shards.tokens if shards is not None else 0

    def windows(self, split: str, block_size: int) -> WindowSplit | None:
        """The split as training windows; None when it holds too few tokens for one."""
        if split not in SPLITS:
            raise KeyError(f"unknown split {split!r}: choose {' or '.join(SPLITS)}")
        shards = self._shards.get(split)
        if shards is None:
            return None
        ws = WindowSplit(split, shards, block_size)
        return ws if len(ws) else None


def open_stream(path: str | Path) -> StreamDataset:
    """Open a token-stream dataset; StreamError naming the file when a part is missing or damaged."""
    root = Path(path)
    meta_path = root / METADATA_FILE
    try:
        metadata = jsonio.read_json_object(meta_path, "dataset metadata") if meta_path.exists() else {}
        state_path = root / TOKENIZER_FILE
        state = jsonio.read_json_object(state_path, "tokenizer state") if state_path.exists() else {}
    except (OSError, ValueError) as e:
        raise StreamError(str(e)) from None
    if not state:
        kind = metadata.get("tokenization")
        if kind != "gpt2":
            raise StreamError(f"{root / TOKENIZER_FILE}: missing (the stream's tokenizer cannot be known without it)")
        state = {"tokenization": "gpt2"}
    try:
        from_state(state)
    except (MyptError, TypeError, ValueError) as e:
        raise StreamError(f"{root / TOKENIZER_FILE}: {e}") from None
    shards = {name: open_shards(root / name) for name in SPLITS}
    if shards["train"] is None:
        raise StreamError(f"{root / 'train'}: no {SHARD_GLOB} files: not a token-stream dataset")
    for name in SPLITS:
        want = metadata.get(f"num_{name}_tokens")
        have = shards[name].tokens if shards[name] is not None else 0
        if want is not None and want != have:
            raise StreamError(f"{root / name}: {have} tokens in its shards, but {METADATA_FILE} says {want}")
    return StreamDataset(root, metadata, state, shards)
