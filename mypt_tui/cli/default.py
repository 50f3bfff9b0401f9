"""`mypt` with no command: the app on the default job, or with --no-ui the same job headless."""

from __future__ import annotations

import sys

from mypt_tui.cli.train import train_headless
from mypt_tui.flags import train_argv
from mypt_tui.services.demo import DemoMissing, default_request, demos, ensure_prepared, is_prepared


def run(no_ui: bool) -> int:
    if no_ui:
        return run_headless()
    from mypt_tui.app.app import run_app

    return run_app()


def run_headless() -> int:
    """`mypt --no-ui`: prepare the demo chat set if needed, then train it with the console sink."""
    from engine.prepare import PrepareError

    try:
        demo = demos()["chat"]
    except DemoMissing as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        if not is_prepared(demo):
            print(f"preparing {demo.input} (val: {demo.val_file}) into {demo.dataset} ...", file=sys.stderr)
            ensure_prepared(demo)
    except PrepareError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    request = default_request(demo)
    request.command = ["mypt", "train", "--no-ui", *train_argv(request)]
    print(" ".join(request.command), file=sys.stderr)
    return train_headless(request)
