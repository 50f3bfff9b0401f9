"""Reading the prepared dataset `episode_indexed_sft_v1`: open it, check its files agree, read episodes.

Layout (MyPT-compatible binaries plus our sidecars):

    <root>/<split>/tokens.bin      uint32 little-endian, the episodes concatenated
    <root>/<split>/mask.bin        uint8 0/1 loss mask, aligned with tokens.bin
    <root>/<split>/episodes.idx    uint64 little-endian (start, length) pairs, 16 bytes an episode
    <root>/<split>/episodes.jsonl  one line an episode: index, id, source, sha256, tokens,
                                   supervised, meta (ours; MyPT datasets have none)
    <root>/tokenizer_state.json    the tokenizer's state()
    <root>/dataset_metadata.json   format/schema, counts (MyPT's key names), options, inputs

A split with no episodes has no folder (MyPT's loader cannot memory-map an empty file). MyPT's
sharded (shard_*/) and packed (segment_ids.bin) splits and its loss weights (mask_weighted.bin) are
read too: engine.dataset_store.
Reading memory-maps the tokens and the mask, so opening a dataset costs its index only.
The writer is engine.dataset_writer, the full integrity checks engine.dataset_checks.
"""

from __future__ import annotations

import hashlib
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

# The format's dtypes and the writer stay importable from here: engine.prepare writes through `dataset.X`.
from . import jsonio
from .dataset_store import WEIGHT_DTYPE, WEIGHTS_FILE, Concat, DatasetError, Part, open_files
from .dataset_writer import INDEX_DTYPE as INDEX_DTYPE
from .dataset_writer import MASK_DTYPE, TOKEN_DTYPE
from .dataset_writer import SplitWriter as SplitWriter
from .dataset_writer import episode_tail as episode_tail
from .dataset_writer import split_tail as split_tail
from .dataset_writer import write_json as write_json
from .episode import Episode
from .layout import DATASET_FORMAT as FORMAT
from .layout import EPISODES_FILE, INDEX_FILE, MASK_FILE, METADATA_FILE, SPLITS, TOKENIZER_FILE, TOKENS_FILE
from .tokenizer import Tokenizer, TokenizerError, from_state

_CHUNK_TOKENS = 1 << 22  # whole-split scans read about this many tokens at a time


def _family(meta: dict[str, Any]) -> str:
    """An episode's skill family from its meta: the same rule as Episode.family."""
    return Episode(id="", messages=(), meta=meta).family


