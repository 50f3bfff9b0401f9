"""What a prepared dataset was made from: its input files' sha256, as its metadata records them
(`inputs[].files[]`), and whether it was made from given files as they are now (so that a demo
set or an `--input_file` stream is prepared again when its source changes, and only then)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from .layout import METADATA_FILE


def file_sha256(path: Path) -> str:
    """The sha256 of a file's bytes, read in blocks (memory stays flat for a large corpus)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def prepared_from(dataset: Path, files: list[Path]) -> dict[str, Any] | None:
    """The dataset's metadata if it was prepared from exactly these files (by name) with their
    content as it is now; None if not, or if there is no readable metadata."""
    try:
        meta = json.loads((dataset / METADATA_FILE).read_text(encoding="utf-8"))
        recorded = {f["file"]: f["sha256"] for src in meta["inputs"] for f in src["files"]}
    except (OSError, ValueError, KeyError, TypeError):
        return None
    wanted = {p.name: p for p in files}
    if set(recorded) != set(wanted) or any(recorded[n] != file_sha256(p) for n, p in wanted.items()):
        return None
    return meta
