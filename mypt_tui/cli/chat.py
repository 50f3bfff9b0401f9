"""`mypt chat --model M`: a multi-turn chat with a checkpoint, tools included.

On a terminal it opens the app's Chat screen with the checkpoint picked. With `--no-ui`, or
when stdin or stdout is not a terminal, it is a plain REPL: each line read from stdin is a
user turn, the reply streams to stdout (one line per reply), the tool trace and notes go
to stderr, and it exits 0 at the end of the input. `/clear` starts a new conversation.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TextIO

from mypt_tui.flags import add_sampling_flags, flag, sampling_from_args
from mypt_tui.present.text import printable

CLEAR_COMMAND = "/clear"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "chat", help="chat with a checkpoint (multi-turn, streaming, calculator tool)",
        description="Chat with a checkpoint: the conversation is rendered like training data, the reply "
                    "streams, and a tool call (the calculator) is run and its result fed back. Opens the "
                    "app's Chat screen on a terminal; --no-ui reads user turns from stdin, one per line.")
    p.add_argument("--model", "--model_name", "--model-name", dest="model", default=None,
                   help="checkpoint name under --checkpoints, a path, or a run folder (its newest step); "
                        "required with --no-ui")
    p.add_argument("--system", default=None, help="system prompt (default: none with --no-ui; the app "
                                                  "starts with a generic one you can edit)")
    add_sampling_flags(p, "most tokens per reply")
    flag(p, "--max_tool_rounds", type=int, default=4, help="tool calls answered in a row before the turn ends")
    p.add_argument("--device", default="auto", help="auto (cuda when available), cpu, cuda, cuda:N, mps")
    p.add_argument("--checkpoints", default="checkpoints", help="folder that --model names are looked up in")
    flag(p, "--no_ui", action="store_true", help="a plain REPL on stdin/stdout instead of the app")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        sampling = sampling_from_args(args)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.max_tool_rounds < 0:
        print("error: --max_tool_rounds must be at least 0", file=sys.stderr)
        return 2
    headless = args.no_ui or not (sys.stdin.isatty() and sys.stdout.isatty())
    if not headless:
        return open_app(args, sampling)
    if args.model is None:
        print("error: --model is required with --no-ui (or when input is not a terminal)", file=sys.stderr)
        return 2
    from engine.chat import ChatSession
    from engine.checkpoint import CheckpointError
    from engine.device import pick_device
    from engine.tokenizer import TokenizerError

    try:
        session = ChatSession.from_checkpoint(args.model, device=str(pick_device(args.device)), root=args.checkpoints,
                                              system=args.system, sampling=sampling,
                                              max_tool_rounds=args.max_tool_rounds)
    except (CheckpointError, TokenizerError, ValueError, RuntimeError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"chatting with {session.checkpoint.path} (context {session.block_size} tokens); "
          f"tools: {', '.join(session.tools.names())}; {CLEAR_COMMAND} starts over", file=sys.stderr)
    if session.raw:
        print("a base model: each line is continued as plain text on its own (its reply may span lines)",
              file=sys.stderr)
    try:
        return repl(session, tolerant(sys.stdin), sys.stdout, sys.stderr)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130


def repl(session, stdin: TextIO, stdout: TextIO, stderr: TextIO) -> int:
    """User turns from stdin, replies to stdout, everything else to stderr; 0 at end of input."""
    interactive = stdin.isatty()
    while True:
        if interactive:
            stderr.write("> ")
            stderr.flush()
        line = stdin.readline()
        if not line:
            return 0
        text = line.rstrip("\n")
        if not text.strip():
            continue
        if text.strip() == CLEAR_COMMAND:
            session.clear()
            print("(new conversation)", file=stderr)
            continue
        try:
            _reply(session, text, stdout, stderr)
        except KeyboardInterrupt:  # ctrl+c ends the reply; at the prompt it ends the chat
            print("\n[stopped]", file=stderr)


def _reply(session, text: str, stdout: TextIO, stderr: TextIO) -> None:
    """One turn: the reply's text to stdout as it comes, the tool trace and stats to stderr."""
    from engine.chat import ContextTrimmed, ReplyDone, TokenText, ToolAnswered, ToolCalled

    at_line_start = True
    for update in session.send(text):
        if isinstance(update, TokenText):
            if update.part == "content":
                stdout.write(printable(update.text))
                stdout.flush()
                at_line_start = update.text.endswith("\n")
            continue
        if not at_line_start and not isinstance(update, ReplyDone):
            stdout.write("\n")
            stdout.flush()
            at_line_start = True
        if isinstance(update, ToolCalled):  # what the model wrote is data: shown escaped, and briefly
            if update.error is not None:
                print(f"[tool call not run] {update.error}: {brief(update.raw)}", file=stderr)
            else:
                print(f"[tool] {brief(update.name or '')} {brief(json.dumps(update.arguments, ensure_ascii=False))}",
                      file=stderr)
        elif isinstance(update, ToolAnswered):
            print(f"[tool result] {brief(update.content)}", file=stderr)
        elif isinstance(update, ContextTrimmed):
            print(f"[{update}]", file=stderr)
        elif isinstance(update, ReplyDone):
            stdout.write("\n")
            stdout.flush()
            print(f"[{update.summary()}]", file=stderr)


def brief(text: str, limit: int = 300) -> str:
    """Model-written text for the trace: control characters escaped, cut after `limit` characters."""
    cut = text if len(text) <= limit else text[:limit] + f"... ({len(text):,} characters)"
    return printable(cut)


def tolerant(stream: TextIO) -> TextIO:
    """stdin that never fails on its bytes: a line that is not UTF-8 arrives with U+FFFD in place."""
    reconfigure = getattr(stream, "reconfigure", None)
    if reconfigure is not None:
        try:
            reconfigure(errors="replace")
        except (ValueError, OSError):  # a stream that cannot change its decoder: read it as it is
            pass
    return stream


def open_app(args: argparse.Namespace, sampling) -> int:
    """The app, opened on the Chat screen with the checkpoint picked."""
    from mypt_tui.app.app import run_app
    from mypt_tui.app.screens.chat import ChatLaunch

    def configure(app) -> None:  # noqa: ANN001 - MyptApp, imported lazily
        app.chat_launch = ChatLaunch(model=args.model, system=args.system, sampling=sampling, device=args.device)

    return run_app(checkpoints=args.checkpoints, mode="chat", configure=configure)
