"""Pass 1's per-episode work: read an input and render its episodes into chunks, in this process
or, for a large JSONL input, in a few worker processes (a chunk of lines each, at most a few
chunks in flight, so memory does not grow with the input). A chunk holds its episodes in columns,
which are cheap to send back from a worker."""

from __future__ import annotations

import contextlib
import hashlib
import multiprocessing
import os
import signal
import threading
import time
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Union

import numpy as np

from .. import dataset as dsf
from ..atomic import interrupts_held
from ..episode import Episode, EpisodeError, SkipReason, Source, parse_line, read_episodes
from ..render import SystemPrompt, render_episode
from ..tokenizer import Tokenizer, from_state

PARALLEL_MIN_LINES = 20_000  # smaller inputs render in-process (starting workers costs ~1 s)
CHUNK_EPISODES = 1024  # episodes rendered per chunk (and per worker task)
PARENT_POLL_S = 0.5  # how often a worker checks that its parent still runs


@dataclass
class Chunk:
    """A run of input items rendered, in columns: the kept episodes' tokens and numbers, and
    the skip reasons, in input order."""

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
    files: dict[str, list[int]]  # file label -> [kept, skipped], in input order
    tool_calls: dict[str, int]  # tool name -> calls
    with_tools: int  # kept episodes with at least one tool call
    with_system: int  # kept episodes rendered with a system block


def render_chunk(items: Iterable[Union[Episode, EpisodeError]], tok: Tokenizer, system: SystemPrompt) -> Chunk:
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
    return Chunk(
        items=n, ids=np.concatenate(ids) if ids else np.zeros(0, np.uint32),
        mask=np.concatenate(masks) if masks else np.zeros(0, np.uint8),
        position=np.array(cols["position"], dtype=np.uint32), lengths=np.array(cols["lengths"], dtype=np.int64),
        supervised=np.array(cols["supervised"], dtype=np.uint32), id_hash=np.array(cols["id_hash"], dtype=np.uint64),
        content=np.array(cols["content"], dtype=np.uint64), tails=b"".join(tails), errors=errors, files=files,
        tool_calls=tools, with_tools=with_tools, with_system=with_system)


def rendered_chunks(path: Path, files: list[Path], workers: int, tok: Tokenizer, system: SystemPrompt,
                    check_stop: Callable[[], None]) -> Iterator[Chunk]:
    """An input's episodes rendered, a chunk at a time, in input order."""
    if workers > 1:
        yield from _parallel_chunks(path, files, workers, tok, system, check_stop)
        return
    batch: list[Union[Episode, EpisodeError]] = []
    for item in read_episodes(path):
        batch.append(item)
        if len(batch) == CHUNK_EPISODES:
            yield render_chunk(batch, tok, system)
            batch = []
    if batch:
        yield render_chunk(batch, tok, system)


def worker_count(asked: int | None, files: list[Path], total_lines: int | None) -> int:
    """Worker processes for pass 1: several only for a large input made of JSONL files."""
    if asked is not None:
        n = asked
    else:
        n = min(_cpus(), 4) if (total_lines or 0) >= PARALLEL_MIN_LINES else 1
    return n if n > 1 and all(f.suffix == ".jsonl" for f in files) else 1


# -- worker processes --------------------------------------------------------------------------

_worker: dict = {}


def _worker_init(tokenizer_state: dict, system: SystemPrompt) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # ctrl+c is the parent's to handle
    if hasattr(signal, "pthread_sigmask"):  # started with it blocked (_starting_workers): now ignored
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    _exit_with(os.getppid())
    _worker["tok"] = from_state(tokenizer_state)
    _worker["system"] = system


def _exit_with(parent: int) -> None:
    """End this worker when its parent is gone: a prepare killed with SIGKILL cannot shut its
    pool down, and a forked worker holds its own end of the task pipe, so it would wait forever."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_S)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="mypt-parent-watch").start()


def _worker_render(label: str, first_line: int, lines: list[bytes]) -> Chunk:
    """Parse and render a run of JSONL lines, with read_episodes' sources and messages."""
    items = [parse_line(raw, Source(label, first_line + k)) for k, raw in enumerate(lines) if raw.strip()]
    return render_chunk(items, _worker["tok"], _worker["system"])


def _parallel_chunks(root: Path, files: list[Path], workers: int, tok: Tokenizer, system: SystemPrompt,
                     check_stop: Callable[[], None]) -> Iterator[Chunk]:
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
                    if len(lines) == CHUNK_EPISODES:
                        with _starting_workers():
                            pending.append(pool.submit(_worker_render, label, first, lines))
                        first, lines = first + len(lines), []
                        while len(pending) >= 2 * workers + 2:
                            yield pending.popleft().result()
                            check_stop()
                if lines:
                    with _starting_workers():
                        pending.append(pool.submit(_worker_render, label, first, lines))
        while pending:
            yield pending.popleft().result()
            check_stop()
    finally:
        with interrupts_held():  # a second ctrl+c here would leave the workers waiting for work forever
            pool.shutdown(wait=True, cancel_futures=True)


@contextlib.contextmanager
def _starting_workers() -> Iterator[None]:
    """Worker processes started inside (a submit may start them) begin with SIGINT blocked, until
    _worker_init ignores it: a ctrl+c that reached a worker while it starts would print the
    worker's own traceback. The parent receives a pending ctrl+c when the block ends."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


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
