"""Small gold inputs written by tests (never data/: tests own their inputs)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Union

from engine.prepare import PrepareOptions, PrepareReport, prepare

Line = Union[dict, str, bytes]


def chat(episode_id: str | None, user: str, reply: str, system: str | None = None, **extra) -> dict:
    """A one-turn MyPT gold episode."""
    ep: dict = {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": reply}]}
    if episode_id is not None:
        ep["episode_id"] = episode_id
    if system is not None:
        ep["system"] = system
    ep.update(extra)
    return ep


def tool_episode(episode_id: str, a: int, b: int) -> dict:
    """A calculator tool-call episode in MyPT's gold schema."""
    return {"episode_id": episode_id, "messages": [
        {"role": "user", "content": f"What is {a} times {b}?"},
        {"role": "assistant_toolcall", "name": "calculator", "arguments": {"expression": f"{a}*{b}"}},
        {"role": "toolresult", "name": "calculator", "content": {"result": a * b}},
        {"role": "assistant", "content": f"{a} times {b} is {a * b}."}]}


def many(n: int, prefix: str = "ep") -> list[dict]:
    return [chat(f"{prefix}{i:03d}", f"Question number {i}?", f"Answer number {i}.") for i in range(n)]


WORDS = ["red", "green", "blue", "cat", "dog", "sun", "moon", "tree", "sea", "sky"]


def varied(n: int) -> list[dict]:
    """Episodes of varied lengths, so micro-batches carry different numbers of supervised tokens."""
    out = []
    for i in range(n):
        q = " ".join(WORDS[(i + k) % len(WORDS)] for k in range(1 + i % 4))
        out.append(chat(f"ep{i:03d}", f"Say {q}.", f"{q} " * (1 + i % 3), system="Be brief."))
    return out


def write_jsonl(path: Path, lines: Iterable[Line]) -> Path:
    """One JSON object (dict), raw text (str) or raw bytes per line."""
    out = []
    for line in lines:
        if isinstance(line, dict):
            line = json.dumps(line, ensure_ascii=False)
        if isinstance(line, str):
            line = line.encode("utf-8")
        out.append(line + b"\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(out))
    return path


def prepared(tmp_path: Path, lines: Iterable[Line], name: str = "out", **options) -> PrepareReport:
    """Write `lines` to tmp_path/in.jsonl and prepare them into tmp_path/name."""
    src = write_jsonl(tmp_path / "in.jsonl", lines)
    return prepare(PrepareOptions(input=src, output=tmp_path / name, **options))


def leftovers(folder: Path) -> list[str]:
    """Temp folders a prepare left beside its output (there must be none)."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".mypt-tmp-"))
