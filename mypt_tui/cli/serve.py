"""`mypt serve`: the same app in a browser, through textual-serve (the `serve` extra).

Each browser tab runs its own `mypt` process in the current directory. It listens on
127.0.0.1 unless told otherwise: the app can start training and read every run, so expose it
beyond this machine only on purpose (e.g. through an SSH tunnel rather than --host 0.0.0.0).
"""

from __future__ import annotations

import argparse
import shlex
import sys

from mypt_tui.flags import flag


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="serve the app in a web browser (needs the serve extra: textual-serve)",
                       description="Serve the terminal app over HTTP with textual-serve; open the printed URL. "
                                   "Binds to 127.0.0.1 by default.")
    flag(p, "--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    flag(p, "--port", type=int, default=8000, help="port to listen on (default: 8000)")
    flag(p, "--public_url", default=None,
         help="the URL browsers reach the server at, when it differs (a proxy or tunnel)")
    p.set_defaults(handler=run)


def app_command() -> str:
    """The shell command each browser session runs: this Python's mypt with no arguments (the app).

    The sessions ignore SIGINT: ctrl+c in the server's terminal reaches its whole process group,
    and a session killed mid-start printed a KeyboardInterrupt traceback, or outlived the server's
    event loop ("Event loop is closed"). The server asks each session to quit as it shuts down.
    """
    return "trap '' INT; exec " + shlex.join([sys.executable, "-m", "mypt_tui.cli"])


def run(args: argparse.Namespace) -> int:
    try:
        from textual_serve.server import Server
    except ImportError:
        print("error: `mypt serve` needs textual-serve, which is not installed. Install the serve extra:\n"
              "  pip install -e '.[serve]'   (or: pip install textual-serve)", file=sys.stderr)
        return 2
    if not 0 < args.port < 65536:
        print(f"error: --port {args.port} is not a port number (1-65535)", file=sys.stderr)
        return 2
    server = Server(app_command(), host=args.host, port=args.port, title="mypt", public_url=args.public_url)
    print(f"serving mypt at {server.public_url} (ctrl+c to stop)", file=sys.stderr)
    server.serve()
    return 0
