"""The files under a folder that an input names, sorted, with every subfolder read or reported.

`Path.rglob` passes over a subfolder it may not read without a word, and a prepare would then
make a dataset of less than the user gave it. `os.walk` with an error handler raises the
PermissionError instead, naming the folder, as for a file that cannot be read.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable


def files_under(folder: Path, keep: Callable[[Path], bool]) -> list[Path]:
    """Every file under `folder` (at any depth) that `keep` accepts, sorted; OSError for a
    subfolder that cannot be read."""
    return sorted(f for top, _, names in os.walk(folder, onerror=_raise) for f in (Path(top, n) for n in names)
                  if keep(f) and f.is_file())


def _raise(e: OSError) -> None:
    raise e
