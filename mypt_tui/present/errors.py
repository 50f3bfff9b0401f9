"""Errors as the user should read them, in the CLI and in the app's dialogs."""

from __future__ import annotations

from pathlib import Path

# our own errors carry a message written for the user: shown as they are
USER_ERRORS = ("TrainError", "ConfigError", "UsageError", "PrepareError", "CheckpointError", "FileNotFoundError",
               "DatasetError", "TokenizerError", "DeviceError", "EvalCancelled")


def describe_error(exc: BaseException) -> str:
    """A worker's exception as one message: ours as written, anything else with its type."""
    if type(exc).__name__ in USER_ERRORS:
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def resume_hint(run_dir: Path | None) -> str:
    """How to continue a run that ended early, if it has something to continue from."""
    from engine.runs import latest_checkpoint

    if run_dir is None or latest_checkpoint(run_dir, resumable=True) is None:
        return ""
    return (f"\n\nNothing already checkpointed is lost. Continue with\n"
            f"  mypt train --resume --output {run_dir}\n(or Runs, F2: select the run, Resume).")