class EpisodeSplit:
    """One split (train or val): memory-mapped tokens and mask (and loss weights), the index, and
    the sidecar. MyPT's shards and packed rows read as one split of episodes (engine.dataset_store)."""

    def __init__(self, name: str, folder: Path, tokens: np.ndarray | Concat, mask: np.ndarray | Concat,
                 index: np.ndarray, weights: np.ndarray | Concat | None = None, parts: list[Part] | None = None,
                 packed: bool = False) -> None:
        self.name = name
        self.folder = folder
        self.tokens = tokens  # np.memmap (or the memmaps of the shards), uint32
        self.mask = mask  # ... uint8 0/1
        self.weights = weights  # ... float32 loss weights (mask_weighted.bin), or None
        self.index = index  # (N, 2): start, length
        self.starts = index[:, 0].astype(np.int64)
        self.lengths = index[:, 1].astype(np.int64)
        self.parts = parts or [Part(folder, 0, len(tokens))]
        self.packed = packed  # read from MyPT's packed rows (segment_ids.bin)

    def __len__(self) -> int:
        return len(self.index)

    def __repr__(self) -> str:
        return f"EpisodeSplit({self.name!r}, {len(self)} episodes, {len(self.tokens)} tokens)"

    @property
    def has_sidecar(self) -> bool:
        """True when episodes.jsonl exists (ours); a MyPT dataset has none."""
        return len(self.parts) == 1 and not self.packed and (self.folder / EPISODES_FILE).exists()

    @property
    def weighted(self) -> bool:
        """True when the split has per-token loss weights (prepared with --weighted_mask)."""
        return self.weights is not None

    def weights_of(self, i: int) -> np.ndarray:
        """The loss weights of episode i (float32; 0 where the mask is 0)."""
        s, length = int(self.starts[i]), int(self.lengths[i])
        return self.weights[s:s + length]

    def episode(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """The token ids and the loss mask of episode i (views into the memory maps)."""
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"{self.name}: episode index {i} out of range (0..{n - 1})")
        s, length = int(self.starts[i]), int(self.lengths[i])
        return self.tokens[s:s + length], self.mask[s:s + length]

    def chunks(self, max_tokens: int = _CHUNK_TOKENS, second: tuple[str, np.dtype] = (MASK_FILE, MASK_DTYPE)
               ) -> Iterator[tuple[int, int, int, np.ndarray, np.ndarray]]:
        """(first episode, end episode, token base, tokens, mask) over the split, a bounded
        number of tokens at a time (`second` reads the weights instead of the mask). Whole-split
        scans read the files rather than the memory maps, so they stay flat in memory (mapped
        pages would stay resident). An episode never spans two parts (shards)."""
        part_ends = np.searchsorted(self.starts, [p.base + p.size for p in self.parts], side="left")
        lo = 0
        for part, end in zip(self.parts, part_ends):
            yield from self._part_chunks(part, lo, int(end), max_tokens, second)
            lo = int(end)

    def _part_chunks(self, part: Part, lo: int, n: int, max_tokens: int, second: tuple[str, np.dtype]
                     ) -> Iterator[tuple[int, int, int, np.ndarray, np.ndarray]]:
        ends = self.starts + self.lengths
        name, dtype = second
        with open(part.folder / TOKENS_FILE, "rb") as tf, open(part.folder / name, "rb") as mf:
            while lo < n:
                hi, base, top = lo + 1, int(self.starts[lo]), int(ends[lo])
                while hi < n and int(ends[hi]) - base <= max_tokens and self.starts[hi] >= base:
                    top = max(top, int(ends[hi]))
                    hi += 1
                tf.seek((base - part.base) * TOKEN_DTYPE.itemsize)
                mf.seek((base - part.base) * dtype.itemsize)
                yield (lo, hi, base, np.fromfile(tf, dtype=TOKEN_DTYPE, count=top - base),
                       np.fromfile(mf, dtype=dtype, count=top - base))
                lo = hi

    def _per_episode(self, second: tuple[str, np.dtype], dtype: type) -> np.ndarray:
        out = np.zeros(len(self), dtype=dtype)
        for lo, hi, base, _, m in self.chunks(second=second):
            cs = np.concatenate(([0], np.cumsum(m, dtype=dtype)))
            out[lo:hi] = cs[self.starts[lo:hi] + self.lengths[lo:hi] - base] - cs[self.starts[lo:hi] - base]
        return out

    @cached_property
    def supervised(self) -> np.ndarray:
        """Supervised (mask = 1) tokens per episode, int64, computed from mask.bin."""
        return self._per_episode((MASK_FILE, MASK_DTYPE), np.int64)

    @cached_property
    def weight_sums(self) -> np.ndarray:
        """The loss weights per episode summed (float64), or the supervised counts when unweighted."""
        if self.weights is None:
            return self.supervised.astype(np.float64)
        return self._per_episode((WEIGHTS_FILE, WEIGHT_DTYPE), np.float64)

    # -- the sidecar (episodes.jsonl), read on first use ------------------------------------
    @cached_property
    def _sidecar(self) -> tuple[list[str], list[str], list[str], np.ndarray]:
        path = self.folder / EPISODES_FILE
        n = len(self)
        if not path.exists():
            return [f"{self.name}:{i}" for i in range(n)], [], ["all"] * n, np.zeros(0, dtype=np.int64)
        ids: list[str] = []
        hashes: list[str] = []
        families: list[str] = []
        offsets = np.zeros(n, dtype=np.int64)
        interned: dict[str, str] = {}
        pos = 0
        with open(path, "rb") as fh:
            for k, raw in enumerate(fh):
                if k >= n:
                    raise DatasetError(f"{path}: more lines than the {n} episodes in {INDEX_FILE}")
                try:
                    rec = jsonio.loads(raw)
                    idx, tokens, meta = rec["index"], rec["tokens"], rec.get("meta") or {}
                    wrong = [key for key, ok in (("id", type(rec["id"]) in (str, int)),
                                                 ("sha256", isinstance(rec["sha256"], str)),
                                                 ("meta", isinstance(meta, dict))) if not ok]
                except (ValueError, KeyError, TypeError, AttributeError) as e:
                    raise DatasetError(f"{path}:{k + 1}: not an episode record ({e})") from None
                if wrong:
                    raise DatasetError(f"{path}:{k + 1}: not an episode record (\"{wrong[0]}\" has the wrong type)")
                ids.append(str(rec["id"]))
                hashes.append(rec["sha256"])
                if type(idx) is not int or type(tokens) is not int or idx != k or tokens != self.lengths[k]:
                    raise DatasetError(f"{path}:{k + 1}: says index {idx} with {tokens} tokens, but "
                                       f"{INDEX_FILE} has episode {k} with {self.lengths[k]} tokens")
                fam = _family(meta)
                families.append(interned.setdefault(fam, fam))
                offsets[k] = pos
                pos += len(raw)
        if len(ids) != n:
            raise DatasetError(f"{path}: {len(ids)} lines for the {n} episodes in {INDEX_FILE} (truncated?)")
        return ids, hashes, families, offsets

    @property
    def ids(self) -> list[str]:
        """Episode ids; "<split>:<index>" for a dataset without episodes.jsonl."""
        return self._sidecar[0]

    @cached_property
    def hashes(self) -> list[str]:
        """Content sha256 of each episode (of the conversation, from episodes.jsonl). A dataset
        without episodes.jsonl gets the sha256 of each episode's tokens.bin bytes instead."""
        if self.has_sidecar:
            return self._sidecar[1]
        return [hashlib.sha256(np.ascontiguousarray(self.episode(i)[0], dtype=TOKEN_DTYPE).tobytes()).hexdigest()
                for i in range(len(self))]

    @property
    def families(self) -> list[str]:
        """Skill family of each episode (meta.family/skill/category/task), "all" when unknown."""
        return self._sidecar[2]

    def meta(self, i: int) -> dict[str, Any]:
        """The episode's record from episodes.jsonl (id, source, sha256, ..., meta); a dataset
        without the sidecar gives what the binaries know."""
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"{self.name}: episode index {i} out of range (0..{n - 1})")
        i %= n
        if not self.has_sidecar:
            return {"index": i, "id": self.ids[i], "source": None, "sha256": None,
                    "tokens": int(self.lengths[i]), "supervised": int(self.supervised[i]), "meta": {}}
        with open(self.folder / EPISODES_FILE, "rb") as fh:
            fh.seek(int(self._sidecar[3][i]))
            line = fh.readline()
        try:
            rec = jsonio.loads(line)
        except ValueError as e:
            raise DatasetError(f"{self.folder / EPISODES_FILE}:{i + 1}: not an episode record ({e})") from None
        if not isinstance(rec, dict):
            raise DatasetError(f"{self.folder / EPISODES_FILE}:{i + 1}: not an episode record")
        return rec

    def check_token_range(self, vocab_size: int) -> None:
        """Every token id below `vocab_size` (DatasetError naming the file and position otherwise):
        an id past the embedding would crash the first step, or worse, index the wrong row."""
        for part in self.parts:
            for start in range(0, part.size, _CHUNK_TOKENS):
                chunk = np.asarray(self.tokens[part.base + start:part.base + min(start + _CHUNK_TOKENS, part.size)])
                bad = np.flatnonzero(chunk >= vocab_size)
                if len(bad):
                    raise DatasetError(f"{part.folder / TOKENS_FILE}: token {start + int(bad[0])} is id "
                                       f"{int(chunk[bad[0]])}, outside the model's vocabulary of {vocab_size} ids "
                                       "(a damaged file, or another tokenizer)")

    def check_mask(self) -> None:
        """Every mask byte 0 or 1 (DatasetError naming the file and byte otherwise)."""
        at = _first(self.mask, lambda chunk: chunk > 1)
        if at is not None:
            raise DatasetError(f"{self.folder / MASK_FILE}: byte {at} is {int(self.mask[at])}, but a loss mask "
                               "holds only 0 and 1 (a damaged file)")

    def find(self, episode_id: str) -> int | None:
        """Index of the episode with this id, or None."""
        try:
            return self.ids.index(episode_id)
        except ValueError:
            return None

    def locate(self, wanted: str) -> int | None:
        """What a user typed to name an episode: an id match wins, else a number is an index."""
        found = self.find(wanted)
        if found is not None:
            return found
        try:
            i = int(wanted)
        except ValueError:
            return None
        return i if 0 <= i < len(self) else None


