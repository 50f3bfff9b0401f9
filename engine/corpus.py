"""`mypt prepare pretrain`: plain text, folders of it, or JSONL with a text field -> a token
stream (engine.stream), streaming and atomically.

Documents: a JSONL line's text field is one document; in a text file (.txt, .md, anything not
.jsonl/.json), a document is a paragraph: lines up to a blank line. Each document is encoded and
ends with the tokenizer's document separator (<|endoftext|> for gpt2). The split is by document
and seeded: a document goes to val when a hash of (seed, its position) falls below val_split, so
it needs no count in advance and the same input and seed always give the same split. Shards of
`tokens_per_shard` tokens are written as they fill: memory does not grow with the input.

Bad input never aborts the job: a line that is not UTF-8, holds binary data (NUL bytes), is not
JSON or has no text is skipped and reported as `file:line: reason`. The dataset is written into a
temp folder beside the output and renamed into place only when complete.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from . import jsonio
from .atomic import replace_folder
from .dataset_writer import TOKEN_DTYPE
from .errors import MyptError
from .layout import METADATA_FILE, STREAM_FORMAT, TEMP_PREFIX, TOKENIZATIONS, TOKENIZER_FILE
from .provenance import file_sha256
from .stream import is_stream, shard_name
from .tokenizer import Tokenizer, load_tokenizer
from .walk import files_under

DEFAULT_TOKENS_PER_SHARD = 10_000_000  # MyPT's default
JSON_SUFFIXES = (".jsonl", ".json")
KEEP_SKIPPED = 100


class CorpusError(MyptError):
    """The pretraining prepare cannot be done (bad options, no usable text, an existing output)."""


@dataclass
class CorpusOptions:
    input: str | Path
    output: str | Path
    tokenization: str = "gpt2"
    val_split: float = 0.05
    seed: int = 1337
    tokens_per_shard: int = DEFAULT_TOKENS_PER_SHARD
    text_field: str = "text"  # the field of a JSONL line that holds the document
    overwrite: bool = False


@dataclass
class CorpusReport:
    output: Path
    tokens: dict[str, int]
    documents: dict[str, int]
    shards: dict[str, int]
    skipped: list[str]  # "file:line: reason" (the first KEEP_SKIPPED)
    skipped_total: int
    seconds: float
    metadata: dict = field(repr=False)


@dataclass(frozen=True)
class Document:
    text: str
    where: str  # file:line of its first line


def corpus_files(path: Path) -> list[Path]:
    """The files an input names: itself, or every file under a folder but hidden ones (a subfolder
    that cannot be read is an OSError that names it, never a silent skip)."""
    if path.is_dir():
        files = files_under(path, lambda f: not f.name.startswith("."))
        if not files:
            raise CorpusError(f"{path}: the folder holds no files")
        return files
    if not path.exists():
        raise CorpusError(f"{path}: no such file or folder")
    return [path]


def read_documents(path: Path, text_field: str, skip: Callable[[str], None]) -> Iterator[Document]:
    """Every document of every input file, in order; bad lines go to `skip` as `file:line: reason`."""
    root = Path(path)
    for f in corpus_files(root):
        label = f.relative_to(root).as_posix() if root.is_dir() else f.name
        reader = _json_lines if f.suffix in JSON_SUFFIXES else _paragraphs
        yield from reader(f, label, text_field, skip)


def _lines(f: Path, label: str, skip: Callable[[str], None]) -> Iterator[tuple[int, str]]:
    with open(f, "rb") as fh:
        for n, raw in enumerate(fh, 1):
            if b"\0" in raw:
                skip(f"{label}:{n}: binary data (NUL bytes), not text")
                continue
            try:
                yield n, raw.decode("utf-8-sig" if n == 1 else "utf-8")
            except UnicodeDecodeError as e:
                skip(f"{label}:{n}: not valid UTF-8 (byte {e.start + 1} of the line)")


def _paragraphs(f: Path, label: str, text_field: str, skip: Callable[[str], None]) -> Iterator[Document]:
    lines: list[str] = []
    first = 0
    for n, line in _lines(f, label, skip):
        if line.strip():
            first = first or n
            lines.append(line)
        elif lines:
            yield Document("".join(lines).rstrip("\n"), f"{label}:{first}")
            lines, first = [], 0
    if lines:
        yield Document("".join(lines).rstrip("\n"), f"{label}:{first}")


def _json_lines(f: Path, label: str, text_field: str, skip: Callable[[str], None]) -> Iterator[Document]:
    for n, line in _lines(f, label, skip):
        if not line.strip():
            continue
        try:
            obj = jsonio.loads(line)
        except ValueError as e:
            skip(f"{label}:{n}: not JSON ({e})")
            continue
        text = obj.get(text_field) if isinstance(obj, dict) else None
        if not isinstance(text, str) or not text.strip():
            skip(f"{label}:{n}: no text in field {text_field!r}")
            continue
        yield Document(text, f"{label}:{n}")


class ShardWriter:
    """Appends tokens to numbered shards of `per_shard` tokens in a folder."""

    def __init__(self, folder: Path, per_shard: int) -> None:
        self.folder, self.per_shard = folder, per_shard
        self.folder.mkdir(parents=True)
        self.shards = 0
        self.tokens = 0
        self.documents = 0
        self._fh = None
        self._in_shard = 0

    def add(self, ids: np.ndarray) -> None:
        self.documents += 1
        at = 0
        while at < len(ids):
            if self._fh is None or self._in_shard == self.per_shard:
                self._next()
            take = min(self.per_shard - self._in_shard, len(ids) - at)
            self._fh.write(ids[at:at + take].astype(TOKEN_DTYPE).tobytes())
            at, self._in_shard, self.tokens = at + take, self._in_shard + take, self.tokens + take

    def _next(self) -> None:
        self.close()
        self._fh = open(self.folder / shard_name(self.shards), "wb")
        self.shards += 1
        self._in_shard = 0

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def goes_to_val(seed: int, k: int, val_split: float) -> bool:
    """The seeded, streaming split: document k is val when its hash falls below val_split."""
    h = hashlib.blake2b(f"{seed}:{k}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "little") / 2**64 < val_split


def prepare_corpus(opts: CorpusOptions, on_progress: Callable[[int], None] | None = None,
                   should_stop: Callable[[], bool] | None = None) -> CorpusReport:
    """Prepare the token stream `opts` describes; CorpusError (nothing written) when it cannot."""
    started = time.perf_counter()
    out, src = Path(opts.output), Path(opts.input)
    _check(opts, out, src)
    tmp = out.parent / f"{TEMP_PREFIX}{out.name}.{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        (tmp / "dataset").mkdir(parents=True)
        report = _write(opts, src, tmp / "dataset", on_progress or (lambda n: None), should_stop or (lambda: False))
        replace_folder(tmp / "dataset", out, aside=tmp / "old")
        report.output, report.seconds = out, time.perf_counter() - started
        return report
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _check(opts: CorpusOptions, out: Path, src: Path) -> None:
    if opts.tokenization not in TOKENIZATIONS:
        raise CorpusError(f"unknown tokenization {opts.tokenization!r}: choose gpt2 or char")
    if not 0 <= opts.val_split < 1:
        raise CorpusError(f"--val_split must be at least 0 and below 1, got {opts.val_split}")
    if opts.tokens_per_shard < 1:
        raise CorpusError(f"--tokens_per_shard must be at least 1, got {opts.tokens_per_shard}")
    corpus_files(src)
    if src.is_dir() and out.resolve().is_relative_to(src.resolve()):
        raise CorpusError(f"the output {out} is inside the --input folder {src}: choose an output beside it")
    if out.exists():
        if not out.is_dir() or not opts.overwrite:
            raise CorpusError(f"{out} already exists: use --overwrite to replace it")
        if any(out.iterdir()) and not (out / METADATA_FILE).exists() and not is_stream(out):
            raise CorpusError(f"{out} exists and is not a prepared dataset: refusing to replace it")


def _tokenizer(opts: CorpusOptions, src: Path) -> Tokenizer:
    if opts.tokenization != "char":
        return load_tokenizer(opts.tokenization)
    chars: set[str] = set()
    for doc in read_documents(src, opts.text_field, lambda _: None):
        chars.update(doc.text)
    return load_tokenizer("char", chars)


def _write(opts: CorpusOptions, src: Path, dest: Path, progress: Callable[[int], None],
           should_stop: Callable[[], bool]) -> CorpusReport:
    tok = _tokenizer(opts, src)
    sep = np.array([tok.doc_sep_id], dtype=np.int64)
    writers = {"train": ShardWriter(dest / "train", opts.tokens_per_shard),
               "val": ShardWriter(dest / "val", opts.tokens_per_shard)}
    skipped: list[str] = []
    total_skipped = 0

    def skip(line: str) -> None:
        nonlocal total_skipped
        total_skipped += 1
        if len(skipped) < KEEP_SKIPPED:
            skipped.append(line)

    for k, doc in enumerate(read_documents(src, opts.text_field, skip)):
        split = "val" if goes_to_val(opts.seed, k, opts.val_split) else "train"
        writers[split].add(np.concatenate((np.asarray(tok.encode(doc.text), dtype=np.int64), sep)))
        if k % 1000 == 0:
            progress(k)
            if should_stop():
                raise CorpusError("prepare cancelled: nothing was written")
    for w in writers.values():
        w.close()
    if writers["train"].tokens == 0:
        raise CorpusError(f"no usable text in {src}" + (f" (first problem: {skipped[0]})" if skipped else ""))
    if writers["val"].tokens == 0:
        shutil.rmtree(dest / "val")
    meta = _metadata(opts, tok, src, writers, skipped, total_skipped)
    (dest / TOKENIZER_FILE).write_text(json.dumps(tok.state(), indent=2) + "\n", encoding="utf-8")
    (dest / METADATA_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return CorpusReport(Path(opts.output), {s: w.tokens for s, w in writers.items()},
                        {s: w.documents for s, w in writers.items()}, {s: w.shards for s, w in writers.items()},
                        skipped, total_skipped, 0.0, meta)


def _metadata(opts: CorpusOptions, tok: Tokenizer, src: Path, writers: dict[str, ShardWriter],
              skipped: list[str], total_skipped: int) -> dict:
    files = [{"file": f.name, "sha256": file_sha256(f)} for f in corpus_files(src)]
    train, val = writers["train"], writers["val"]
    return {
        "format": STREAM_FORMAT, "schema": STREAM_FORMAT, "kind": "pretrain",
        "tokenization": tok.kind, "vocab_size": tok.model_vocab_size, "document_separator": tok.doc_sep_id,
        "num_train_tokens": train.tokens, "num_val_tokens": val.tokens,
        "num_train_documents": train.documents, "num_val_documents": val.documents,
        "tokens_per_shard": opts.tokens_per_shard, "train_shards": train.shards, "val_shards": val.shards,
        "total_tokens": train.tokens + val.tokens, "total_shards": train.shards + val.shards,  # MyPT's keys
        "seed": opts.seed, "val_split": opts.val_split, "text_field": opts.text_field,
        "inputs": [{"path": str(src.resolve()), "files": files}],
        "skipped": {"total": total_skipped, "first": skipped},
        "created_by": "mypt prepare pretrain", "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }

