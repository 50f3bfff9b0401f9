"""The prepare job: gold episodes (JSONL files or a folder) -> a prepared dataset (engine.dataset).

Called by `mypt prepare chat|tool` and by the app's Data screen (in a worker thread), so it
never prints: progress goes to `on_progress(done, total_or_None)`, cancellation comes from
`should_stop()`, and the result is a PrepareReport.

The stages, in order (job.prepare runs them inside a temp folder beside the output, renamed
into place only at the end; a failure, a cancel or a ctrl+c leaves any old output as it was):

1. options: check the options, the inputs and the output before anything is read.
2. inputs: each input file's sha256 and size, the progress total, the tokenizer.
3. work (pass 1, with render): stream each input through the renderer into a work split on
   disk, keeping a fixed 24-byte record per episode in memory; a large JSONL input is
   rendered by a few worker processes. Invalid episodes go to the skips tally (skips) with
   their typed reason (episode.SkipReason).
4. split: duplicate ids from 64-bit id hashes (candidates confirmed by reading their ids
   back), then the seeded train/val split of the valid episodes.
5. write (pass 2): copy the work splits into train/ and val/, a bounded block at a time.
6. report: train/val overlap, the metadata and tokenizer files, the PrepareReport.
"""

from .job import prepare
from .options import (
    DEFAULT_SEED,
    DEFAULT_VAL_SPLIT,
    FileCount,
    PrepareCancelled,
    PrepareError,
    PrepareOptions,
    PrepareReport,
)
from .render import PARALLEL_MIN_LINES, render_chunk
from .skips import KEEP_SKIPPED
from .split import n_val_episodes

__all__ = ["DEFAULT_SEED", "DEFAULT_VAL_SPLIT", "KEEP_SKIPPED", "PARALLEL_MIN_LINES", "FileCount", "PrepareCancelled",
           "PrepareError", "PrepareOptions", "PrepareReport", "n_val_episodes", "prepare", "render_chunk"]
