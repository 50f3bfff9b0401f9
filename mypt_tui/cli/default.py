"""`mypt` with no command: the app on the default job, or with --no-ui the same job headless.

The default job takes `mypt train` flags too (`mypt --no-ui --max_iters 40`): they change the
demo job as they would change `mypt train`'s, so the two never disagree on what a flag means.
"""

from __future__ import annotations

import sys

from mypt_tui.cli.train import EXIT_USAGE, train_headless
from mypt_tui.flags import UsageError, train_argv
from mypt_tui.services.demo import DemoMissing, default_request, demos, ensure_prepared, is_prepared

OWN_FLAGS = ("--no-ui", "--no_ui")  # `mypt`'s own flags; the rest of a command-less line is train flags


def with_train_flags(argv: list[str]) -> tuple[bool, list[str]] | None:
    """(--no-ui given, the train flags) of a command-less `mypt [--no-ui] --max_iters 40` line;
    None when a command or --help comes first, or there are no such flags (the parser reads those)."""
    rest = [a for a in argv if a not in OWN_FLAGS]
    if not rest or not rest[0].startswith("-") or rest[0] in ("-h", "--help"):
        return None
    return len(rest) < len(argv), rest


def run(no_ui: bool, flags: list[str] = ()) -> int:
    try:
        demo = demos()["chat"]
        request = default_request(demo, flags=list(flags))
    except DemoMissing as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except UsageError as e:
        print(f"mypt: error: {e}\n(with no command, mypt takes the flags of `mypt train` for its default job, "
              "e.g. `mypt --no-ui --max_iters 40`; see `mypt train --help`)", file=sys.stderr)
        return EXIT_USAGE
    if no_ui:
        return run_headless(demo, request)
    from mypt_tui.app.app import run_app

    return run_app(train_request=request if flags else None, checkpoints=request.checkpoints)


def run_headless(demo, request) -> int:  # noqa: ANN001 - a Demo and its TrainRequest
    """`mypt --no-ui`: prepare the demo chat set if needed, then train it with the console sink."""
    from engine.prepare import PrepareError

    try:
        if not is_prepared(demo):
            print(f"preparing {demo.input} (val: {demo.val_file}) into {demo.dataset} ...", file=sys.stderr)
            ensure_prepared(demo)
    except PrepareError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    request.command = ["mypt", "train", "--no-ui", *train_argv(request)]
    print(" ".join(request.command), file=sys.stderr)
    return train_headless(request)
