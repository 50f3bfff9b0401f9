"""The run folder: what may be written where, and nothing lost when a run cannot start.

`--output` names the run folder. A fresh run refuses a folder that already holds anything unless
`--overwrite` is given, and `--overwrite` only ever replaces a mypt run: never a folder of other
files, never the current folder or one above it, never a link or a file. The old run is moved
aside, not deleted, until the new run has started (its first event is written); a run that
cannot start puts it back and leaves no folder of its own behind.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..layout import TEMP_PREFIX
from ..runs import is_run, latest_checkpoint
from .job import TrainError, TrainJob


def check_run_dir(job: TrainJob) -> None:
    """Refuse a run folder that does not fit the job (read-only: nothing is touched yet)."""
    out = Path(job.output)
    if job.resume:
        if not out.is_dir():
            raise TrainError(f"--resume: {out} does not exist; start the run without --resume")
        if latest_checkpoint(out, resumable=True) is None:
            raise TrainError(f"--resume: {out} has no checkpoint with training state to resume from")
        return
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise TrainError(f"--output {out} is {'a link' if out.is_symlink() else 'a file'}, not a run folder: "
                         "choose another --output")
    if not out.exists() or not any(out.iterdir()):
        return
    if not job.overwrite:
        raise TrainError(f"{out} already holds a run: continue it with --resume, "
                         "start over with --overwrite, or choose another --output")
    _check_replaceable(out)


def _check_replaceable(out: Path) -> None:
    """--overwrite deletes a mypt run and nothing else."""
    here = Path.cwd().resolve()
    target = out.resolve()
    if target == here or target in here.parents:
        raise TrainError(f"--overwrite refuses to replace {out}: it is the current folder or one above it")
    if not is_run(out):
        raise TrainError(f"--overwrite refuses to replace {out}: it is not a mypt run (no run.json or "
                         "events.jsonl), so its files may be yours; choose another --output")


class RunFolder:
    """Makes the folder of a fresh run; `started()` commits it, `undo()` takes it back."""

    def __init__(self, job: TrainJob) -> None:
        self.out = Path(job.output)
        self.job = job
        self.aside: Path | None = None  # the run --overwrite replaces, until the new one has started
        self.made = False

    def make(self) -> None:
        if self.job.resume:
            return
        if self.job.overwrite and self.out.exists() and any(self.out.iterdir()):
            self.aside = self.out.parent / f"{TEMP_PREFIX}replaced-{self.out.name}.{os.getpid()}"
            os.rename(self.out, self.aside)
        elif self.out.exists():
            return  # an empty folder the user made: used as it is
        self.out.mkdir(parents=True, exist_ok=False)
        self.made = True

    def started(self) -> None:
        """The new run has begun (its first event is written): the replaced run goes now."""
        if self.aside is not None:
            shutil.rmtree(self.aside, ignore_errors=True)
            self.aside = None

    def undo(self) -> None:
        """The run could not start: remove what it made and put the replaced run back."""
        if self.made:
            shutil.rmtree(self.out, ignore_errors=True)
            self.made = False
        if self.aside is not None:
            os.rename(self.aside, self.out)
            self.aside = None
