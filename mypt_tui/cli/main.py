"""`mypt`: one console script. No arguments opens the terminal app; subcommands run headless.

Each subcommand lives in `mypt_tui/cli/<name>.py` with `register(subparsers)` (which sets
`handler`); heavy imports (torch, textual) happen inside the handlers, so `mypt --help` stays fast.
"""

from __future__ import annotations

import argparse
import os
import sys

from mypt_tui.cli import audit, chat, default, eval, generate, importer, inspect, prepare, runs, serve, train
from mypt_tui.flags import flag
from mypt_tui.present.errors import describe_error

# in the order `mypt --help` lists them
COMMANDS = (generate, importer, prepare, inspect, train, audit, runs, serve, chat, eval)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mypt",
        description="Chat fine-tuning (SFT) of a small GPT. With no command, opens the terminal app.",
    )
    flag(parser, "--no_ui", action="store_true",
         help="run the app's default job (the demo config and gold set) headless")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS:
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command. The one error boundary of the CLI: whatever escapes a command becomes one
    line on stderr and a non-zero exit, never a traceback (a bug's traceback goes to a log file)."""
    try:
        job = default.with_train_flags(sys.argv[1:] if argv is None else argv)
        if job is not None:  # `mypt [--no-ui] --max_iters 40`: the default job with train flags
            return default.run(*job)
        args = build_parser().parse_args(argv)
        if args.command is None:
            return default.run(args.no_ui)
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `mypt ... | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as e:  # noqa: BLE001 - the boundary: every other error is reported, not raised
        print(f"error: {describe_error(e)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
