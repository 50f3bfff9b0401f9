"""Inputs and waiting helpers for the app tests: a tiny char dataset, a tiny TOML config, and
`wait_for` (Pilot pauses until a condition holds or a timeout says what never happened)."""

from __future__ import annotations

import html
import re
import time
from pathlib import Path
from typing import Callable

from textual.notifications import Notify

from helpers_data import prepared, varied, write_jsonl

TINY_TOML = """# a tiny model for app tests (a comment the app must not need)
n_layer = 2
n_embd = 32
n_head = 2
block_size = 96
dropout = 0.0
learning_rate = 3e-3
batch_size = 4
max_iters = {max_iters}
warmup_iters = 2
eval_interval = {eval_interval}
eval_iters = 2
save_every = {save_every}
device = "cpu"
precision = "fp32"
batching = "pack"
episode_min_tokens = 4
log_interval = 5
"""


def tiny_dataset(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    prepared(folder, varied(48), name="tinyds", tokenization="char", val_split=0.25, seed=1)
    return folder / "tinyds"


def tiny_config(folder: Path, max_iters: int = 12, eval_interval: int = 4, save_every: int = 4,
                name: str = "tiny.toml") -> Path:
    path = folder / name
    path.write_text(TINY_TOML.format(max_iters=max_iters, eval_interval=eval_interval, save_every=save_every))
    return path


def tiny_checkout(folder: Path, max_iters: int = 3) -> Path:
    """A folder shaped like the checkout: a tiny demo config and a small gold set."""
    (folder / "configs" / "demo").mkdir(parents=True)
    (folder / "configs" / "demo" / "chat.toml").write_text(
        TINY_TOML.format(max_iters=max_iters, eval_interval=max_iters, save_every=max_iters))
    eps = varied(40)
    write_jsonl(folder / "data" / "demo_chat.jsonl", eps[:32])
    write_jsonl(folder / "data" / "demo_chat_heldout.jsonl", eps[32:])
    return folder


async def wait_for(pilot, cond: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Let the app run until cond() holds; fail naming `what` after `timeout` seconds."""
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await pilot.pause(0.05)


_TEXT = re.compile(r'<text [^>]*?x="([\d.]+)"[^>]*?textLength="([\d.]+)"[^>]*?clip-path="url\(#[^)]*-line-(\d+)\)"[^>]*>(.*?)</text>')


def screen_text(app) -> str:
    """What the terminal shows now, as plain text lines (read from the app's public SVG screenshot:
    each piece of text sits at column x / character width of its line)."""
    rows: dict[int, dict[int, str]] = {}
    for x, length, line, raw in _TEXT.findall(app.export_screenshot()):
        text = html.unescape(raw).replace("\xa0", " ")
        if not text:
            continue
        col = round(float(x) / (float(length) / len(text)))
        row = rows.setdefault(int(line), {})
        for k, ch in enumerate(text):
            row[col + k] = ch
    height = app.size.height
    return "\n".join("".join(rows.get(n, {}).get(c, " ") for c in range(app.size.width)).rstrip()
                     for n in range(height))


class Notifications:
    """Every notification the app shows, seen through `run_test(message_hook=...)`."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def __call__(self, message) -> None:
        if isinstance(message, Notify):
            self.messages.append(message.notification.message)
