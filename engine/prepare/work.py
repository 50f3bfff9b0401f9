"""Pass 1: every input rendered into a work split on disk (the layout of a dataset split), and per
written episode a fixed 24-byte record in array columns, so memory stays flat as inputs grow.
The later stages work from these: duplicates and the split from the columns, pass 2 from the files.

Every input item (kept or skipped) gets a `seq`, its position in the stream of all inputs, which
orders skip messages and tells where --strict stopped."""

from __future__ import annotations

import bisect
import json
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from .. import dataset as dsf
from ..episode import input_files
from ..render import SystemPrompt
from ..tokenizer import Tokenizer
from .options import Control, FileCount, PrepareOptions
from .render import Chunk, rendered_chunks, worker_count
from .skips import SkipTally

_COLUMNS = {"seq": "I", "id_hash": "Q", "content": "Q", "supervised": "I"}


@dataclass
class WorkSplit:
    """What pass 1 made of one input: its work split and a record per written episode."""

    role: str  # "input" or "val_file"
    path: Path
    folder: Path  # the work split
    seq: array = field(default_factory=lambda: array(_COLUMNS["seq"]))  # position in the input stream
    id_hash: array = field(default_factory=lambda: array(_COLUMNS["id_hash"]))  # 64 bits of blake2b(id)
    content: array = field(default_factory=lambda: array(_COLUMNS["content"]))  # 64 bits of the sha256
    supervised: array = field(default_factory=lambda: array(_COLUMNS["supervised"]))
    last_seq: int = 0  # seq of the input's last item
    files: list[FileCount] = field(default_factory=list)  # per input file, in input order
    duplicate: np.ndarray | None = None  # bool per written episode, set by the duplicate pass
    # the files that have written episodes, each with its first one (file_of's lookup)
    _starts: list[int] = field(default_factory=list, init=False, repr=False)
    _owners: list[FileCount] = field(default_factory=list, init=False, repr=False)

    def column(self, name: str) -> np.ndarray:
        dtype = np.uint32 if _COLUMNS[name] == "I" else np.uint64
        values = getattr(self, name)
        return np.frombuffer(values, dtype=dtype) if len(values) else np.zeros(0, dtype)

    def file_of(self, k: int) -> FileCount:
        """The counts of the file that written episode k was read from."""
        return self._owners[bisect.bisect_right(self._starts, k) - 1]

    def records(self, wanted: np.ndarray) -> Iterator[tuple[int, dict]]:
        """(k, record) for the written episodes k in `wanted` (ascending), read back from the
        work episodes.jsonl in one sequential scan."""
        if len(wanted) == 0:
            return
        j = 0
        with open(self.folder / dsf.EPISODES_FILE, "rb") as fh:
            for k, line in enumerate(fh):
                if k == wanted[j]:
                    yield k, json.loads(line)
                    j += 1
                    if j == len(wanted):
                        return

    def add(self, chunk: Chunk, base: int) -> None:
        """Record a chunk's episodes (written to the work split) and its per-file counts; `base`
        is the seq of the chunk's first item."""
        start = len(self.seq)  # a chunk's files follow each other, so do their written episodes
        for label, (kept, skipped) in chunk.files.items():
            fc = self.files[-1] if self.files and self.files[-1].file == label else None
            if fc is None:
                fc = FileCount(self.role, label)
                self.files.append(fc)
            if kept and (not self._owners or self._owners[-1] is not fc):
                self._starts.append(start)
                self._owners.append(fc)
            start += kept
            fc.episodes += kept
            fc.skipped += skipped
        self.seq.frombytes((chunk.position.astype(np.int64) + base).astype(np.uint32).tobytes())
        self.id_hash.frombytes(chunk.id_hash.tobytes())
        self.content.frombytes(chunk.content.tobytes())
        self.supervised.frombytes(chunk.supervised.tobytes())


@dataclass
class RenderStats:
    """What the metadata tells about the kept episodes' content."""

    with_system: int = 0  # rendered with a system block
    with_tools: int = 0  # with at least one tool call
    tool_calls: dict[str, int] = field(default_factory=dict)  # tool name -> calls (the first 1000 names)

    def add(self, chunk: Chunk) -> None:
        for name, calls in chunk.tool_calls.items():
            if name in self.tool_calls or len(self.tool_calls) < 1000:
                self.tool_calls[name] = self.tool_calls.get(name, 0) + calls
        self.with_tools += chunk.with_tools
        self.with_system += chunk.with_system


@dataclass
class Rendered:
    """Pass 1's result: a work split per input, the skipped episodes so far, the content stats."""

    works: list[WorkSplit]
    skips: SkipTally = field(default_factory=SkipTally)
    stats: RenderStats = field(default_factory=RenderStats)


def render_inputs(opts: PrepareOptions, inputs: list[tuple[str, Path]], tmp: Path, tok: Tokenizer,
                  system: SystemPrompt, total: int | None, control: Control) -> Rendered:
    """Pass 1 over the inputs in order. With --strict it stops at the first chunk that has an
    invalid episode: the later inputs keep empty work splits."""
    result = Rendered([WorkSplit(role, path, tmp / f"work-{role}") for role, path in inputs])
    seq = 0  # items read so far, all inputs: the progress done
    for work in result.works:
        files = input_files(work.path)
        workers = worker_count(opts.workers, files, total)
        writer = dsf.SplitWriter(work.folder)
        chunks = rendered_chunks(work.path, files, workers, tok, system, control.check_stop)
        try:  # closed in finally: its worker processes end now, not when a traceback lets go of it
            for chunk in chunks:
                _write_chunk(chunk, seq + 1, work, writer, result)
                seq += chunk.items
                if opts.strict and chunk.errors:
                    break  # the chunk is written all the same: a duplicate id before its error would come first
                control.on_progress(seq, total)
                control.check_stop()
        finally:
            chunks.close()
            writer.close(sync=False)
        work.last_seq = seq
        control.on_progress(seq, total)
        if opts.strict and result.skips.total:
            break
    return result


def _write_chunk(chunk: Chunk, base: int, work: WorkSplit, writer: dsf.SplitWriter, result: Rendered) -> None:
    """Write one rendered chunk, whose first item has seq `base`, and tally it."""
    work.add(chunk, base)
    for pos, err in chunk.errors:
        result.skips.add(base + pos, err.category, str(err))
    lines = chunk.tails.split(b"\n")[:-1]
    writer.add_block(chunk.ids, chunk.mask, chunk.lengths, int(chunk.supervised.sum(dtype=np.int64)),
                     [line + b"\n" for line in lines])
    result.stats.add(chunk)