def _first(values: np.ndarray, bad: Callable[[np.ndarray], np.ndarray]) -> int | None:
    """Position of the first value where `bad` holds, scanning a bounded chunk at a time."""
    for start in range(0, len(values), _CHUNK_TOKENS):
        hits = np.flatnonzero(bad(np.asarray(values[start:start + _CHUNK_TOKENS])))
        if len(hits):
            return start + int(hits[0])
    return None


class Dataset:
    """A prepared dataset, opened and checked for consistency (see open_dataset)."""

    def __init__(self, root: Path, metadata: dict[str, Any], tokenizer_state: dict[str, Any],
                 splits: dict[str, EpisodeSplit | None]) -> None:
        self.root = root
        self.metadata = metadata
        self.tokenizer_state = tokenizer_state
        self._splits = splits

    def __repr__(self) -> str:
        parts = ", ".join(f"{k}={len(v) if v else 0}" for k, v in self._splits.items())
        return f"Dataset({str(self.root)!r}, {parts})"

    def split(self, name: str) -> EpisodeSplit | None:
        """"train" or "val"; None when the split is absent or empty."""
        if name not in SPLITS:
            raise KeyError(f"unknown split {name!r}: choose {' or '.join(SPLITS)}")
        return self._splits.get(name)

    def tokenizer(self) -> Tokenizer:
        return from_state(self.tokenizer_state)


