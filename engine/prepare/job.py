"""prepare(): the stages in order, inside a temp folder beside the output that replaces the
output only at the end, so a failure, a cancel or a ctrl+c leaves any old output as it was."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Callable

from ..atomic import interrupts_held, replace_folder
from ..layout import METADATA_FILE, TEMP_PREFIX
from ..render import SystemPrompt
from ..runs import pid_alive
from .inputs import describe_inputs, make_tokenizer
from .options import (
    Control,
    PrepareError,
    PrepareOptions,
    PrepareReport,
    Progress,
    check_options,
    check_output,
    checked_inputs,
)
from .report import finish
from .split import assign_splits, mark_duplicates
from .weights import LossWeights
from .work import Rendered, render_inputs
from .write import write_splits


def prepare(opts: PrepareOptions, on_progress: Progress | None = None,
            should_stop: Callable[[], bool] | None = None) -> PrepareReport:
    """Prepare the dataset described by `opts`; raises PrepareError (nothing written) on failure."""
    started = time.perf_counter()
    check_options(opts)
    out = Path(opts.output)
    _remove_stale_temps(out)
    check_output(out, opts.overwrite)
    inputs = checked_inputs(opts, out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f"{TEMP_PREFIX}{out.name}.{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        tmp.mkdir()
        report = _run(opts, inputs, tmp, Control.of(on_progress, should_stop))
        replace_folder(tmp / "dataset", out, aside=tmp / "old")  # an old output is replaced only now
        report.output = out
        report.seconds = time.perf_counter() - started
        return report
    except OSError as e:  # a full disk, a file-size limit: the user's path, not our temp folder's
        raise named(e, tmp, out) from None
    finally:
        with interrupts_held():  # a second ctrl+c must not leave half of the temp folder behind
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)


def named(e: OSError, tmp: Path, out: Path) -> OSError:
    """A system error as the user should read it: one while writing (no file name, or a file of
    our temp folder) names the output; one while reading an input keeps the input's name."""
    where = e.filename
    if where is None or Path(os.fsdecode(where)).resolve().is_relative_to(tmp.resolve()):
        return OSError(e.errno, e.strerror or str(e), str(out))
    return e


def _run(opts: PrepareOptions, inputs: list[tuple[str, Path]], tmp: Path, control: Control) -> PrepareReport:
    """The stages, writing the new dataset at tmp/dataset."""
    described, total = describe_inputs(inputs, control.check_stop)
    system = SystemPrompt(opts.system_prompt, not opts.no_system_prompt)
    tok = make_tokenizer(opts, [path for _, path in inputs], system, control.check_stop)
    rendered = render_inputs(opts, inputs, tmp, tok, system, total, control)
    for work in rendered.works:
        mark_duplicates(work, rendered.skips, opts.strict)
    _check_rendered(opts, rendered)
    targets, warnings = assign_splits(rendered.works, opts)
    written = write_splits(rendered.works, targets, tmp / "dataset", control.check_stop,
                           LossWeights(tok) if opts.weighted_mask else None)
    report = finish(opts, tmp / "dataset", tok, described, rendered, targets, written, warnings)
    for work in rendered.works:
        shutil.rmtree(work.folder)
    return report


def _check_rendered(opts: PrepareOptions, rendered: Rendered) -> None:
    """Refuse before pass 2: --strict with an invalid episode, an input with nothing valid, a
    tool set without tool calls."""
    skips, works = rendered.skips, rendered.works
    if opts.strict and skips.total:
        raise PrepareError(skips.messages()[0])
    if not (~works[0].duplicate).any():
        first = skips.messages(upto_seq=works[0].last_seq)[:1]
        skipped = sum(fc.skipped for fc in works[0].files)
        raise PrepareError(f"no valid episodes in {opts.input}: all {skipped} were skipped"
                           + (f" (first: {first[0]})" if first else ""))
    if len(works) > 1 and not (~works[1].duplicate).any():
        raise PrepareError(f"no valid episodes in the --val_file {opts.val_file}")
    if opts.kind == "tool" and rendered.stats.with_tools == 0:
        raise PrepareError(f"no episode in {opts.input} has a tool call: `mypt prepare tool` is "
                           "for tool-calling sets (use `mypt prepare chat` for plain conversations)")


def _remove_stale_temps(out: Path) -> None:
    """Temp folders of an earlier prepare of this output that was killed (its pid is gone). One
    killed between the two renames of replace_folder holds the old output and nothing is at `out`:
    the old output goes back first."""
    for p in out.parent.glob(f"{TEMP_PREFIX}{out.name}.*"):
        pid = p.name.rsplit(".", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid)):
            if not out.exists() and (p / "old" / METADATA_FILE).exists():
                os.rename(p / "old", out)
            shutil.rmtree(p, ignore_errors=True)
