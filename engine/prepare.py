"""The prepare job: gold episodes (JSONL files or a folder) -> a prepared dataset (engine.dataset).

Called by `mypt prepare chat|tool` and by the app's Data screen (in a worker thread), so it
never prints: progress goes to `on_progress(done, total_or_None)`, cancellation comes from
`should_stop()`, and the result is a PrepareReport.

How it stays atomic and flat in memory:
- everything is written into a temp folder beside the output and renamed into place at the
  end; a failure, a cancel or a ctrl+c removes the temp folder and leaves any old output as it was;
- pass 1 streams each input through the renderer into a work split (tokens, mask, index and
  episodes.jsonl on disk), keeping only a fixed-size record per episode in memory (24 bytes
  in array columns); a large JSONL input is rendered by a few worker processes, a chunk of
  lines each, with at most a few chunks in flight;
- duplicate ids are found afterwards from 64-bit id hashes (sorted; candidates confirmed by
  reading their ids back), then the seeded split is drawn over the valid episodes, and pass 2
  copies the work split into train/ and val/ a bounded chunk at a time.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import math
import multiprocessing
import os
import shutil
import signal
import threading
import time
from array import array
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Union

import numpy as np

from . import dataset as dsf
from .atomic import replace_folder
from .episode import Episode, EpisodeError, SkipReason, Source, input_files, parse_line, read_episodes
from .render import SystemPrompt, render_episode
from .runs import pid_alive
from .tokenizer import CharTokenizer, Tokenizer, from_state, gpt2
from .layout import KINDS, TEMP_PREFIX, TOKENIZATIONS

DEFAULT_SEED = 1337
DEFAULT_VAL_SPLIT = 0.1
KEEP_SKIPPED = 1000  # skipped episodes listed by message (all are counted)
PARALLEL_MIN_LINES = 20_000  # smaller inputs render in-process (starting workers costs ~1 s)
_CHUNK_EPISODES = 1024  # episodes rendered per chunk (and per worker task)
_COPY_TOKENS = 1 << 20  # pass 2 copies about this many tokens at a time
_COPY_WINDOW = 1 << 14  # ... reading the work index this many episodes at a time


class PrepareError(Exception):
    """The job cannot be done (bad options, bad input, an existing output, --strict)."""


class PrepareCancelled(PrepareError):
    """should_stop() asked the job to stop; nothing was written."""


@dataclass
class PrepareOptions:
    input: str | Path
    output: str | Path
    kind: str = "chat"  # chat | tool (tool: the set must contain tool calls; usage is reported)
    tokenization: str = "gpt2"  # gpt2 | char
    val_split: float = DEFAULT_VAL_SPLIT  # ignored with val_file
    val_file: str | Path | None = None  # a separate validation input: no random split
    seed: int = DEFAULT_SEED
    system_prompt: str | None = None  # for episodes that have no system text of their own
    no_system_prompt: bool = False  # drop every system block
    strict: bool = False  # the first invalid episode fails the job
    overwrite: bool = False  # replace an existing prepared dataset at output
    workers: int | None = None  # processes rendering pass 1; None: auto (several for large JSONL inputs)


@dataclass
class FileCount:
    input: str  # "input" or "val_file"
    file: str  # the file's label in episode sources
    episodes: int = 0  # valid episodes kept
    skipped: int = 0


@dataclass
class PrepareReport:
    output: Path
    kind: str
    tokenization: str
    train_episodes: int
    val_episodes: int
    train_tokens: int
    val_tokens: int
    train_supervised: int
    val_supervised: int
    skipped_total: int
    skipped: list[str]  # "file:line: reason", in input order (the first KEEP_SKIPPED)
    skipped_by_reason: dict[str, int]
    overlap: int  # val episodes whose content (sha256) also occurs in train
    overlap_examples: list[str]  # ids of such val episodes (a few)
    files: list[FileCount]
    warnings: list[str]
    seconds: float
    metadata: dict = field(repr=False)

    @property
    def episodes(self) -> int:
        return self.train_episodes + self.val_episodes

    @property
    def train_mask_ratio(self) -> float:
        return self.train_supervised / self.train_tokens if self.train_tokens else 0.0

    @property
    def val_mask_ratio(self) -> float:
        return self.val_supervised / self.val_tokens if self.val_tokens else 0.0


# -- the job -----------------------------------------------------------------------------------

Progress = Callable[[int, Union[int, None]], None]


def prepare(opts: PrepareOptions, on_progress: Progress | None = None,
            should_stop: Callable[[], bool] | None = None) -> PrepareReport:
    """Prepare the dataset described by `opts`; raises PrepareError (nothing written) on failure."""
    started = time.perf_counter()
    _check_options(opts)
    out = Path(opts.output)
    _remove_stale_temps(out)
    _check_output(out, opts.overwrite)
    sources = [("input", Path(opts.input))]
    if opts.val_file is not None:
        sources.append(("val_file", Path(opts.val_file)))
    for role, path in sources:
        try:
            input_files(path)
        except FileNotFoundError as e:
            raise PrepareError(str(e)) from None
        if path.is_dir() and out.resolve().is_relative_to(path.resolve()):
            flag = "--input" if role == "input" else "--val_file"
            raise PrepareError(f"the output {out} is inside the {flag} folder {path}: "
                               "it would be read as input next time; choose an output beside it")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f"{TEMP_PREFIX}{out.name}.{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        tmp.mkdir()
        report = _Job(opts, sources, tmp, on_progress, should_stop).run()
        replace_folder(tmp / "dataset", out, aside=tmp / "old")  # an old output is replaced only now
        report.output = out
        report.seconds = time.perf_counter() - started
        return report
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _check_options(opts: PrepareOptions) -> None:
    if opts.kind not in KINDS:
        raise PrepareError(f"unknown kind {opts.kind!r}: choose chat or tool")
    if opts.tokenization not in TOKENIZATIONS:
        raise PrepareError(f"unknown tokenization {opts.tokenization!r}: choose gpt2 or char")
    if not (isinstance(opts.val_split, (int, float)) and 0.0 <= opts.val_split < 1.0):
        raise PrepareError(f"--val_split must be at least 0 and below 1, got {opts.val_split}")
    if opts.no_system_prompt and opts.system_prompt is not None:
        raise PrepareError("--system_prompt and --no_system_prompt contradict each other: give one")
    if not isinstance(opts.seed, int) or opts.seed < 0:
        raise PrepareError(f"--seed must be a non-negative integer, got {opts.seed}")
    if opts.workers is not None and opts.workers < 1:
        raise PrepareError(f"--workers must be at least 1, got {opts.workers}")
    if opts.system_prompt is not None and not opts.system_prompt.strip():
        raise PrepareError("--system_prompt is empty")


def _check_output(out: Path, overwrite: bool) -> None:
    if not out.exists():
        return
    if not out.is_dir():
        raise PrepareError(f"{out} exists and is not a folder")
    if not overwrite:
        raise PrepareError(f"{out} already exists: use --overwrite to replace it")
    if any(out.iterdir()) and not (out / dsf.METADATA_FILE).exists():
        raise PrepareError(f"{out} exists and is not a prepared dataset (no {dsf.METADATA_FILE}): "
                           "refusing to replace it, even with --overwrite")


def _remove_stale_temps(out: Path) -> None:
    """Temp folders of an earlier prepare of this output that was killed (its pid is gone). One
    killed between the two renames of replace_folder holds the old output and nothing is at `out`:
    the old output goes back first."""
    for p in out.parent.glob(f"{TEMP_PREFIX}{out.name}.*"):
        pid = p.name.rsplit(".", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid)):
            if not out.exists() and (p / "old" / dsf.METADATA_FILE).exists():
                os.rename(p / "old", out)
            shutil.rmtree(p, ignore_errors=True)


_COLUMNS = {"seq": "I", "id_hash": "Q", "content": "Q", "supervised": "I"}


@dataclass
class _Source:
    """What pass 1 learned about one input: 24 bytes per written episode, in array columns."""

    role: str
    path: Path
    work: Path  # the work split pass 1 writes (same layout as a dataset split)
    seq: array = field(default_factory=lambda: array(_COLUMNS["seq"]))  # position in the input stream
    id_hash: array = field(default_factory=lambda: array(_COLUMNS["id_hash"]))  # 64 bits of blake2b(id)
    content: array = field(default_factory=lambda: array(_COLUMNS["content"]))  # 64 bits of the sha256
    supervised: array = field(default_factory=lambda: array(_COLUMNS["supervised"]))
    duplicate: np.ndarray | None = None  # bool per written episode, after the duplicate pass
    kept_starts: list[int] = field(default_factory=list)  # first written episode of each file with any
    kept_files: list[FileCount] = field(default_factory=list)  # ... and that file's counts

    def file_of(self, k: int) -> FileCount:
        """The counts of the file written episode k was read from."""
        return self.kept_files[bisect.bisect_right(self.kept_starts, k) - 1]

    def column(self, name: str) -> np.ndarray:
        dtype = np.uint32 if _COLUMNS[name] == "I" else np.uint64
        values = getattr(self, name)
        return np.frombuffer(values, dtype=dtype) if len(values) else np.zeros(0, dtype)

    def records(self, wanted: np.ndarray) -> Iterator[tuple[int, dict]]:
        """(k, record) for the written episodes k in `wanted` (ascending), read back from the
        work episodes.jsonl in one sequential scan."""
        if len(wanted) == 0:
            return
        j = 0
        with open(self.work / dsf.EPISODES_FILE, "rb") as fh:
            for k, line in enumerate(fh):
                if k == wanted[j]:
                    yield k, json.loads(line)
                    j += 1
                    if j == len(wanted):
                        return


class _Job:
    def __init__(self, opts: PrepareOptions, sources: list[tuple[str, Path]], tmp: Path,
                 on_progress: Progress | None, should_stop: Callable[[], bool] | None) -> None:
        self.opts = opts
        self.tmp = tmp
        self.out = tmp / "dataset"
        self.sources = [_Source(role, path, tmp / f"work-{role}") for role, path in sources]
        self.on_progress = on_progress or (lambda done, total: None)
        self.should_stop = should_stop or (lambda: False)
        self.system = SystemPrompt(opts.system_prompt, not opts.no_system_prompt)
        self.done = 0
        self.total: int | None = 0
        self.seq = 0
        self.seq_end: list[int] = []  # the last seq of each source
        self.errors: list[tuple[int, str]] = []  # (seq, message): the first KEEP_SKIPPED
        self.n_errors = 0
        self.first_error_seq: int | None = None  # seq of the first invalid episode of pass 1
        self.by_reason: dict[str, int] = {}
        self.files: dict[tuple[str, str], FileCount] = {}
        self.warnings: list[str] = []
        self.with_system = 0
        self.with_tools = 0
        self.tool_calls: dict[str, int] = {}

    # -- the steps ---------------------------------------------------------------------------
    def run(self) -> PrepareReport:
        inputs = [self._describe_input(s) for s in self.sources]
        tok = self._tokenizer()
        for src in self.sources:
            self._pass1(src, tok)
            self.seq_end.append(self.seq)
            if self.opts.strict and self.n_errors:
                break
        for src in self.sources:
            self._find_duplicates(src)
        if self.errors:
            self.errors.sort()
            if self.opts.strict:
                raise PrepareError(self.errors[0][1])
        if not (~self.sources[0].duplicate).any():
            first = [m for seq, m in self.errors if seq <= self.seq_end[0]][:1]
            skipped = sum(fc.skipped for fc in self.files.values() if fc.input == "input")
            raise PrepareError(f"no valid episodes in {self.opts.input}: all {skipped} were skipped"
                               + (f" (first: {first[0]})" if first else ""))
        if len(self.sources) > 1 and not (~self.sources[1].duplicate).any():
            raise PrepareError(f"no valid episodes in the --val_file {self.opts.val_file}")
        if self.opts.kind == "tool" and self.with_tools == 0:
            raise PrepareError(f"no episode in {self.opts.input} has a tool call: `mypt prepare tool` is "
                               "for tool-calling sets (use `mypt prepare chat` for plain conversations)")
        targets = self._assign_splits()
        train = dsf.SplitWriter(self.out / "train")
        val = dsf.SplitWriter(self.out / "val")
        content = {0: [], 1: []}
        for src, target in zip(self.sources, targets):
            self._pass2(src, target, (train, val))
            for code in (0, 1):
                content[code].append(src.column("content")[target == code])
        train.close()
        val.close()
        if val.episodes == 0:
            shutil.rmtree(self.out / "val")
        overlap, examples = self._overlap(np.concatenate(content[0]), np.concatenate(content[1]), targets)
        if overlap:
            self.warnings.append(f"{overlap} val episodes have the same content as a train episode "
                                 f"(e.g. {', '.join(examples[:3])})")
        train_hashes = np.concatenate(content[0])
        dup_content = int(len(train_hashes) - len(np.unique(train_hashes)))
        metadata = self._metadata(tok, train, val, inputs, overlap, examples, dup_content)
        dsf.write_json(self.out / dsf.TOKENIZER_FILE, tok.state())
        dsf.write_json(self.out / dsf.METADATA_FILE, metadata)
        for src in self.sources:
            shutil.rmtree(src.work)
        return PrepareReport(
            output=Path(self.opts.output), kind=self.opts.kind, tokenization=tok.kind,
            train_episodes=train.episodes, val_episodes=val.episodes, train_tokens=train.tokens,
            val_tokens=val.tokens, train_supervised=train.supervised, val_supervised=val.supervised,
            skipped_total=self.n_errors, skipped=[m for _, m in self.errors], skipped_by_reason=dict(self.by_reason),
            overlap=overlap, overlap_examples=examples, files=list(self.files.values()),
            warnings=self.warnings, seconds=0.0, metadata=metadata)

    def _describe_input(self, src: _Source) -> dict:
        """Each input file's sha256 and size (provenance); also counts lines for the progress total."""
        files = []
        for f in input_files(src.path):
            h = hashlib.sha256()
            lines = 0
            with open(f, "rb") as fh:
                while chunk := fh.read(1 << 20):
                    h.update(chunk)
                    lines += chunk.count(b"\n")
            files.append({"file": f.relative_to(src.path).as_posix() if src.path.is_dir() else f.name,
                          "sha256": h.hexdigest(), "bytes": f.stat().st_size})
            if self.total is not None:
                self.total = None if f.suffix == ".json" else self.total + lines
            self._check_stop()
        return {"role": src.role, "path": str(src.path.resolve()), "files": files}

    def _tokenizer(self) -> Tokenizer:
        if self.opts.tokenization == "gpt2":
            return gpt2()
        # char: the vocabulary is every character the rendered episodes will contain
        chars: set[str] = set()
        if self.opts.system_prompt:
            chars.update(self.opts.system_prompt)
        for src in self.sources:
            for n, item in enumerate(read_episodes(src.path)):
                if isinstance(item, Episode):
                    for text in _texts(item, self.system):
                        chars.update(text)
                if n % _CHUNK_EPISODES == 0:
                    self._check_stop()
        return CharTokenizer(chars)

    def _pass1(self, src: _Source, tok: Tokenizer) -> None:
        """Render every episode of one input into the work split; record the invalid ones."""
        writer = dsf.SplitWriter(src.work)
        try:
            for chunk in self._rendered_chunks(src, tok):
                if not self._apply(src, writer, chunk):
                    break
                self.on_progress(self.done, self.total)
                self._check_stop()
        finally:
            writer.close(sync=False)
        self.on_progress(self.done, self.total)

    def _rendered_chunks(self, src: _Source, tok: Tokenizer) -> Iterator[_Chunk]:
        files = input_files(src.path)
        workers = self._workers(files)
        if workers <= 1:
            batch: list[Union[Episode, EpisodeError]] = []
            for item in read_episodes(src.path):
                batch.append(item)
                if len(batch) == _CHUNK_EPISODES:
                    yield render_chunk(batch, tok, self.system)
                    batch = []
            if batch:
                yield render_chunk(batch, tok, self.system)
            return
        yield from _parallel_chunks(src.path, files, workers, tok, self.system, self._check_stop)

    def _workers(self, files: list[Path]) -> int:
        """Worker processes for pass 1: several only for a large input made of JSONL files."""
        if self.opts.workers is not None:
            n = self.opts.workers
        else:
            n = min(_cpus(), 4) if (self.total or 0) >= PARALLEL_MIN_LINES else 1
        return n if n > 1 and all(f.suffix == ".jsonl" for f in files) else 1

    def _apply(self, src: _Source, writer: dsf.SplitWriter, chunk: _Chunk) -> bool:
        """Write one rendered chunk; False when --strict must stop at an invalid episode."""
        base = self.seq + 1  # seq of the chunk's first item
        self.seq += chunk.items
        self.done += chunk.items
        start = len(src.seq)  # the written episodes of the chunk's files follow each other in input order
        for label, (kept, skipped) in chunk.files.items():
            fc = self._file(src.role, label)
            if kept and (not src.kept_files or src.kept_files[-1] is not fc):
                src.kept_starts.append(start)
                src.kept_files.append(fc)
            start += kept
            fc.episodes += kept
            fc.skipped += skipped
        for pos, err in chunk.errors:
            self._skip(base + pos, err.category, str(err))
        lines = chunk.tails.split(b"\n")[:-1]
        writer.add_block(chunk.ids, chunk.mask, chunk.lengths, int(chunk.supervised.sum(dtype=np.int64)),
                         [line + b"\n" for line in lines])
        src.seq.frombytes((chunk.position.astype(np.int64) + base).astype(np.uint32).tobytes())
        src.id_hash.frombytes(chunk.id_hash.tobytes())
        src.content.frombytes(chunk.content.tobytes())
        src.supervised.frombytes(chunk.supervised.tobytes())
        for name, calls in chunk.tool_calls.items():
            if name in self.tool_calls or len(self.tool_calls) < 1000:
                self.tool_calls[name] = self.tool_calls.get(name, 0) + calls
        self.with_tools += chunk.with_tools
        self.with_system += chunk.with_system
        # --strict stops here; the episodes before the error are written all the same, since a
        # duplicate id among them would be the first invalid episode
        return not (self.opts.strict and chunk.errors)

    def _skip(self, seq: int, category: SkipReason, message: str) -> None:
        self.n_errors += 1
        if self.first_error_seq is None:
            self.first_error_seq = seq
        self.by_reason[category.value] = self.by_reason.get(category.value, 0) + 1
        # keep the KEEP_SKIPPED earliest messages: errors arrive in input order, except
        # duplicates, which are found after pass 1 (hence the insort when the list is full)
        if len(self.errors) < KEEP_SKIPPED:
            self.errors.append((seq, message))
        elif seq < self.errors[-1][0]:
            bisect.insort(self.errors, (seq, message))
            self.errors.pop()

    def _file(self, role: str, label: str) -> FileCount:
        fc = self.files.get((role, label))
        if fc is None:
            fc = self.files[(role, label)] = FileCount(role, label)
        return fc

    def _check_stop(self) -> None:
        if self.should_stop():
            raise PrepareCancelled("prepare cancelled: nothing was written")

    def _find_duplicates(self, src: _Source) -> None:
        """Mark the later episodes whose id repeats an earlier one as skipped. Only episodes
        whose 64-bit id hash repeats are read back and compared by their real id."""
        ids = src.column("id_hash")
        src.duplicate = np.zeros(len(ids), dtype=bool)
        if len(ids) < 2:
            return
        order = np.argsort(ids, kind="stable")
        same = np.flatnonzero(ids[order][1:] == ids[order][:-1])
        if len(same) == 0:
            return
        candidates = np.unique(np.concatenate((order[same], order[same + 1])))
        del order, same
        seqs = src.column("seq")
        first_at: dict[str, str] = {}
        for k, rec in src.records(candidates):  # in input order
            first = first_at.setdefault(rec["id"], rec["source"])
            if first == rec["source"]:
                continue
            if self.opts.strict and self.first_error_seq is not None and seqs[k] > self.first_error_seq:
                continue  # --strict stopped at an earlier invalid episode
            src.duplicate[k] = True
            self._skip(int(seqs[k]), SkipReason.DUPLICATE_ID,
                       f"{rec['source']}: duplicate episode_id {rec['id']!r} (first at {first})")
            fc = src.file_of(int(k))
            fc.episodes -= 1
            fc.skipped += 1

    def _assign_splits(self) -> list[np.ndarray]:
        """Per source, per written episode: 0 train, 1 val, -1 dropped (a duplicate)."""
        targets = []
        if self.opts.val_file is not None:
            for code, src in enumerate(self.sources):
                targets.append(np.where(src.duplicate, -1, code).astype(np.int8))
            return targets
        src = self.sources[0]
        keep = np.flatnonzero(~src.duplicate)
        n = len(keep)
        n_val = n_val_episodes(n, self.opts.val_split)
        if self.opts.val_split > 0 and n_val == 0:
            self.warnings.append(f"no val episodes: {n} valid episode(s) is too few to split off "
                                 f"{self.opts.val_split:g}")
        target = np.full(len(src.duplicate), -1, dtype=np.int8)
        target[keep] = 0
        perm = np.random.default_rng(self.opts.seed).permutation(n)
        target[keep[perm[:n_val]]] = 1
        return [target]

    def _pass2(self, src: _Source, target: np.ndarray, writers: tuple[dsf.SplitWriter, dsf.SplitWriter]) -> None:
        """Copy the work split into train/val, keeping input order within each split. Reads with
        plain file reads, a bounded window at a time (mapped pages would count as memory)."""
        supervised = src.column("supervised")
        with open(src.work / dsf.INDEX_FILE, "rb") as xf, open(src.work / dsf.TOKENS_FILE, "rb") as tf, \
                open(src.work / dsf.MASK_FILE, "rb") as mf, open(src.work / dsf.EPISODES_FILE, "rb") as lines:
            lo = 0
            while lo < len(target):
                # a window of episodes holding about _COPY_TOKENS tokens (at least one episode)
                index = np.fromfile(xf, dtype=dsf.INDEX_DTYPE, count=2 * min(_COPY_WINDOW, len(target) - lo))
                lengths_w = index[1::2].astype(np.int64)
                ends = np.cumsum(lengths_w)
                a = 0
                while a < len(lengths_w):
                    b = max(a + 1, int(np.searchsorted(ends, (ends[a - 1] if a else 0) + _COPY_TOKENS, side="right")))
                    self._copy(lo + a, lo + b, lengths_w[a:b], target, supervised, tf, mf, lines, writers)
                    a = b
                lo += len(lengths_w)

    def _copy(self, lo: int, hi: int, lengths: np.ndarray, target: np.ndarray, supervised: np.ndarray,
              tf, mf, lines, writers: tuple[dsf.SplitWriter, dsf.SplitWriter]) -> None:
        count = int(lengths.sum())
        t = np.fromfile(tf, dtype=dsf.TOKEN_DTYPE, count=count)
        m = np.fromfile(mf, dtype=dsf.MASK_DTYPE, count=count)
        tgt = target[lo:hi]
        per_token = np.repeat(tgt, lengths)
        tails = [dsf.split_tail(next(lines)) for _ in range(hi - lo)]
        for code, writer in enumerate(writers):
            sel = tgt == code
            if sel.any():
                tok_sel = per_token == code
                writer.add_block(t[tok_sel], m[tok_sel], lengths[sel], int(supervised[lo:hi][sel].sum()),
                                 [tl for tl, s in zip(tails, sel) if s])
        self._check_stop()

    def _overlap(self, train: np.ndarray, val: np.ndarray, targets: list[np.ndarray]) -> tuple[int, list[str]]:
        """Val episodes whose content hash (its first 64 bits) also occurs in train, and a few of their ids."""
        if len(val) == 0 or len(train) == 0:
            return 0, []
        hit = np.isin(val, train)
        n = int(hit.sum())
        if n == 0:
            return 0, []
        val_rows = np.flatnonzero(targets[-1] == 1)[np.flatnonzero(hit)[:5]]
        return n, [rec["id"] for _, rec in self.sources[-1].records(val_rows)]

    def _metadata(self, tok: Tokenizer, train: dsf.SplitWriter, val: dsf.SplitWriter, inputs: list[dict],
                  overlap: int, examples: list[str], dup_content: int) -> dict:
        opts = self.opts
        separate = opts.val_file is not None
        return {
            "format": dsf.FORMAT,
            "schema": dsf.FORMAT,  # the key MyPT's loader reads
            "kind": opts.kind,
            "tokenization": tok.kind,
            "vocab_size": tok.model_vocab_size,
            "has_loss_mask": True,
            "num_train_episodes": train.episodes,
            "num_val_episodes": val.episodes,
            "num_train_tokens": train.tokens,
            "num_val_tokens": val.tokens,
            "num_train_mask_tokens": train.supervised,  # supervised (trained) tokens
            "num_val_mask_tokens": val.supervised,
            "train_mask_ratio": train.supervised / train.tokens if train.tokens else 0.0,
            "val_mask_ratio": val.supervised / val.tokens if val.tokens else 0.0,
            "prepare_mode": "explicit_val_file" if separate else "val_split",
            "val_split": 0.0 if separate else opts.val_split,
            "seed": opts.seed,
            "inputs": inputs,
            "options": {
                "kind": opts.kind,
                "tokenization": opts.tokenization,
                "system_prompt": opts.system_prompt,
                "no_system_prompt": opts.no_system_prompt,
                "strict": opts.strict,
                "val_file": str(Path(opts.val_file).resolve()) if separate else None,
            },
            "episodes_with_system": self.with_system,
            "episodes_with_tool_calls": self.with_tools,
            "tool_calls": dict(sorted(self.tool_calls.items())),
            "skipped": {"total": self.n_errors, "by_reason": dict(sorted(self.by_reason.items())),
                        "first": [m for _, m in self.errors[:100]]},
            "train_val_overlap": overlap,
            "train_val_overlap_examples": examples,
            "duplicate_content_in_train": dup_content,
            "created_by": "mypt prepare " + opts.kind,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }


@dataclass
class _Chunk:
    """A run of input items rendered, in columns (cheap to send back from a worker process):
    the kept episodes' tokens and numbers, and the skip reasons, in input order."""

    items: int  # input items in the run (kept + skipped)
    ids: np.ndarray  # uint32: the kept episodes' tokens, concatenated
    mask: np.ndarray  # uint8
    position: np.ndarray  # uint32: each kept episode's position among the items
    lengths: np.ndarray  # int64
    supervised: np.ndarray  # uint32
    id_hash: np.ndarray  # uint64: 64 bits of blake2b(id), the same in every process
    content: np.ndarray  # uint64: first 64 bits of the content sha256
    tails: bytes  # the episodes.jsonl records (less their index), one line each
    errors: list[tuple[int, EpisodeError]]  # (position, error)
    files: dict[str, list[int]]  # file label -> [kept, skipped]
    tool_calls: dict[str, int]  # tool name -> calls
    with_tools: int  # kept episodes with at least one tool call
    with_system: int  # kept episodes rendered with a system block


def render_chunk(items: Iterable[Union[Episode, EpisodeError]], tok: Tokenizer, system: SystemPrompt) -> _Chunk:
    """Render a run of episodes: the one per-episode step of pass 1, in-process or in a worker."""
    ids: list[np.ndarray] = []
    masks: list[np.ndarray] = []
    cols: dict[str, list[int]] = {k: [] for k in ("position", "lengths", "supervised", "id_hash", "content")}
    tails: list[bytes] = []
    errors: list[tuple[int, EpisodeError]] = []
    files: dict[str, list[int]] = {}
    tools: dict[str, int] = {}
    with_tools = with_system = n = 0
    for n, ep in enumerate(items, 1):
        if not isinstance(ep, EpisodeError):
            r = render_episode(ep, tok, system)
            supervised = int(np.count_nonzero(r.mask))
            if supervised == 0:
                ep = EpisodeError(ep.source, "no supervised tokens (nothing to train on)", SkipReason.NO_SUPERVISED)
        fc = files.setdefault(ep.source.file, [0, 0])
        if isinstance(ep, EpisodeError):
            errors.append((n - 1, ep))
            fc[1] += 1
            continue
        fc[0] += 1
        sha = ep.sha256
        ids.append(r.ids)
        masks.append(r.mask)
        cols["position"].append(n - 1)
        cols["lengths"].append(len(r.ids))
        cols["supervised"].append(supervised)
        cols["id_hash"].append(int.from_bytes(hashlib.blake2b(ep.id.encode(), digest_size=8).digest(), "little"))
        cols["content"].append(int(sha[:16], 16))
        tails.append(dsf.episode_tail(ep.id, str(ep.source), sha, len(r.ids), supervised, ep.meta))
        calls = [c.name for m in ep.messages for c in m.tool_calls]
        if calls:
            with_tools += 1
            for name in calls:
                tools[name] = tools.get(name, 0) + 1
        with_system += system.pick(ep.system) is not None
    return _Chunk(
        items=n, ids=np.concatenate(ids) if ids else np.zeros(0, np.uint32),
        mask=np.concatenate(masks) if masks else np.zeros(0, np.uint8),
        position=np.array(cols["position"], dtype=np.uint32), lengths=np.array(cols["lengths"], dtype=np.int64),
        supervised=np.array(cols["supervised"], dtype=np.uint32), id_hash=np.array(cols["id_hash"], dtype=np.uint64),
        content=np.array(cols["content"], dtype=np.uint64), tails=b"".join(tails), errors=errors, files=files,
        tool_calls=tools, with_tools=with_tools, with_system=with_system)