def open_dataset(path: str | Path) -> Dataset:
    """Open a prepared dataset; raises DatasetError naming the path when it is not one, or when
    a file is missing, truncated or inconsistent with the others."""
    root = Path(path)
    if not root.exists():
        raise DatasetError(f"{root}: no such folder")
    if not root.is_dir():
        raise DatasetError(f"{root}: not a folder (a prepared dataset is a folder made by `mypt prepare`)")
    metadata = _read_metadata(root)
    if not metadata and not (root / "train").is_dir():
        raise DatasetError(f"{root} is not a prepared dataset: it has no {METADATA_FILE} and no train/ folder "
                           f"(make one with `mypt prepare chat --input FILE --output {root}`)")
    splits = {name: open_split(root, name, metadata) for name in SPLITS}
    if splits["train"] is None and not (metadata.get("val_only") and splits["val"] is not None):
        raise DatasetError(f"{root / 'train'}: no training episodes (missing {TOKENS_FILE} or {INDEX_FILE}?)")
    state = _read_tokenizer_state(root, metadata)
    return Dataset(root, metadata, state, splits)


def _read_json(path: Path) -> Any:
    try:
        return jsonio.read_json(path)
    except (OSError, ValueError) as e:
        raise DatasetError(f"{path}: cannot be read as JSON ({e})") from None


def _read_metadata(root: Path) -> dict[str, Any]:
    path = root / METADATA_FILE
    if not path.exists():
        return {}
    meta = _read_json(path)
    if not isinstance(meta, dict):
        raise DatasetError(f"{path}: expected a JSON object")
    fmt = meta.get("format", meta.get("schema"))
    if fmt != FORMAT:
        raise DatasetError(f"{path}: format {fmt!r} is not {FORMAT!r}")
    return meta


def _read_tokenizer_state(root: Path, metadata: dict[str, Any]) -> dict[str, Any]:
    path = root / TOKENIZER_FILE
    if path.exists():
        state = _read_json(path)
        if not isinstance(state, dict):
            raise DatasetError(f"{path}: expected a JSON object")
    elif metadata.get("tokenization") == "gpt2":
        state = {"tokenization": "gpt2"}  # gpt2 needs no saved vocabulary
    else:
        raise DatasetError(f"{path}: missing (the dataset's tokenizer cannot be known without it)")
    try:
        from_state(state)
    except (TokenizerError, TypeError, ValueError) as e:
        raise DatasetError(f"{path}: {e}") from None
    return state


def open_split(root: Path, name: str, metadata: dict[str, Any] | None = None) -> EpisodeSplit | None:
    """One split folder of a dataset (or its shard_* folders), checked; None when absent or empty."""
    folder = root / name
    files = open_files(folder, metadata or {}, name)
    if files is None:
        return None
    return EpisodeSplit(name, folder, files.tokens, files.mask, files.index, files.weights, files.parts, files.packed)


# -- showing an episode ------------------------------------------------------------------------

def mask_segments(ids: np.ndarray, mask: np.ndarray, tok: Tokenizer) -> list[tuple[str, bool]]:
    """The decoded episode as runs of (text, trained): what a mask view highlights."""
    out: list[tuple[str, bool]] = []
    ids = np.asarray(ids)
    m = np.asarray(mask).astype(bool)
    if len(ids) == 0:
        return out
    cuts = np.flatnonzero(m[1:] != m[:-1]) + 1
    for a, b in zip(np.concatenate(([0], cuts)), np.concatenate((cuts, [len(ids)]))):
        out.append((tok.decode(ids[a:b].tolist()), bool(m[a])))
    return out
