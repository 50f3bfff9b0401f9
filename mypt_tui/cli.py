"""`mypt`: one console script. No arguments opens the terminal app; subcommands run headless.

Each subcommand lives in `mypt_tui/commands/<name>.py` with `register(subparsers)` and
`run(args) -> int`; heavy imports (torch) happen inside `run`, so `mypt --help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# subcommand -> module under mypt_tui.commands (each module: register(sub) sets handler=run)
COMMANDS: dict[str, str] = {
    "generate": "generate",
    "import": "importer",
    "prepare": "prepare",
    "inspect": "inspect",
    "train": "train",
    "audit": "audit",
    "runs": "runs",
    "serve": "serve",
    "chat": "chat",
    "eval": "eval",
}


def flag(parser: argparse._ActionsContainer, name: str, *more: str, **kw) -> argparse.Action:
    """Add `--name_with_underscores` and its dashed spelling `--name-with-underscores` as one flag."""
    names = [name]
    if "_" in name:
        names.append(name.replace("_", "-"))
    return parser.add_argument(*names, *more, **kw)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mypt",
        description="Chat fine-tuning (SFT) of a small GPT. With no command, opens the terminal app.",
    )
    flag(parser, "--no_ui", action="store_true",
         help="run the app's default job (the demo config and gold set) headless")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS.values():
        mod = importlib.import_module(f"mypt_tui.commands.{module}")
        mod.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        from mypt_tui.default_job import run_default

        return run_default(args.no_ui)
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
