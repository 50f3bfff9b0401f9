"""What is learned from the inputs before pass 1: each file's provenance (sha256, size) for the
metadata, the line count that makes the progress total, and the tokenizer (a char vocabulary
needs every character the renderer will encode, so it costs a reading pass of its own)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable, Iterator

from ..episode import Episode, input_files, read_episodes
from ..render import SystemPrompt
from ..tokenizer import Tokenizer, load_tokenizer
from .options import PrepareOptions
from .render import CHUNK_EPISODES


def describe_inputs(inputs: list[tuple[str, Path]],
                    check_stop: Callable[[], None]) -> tuple[list[dict], int | None]:
    """The metadata's `inputs` (role, path, and each file's sha256 and size) and the lines of
    all inputs, the progress total (None when a .json file makes it unknown)."""
    described = []
    total: int | None = 0
    for role, path in inputs:
        files = []
        for f in input_files(path):
            h = hashlib.sha256()
            lines = 0
            with open(f, "rb") as fh:
                while chunk := fh.read(1 << 20):
                    h.update(chunk)
                    lines += chunk.count(b"\n")
            files.append({"file": f.relative_to(path).as_posix() if path.is_dir() else f.name,
                          "sha256": h.hexdigest(), "bytes": f.stat().st_size})
            if total is not None:
                total = None if f.suffix == ".json" else total + lines
            check_stop()
        described.append({"role": role, "path": str(path.resolve()), "files": files})
    return described, total


def make_tokenizer(opts: PrepareOptions, paths: list[Path], system: SystemPrompt,
                   check_stop: Callable[[], None]) -> Tokenizer:
    if opts.tokenization != "char":
        return load_tokenizer(opts.tokenization)
    chars: set[str] = set()
    if opts.system_prompt:
        chars.update(opts.system_prompt)
    for path in paths:
        for n, item in enumerate(read_episodes(path)):
            if isinstance(item, Episode):
                for text in _texts(item, system):
                    chars.update(text)
            if n % CHUNK_EPISODES == 0:
                check_stop()
    return load_tokenizer("char", chars)


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