# -- pass 1 in worker processes ----------------------------------------------------------------

_worker: dict = {}


def _worker_init(tokenizer_state: dict, system: SystemPrompt) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # ctrl+c is the parent's to handle
    _worker["tok"] = from_state(tokenizer_state)
    _worker["system"] = system


def _worker_render(label: str, first_line: int, lines: list[bytes]) -> _Chunk:
    """Parse and render a run of JSONL lines, with read_episodes' sources and messages."""
    items = [parse_line(raw, Source(label, first_line + k)) for k, raw in enumerate(lines) if raw.strip()]
    return render_chunk(items, _worker["tok"], _worker["system"])


def _parallel_chunks(root: Path, files: list[Path], workers: int, tok: Tokenizer, system: SystemPrompt,
                     check_stop: Callable[[], None]) -> Iterator[_Chunk]:
    """Chunks of JSONL lines rendered by a pool of processes, yielded in input order; at most
    a few chunks are in flight, so memory does not grow with the input."""
    ctx = multiprocessing.get_context(_start_method())
    pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_worker_init,
                               initargs=(tok.state(), system))
    pending: deque = deque()
    try:
        for f in files:
            label = f.relative_to(root).as_posix() if root.is_dir() else f.name
            with open(f, "rb") as fh:
                first, lines = 1, []
                for raw in fh:
                    lines.append(raw)
                    if len(lines) == _CHUNK_EPISODES:
                        pending.append(pool.submit(_worker_render, label, first, lines))
                        first, lines = first + len(lines), []
                        while len(pending) >= 2 * workers + 2:
                            yield pending.popleft().result()
                            check_stop()
                if lines:
                    pending.append(pool.submit(_worker_render, label, first, lines))
        while pending:
            yield pending.popleft().result()
            check_stop()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _start_method() -> str:
    """fork when this is a single-threaded process (the CLI: workers start at once and inherit
    the tokenizer); spawn otherwise (the app calls prepare from a worker thread, and forking a
    threaded process can deadlock)."""
    if ("fork" in multiprocessing.get_all_start_methods() and threading.active_count() == 1
            and threading.current_thread() is threading.main_thread()):
        return "fork"
    return "spawn"


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def n_val_episodes(n: int, val_split: float) -> int:
    """Val size of a random split: round(n * val_split), at least 1 when a split is asked for
    and n >= 2, and never all of them (train keeps at least one episode)."""
    if val_split <= 0 or n < 2:
        return 0
    return min(max(1, math.floor(n * val_split + 0.5)), n - 1)


def _texts(ep: Episode, system: SystemPrompt) -> Iterator[str]:
    """Every text the renderer will encode for an episode (the char vocabulary's pre-pass)."""
    picked = system.pick(ep.system)
    if picked is not None:
        yield picked
    for m in ep.messages:
        yield m.content
        for extra in (m.context, m.think, m.cite):
            if extra is not None:
                yield extra
        for c in m.tool_calls:
            yield c.to_json()
