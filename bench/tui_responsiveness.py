"""How the app holds up while it trains: key-press latency and training throughput.

    python bench/tui_responsiveness.py                         # the demo config on the demo chat set
    python bench/tui_responsiveness.py --config C --dataset D --max_iters 40 --presses 30 --threads 1

1. Headless: `mypt train --no-ui` on the job; its tokens/s (median over steps, warm-up skipped).
2. In the app: the same job through `mypt train` on a pseudo-terminal (100x30), which opens the
   real app and starts the run. While it trains, two kinds of key presses are timed from writing
   the key to the terminal until the terminal output shows its effect:
   - typing: a character typed into the form's Flags field appears (the field is reached with
     Tab; a character nothing else on screen shows is typed, so the field shows one more);
   - switching: F2 / F1 switch between the Runs and Train screens (a whole-screen repaint).
   The same presses are timed again once the run has ended (the app's own cost). Then the run's
   tokens/s in the app.

Targets: median key-to-screen latency under 100 ms; in-app throughput at least 0.9x headless.
Both runs use the same config, data and number of steps, evaluation only at the ends, and the
same torch threads; run them back to back on an otherwise idle machine (`--rounds 2` alternates
them twice to expose drift).
"""

from __future__ import annotations

import argparse
import json
import os
import pty
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TYPED = "¤"  # a character no other text on the screen has
KEYS = {"f1": b"\x1bOP", "f2": b"\x1bOQ", "tab": b"\t", TYPED: TYPED.encode(), "ctrl+u": b"\x15"}
MARKERS = {"f2": "Best Val", "f1": "Dataset"}  # text only the target screen shows
ANSI = re.compile(rb"\x1b\[[0-9;?<>=]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)|\x1b[()][A-Z0-9]|\x1b[=>78]|\x1bP[^\x1b]*\x1b\\")


def steps_of(run: Path) -> list[dict]:
    out = []
    try:
        for line in (run / "events.jsonl").read_text().splitlines():
            d = json.loads(line)
            if d.get("type") == "step":
                out.append(d)
    except (FileNotFoundError, json.JSONDecodeError):
        pass
    return out


def done(run: Path) -> bool:
    try:
        return any(json.loads(line).get("type") in ("done", "error")
                   for line in (run / "events.jsonl").read_text().splitlines() if line.strip())
    except (FileNotFoundError, json.JSONDecodeError):
        return False


def throughput(run: Path, skip: int) -> float:
    """Median tokens/s over the run's steps after the first `skip` (warm-up)."""
    rates = [s["tokens_per_s"] for s in steps_of(run)[skip:]]
    if not rates:
        raise SystemExit(f"{run}: no steps after the first {skip}; raise --max_iters")
    return statistics.median(rates)


def train_argv(args: argparse.Namespace, root: Path, name: str) -> list[str]:
    return ["train", "--init", "scratch", "--config", str(args.config), "--dataset", str(args.dataset),
            "--output", name, "--checkpoints", str(root), "--max_iters", str(args.max_iters),
            "--eval_interval", str(args.max_iters), "--save_every", str(args.max_iters), *args.extra]


def headless(args: argparse.Namespace, root: Path, name: str) -> float:
    cmd = [sys.executable, "-m", "mypt_tui.cli", *train_argv(args, root, name), "--no-ui"]
    subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return throughput(root / name, args.skip)


class Terminal:
    """A process on a pseudo-terminal; output is collected with arrival times."""

    def __init__(self, cmd: list[str], cols: int, rows: int) -> None:
        import fcntl
        import struct
        import termios

        env = {**os.environ, "TERM": "xterm-256color", "COLORTERM": "truecolor", "COLUMNS": str(cols),
               "LINES": str(rows)}
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
            os.chdir(ROOT)
            os.execvpe(cmd[0], cmd, env)
        self.chunks: list[tuple[float, bytes]] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.fd, 65536)
            except OSError:
                return
            if not data:
                return
            with self.lock:
                self.chunks.append((time.perf_counter(), data))

    def press(self, key: str, marker: str, timeout: float = 10.0) -> float:
        """Seconds from writing the key until output after it contains `marker`."""
        with self.lock:
            seen = len(self.chunks)
        t0 = time.perf_counter()
        os.write(self.fd, KEYS[key])
        end = t0 + timeout
        tail = b""
        while time.perf_counter() < end:
            with self.lock:
                new = self.chunks[seen:]
            seen += len(new)
            for t, c in new:  # the arrival time of the chunk that completed the marker
                tail = (tail + c)[-16384:]
                if marker in ANSI.sub(b"", tail).decode(errors="replace"):
                    return t - t0
            time.sleep(0.001)
        raise SystemExit(f"the screen did not show {marker!r} within {timeout}s of {key}; it showed "
                         f"{ANSI.sub(b'', tail)[-300:]!r}")

    def send(self, key: str, settle: float = 0.3) -> None:
        os.write(self.fd, KEYS[key])
        time.sleep(settle)

    def close(self) -> int:
        _, status = os.waitpid(self.pid, 0)
        return os.waitstatus_to_exitcode(status)


class Presses:
    """The two kinds of timed presses (see the module docstring), alternating."""

    def __init__(self, term: Terminal) -> None:
        self.term = term
        self.typed = 0
        self.rng = random.Random(0)

    def focus_flags(self) -> None:
        """From the form's first field (where the app starts) Tab reaches Flags in five steps."""
        for _ in range(5):
            self.term.send("tab")
        self.term.send("ctrl+u")

    def type_one(self) -> float:
        if self.typed == 20:  # keep it inside the field's width
            self.term.send("ctrl+u")
            self.typed = 0
        self.typed += 1
        return self.term.press(TYPED, TYPED * self.typed)

    def switch(self, i: int) -> float:
        key = "f2" if i % 2 == 0 else "f1"
        return self.term.press(key, MARKERS[key])

    def pause(self) -> None:
        time.sleep(self.rng.uniform(0.15, 0.5))  # off the beat of the app's update timer


def in_app(args: argparse.Namespace, root: Path, name: str) -> dict[str, list[float] | float]:
    cmd = [sys.executable, "-m", "mypt_tui.cli", *train_argv(args, root, name)]
    term = Terminal(cmd, 100, 30)
    run = root / name
    deadline = time.monotonic() + args.timeout
    while len(steps_of(run)) < args.skip + 1:
        if time.monotonic() > deadline:
            raise SystemExit(f"the in-app run made no steps in {args.timeout}s")
        time.sleep(0.1)
    out: dict = {"typing": [], "switching": [], "typing_idle": [], "switching_idle": []}
    time.sleep(2.0)  # the app lists checkpoints for the Init field just after it starts
    keys = Presses(term)
    keys.focus_flags()
    for i in range(args.presses):
        if done(run):
            print(f"  (the run ended after {i} typed keys; raise --max_iters for more)", file=sys.stderr)
            break
        out["typing"].append(keys.type_one())
        keys.pause()
    for i in range(args.presses):
        if done(run):
            print(f"  (the run ended after {i} screen switches; raise --max_iters for more)", file=sys.stderr)
            break
        out["switching"].append(keys.switch(i))
        keys.pause()
    if len(out["switching"]) % 2:
        term.press("f1", MARKERS["f1"])
    while not done(run):
        if time.monotonic() > deadline:
            raise SystemExit(f"the in-app run did not finish in {args.timeout}s")
        time.sleep(0.2)
    time.sleep(1.0)
    for i in range(min(args.presses, 10)):  # the same presses with nothing training
        out["switching_idle"].append(keys.switch(i))
        keys.pause()
    if len(out["switching_idle"]) % 2:
        term.press("f1", MARKERS["f1"])
    term.send("ctrl+u")  # back on Train, the Flags field has the focus again
    keys.typed = 0
    for _ in range(min(args.presses, 10)):
        out["typing_idle"].append(keys.type_one())
        keys.pause()
    term.send("f2")  # q on a screen without a text field quits
    os.write(term.fd, b"q")
    code = term.close()
    if code != 0:
        raise SystemExit(f"the app exited with {code}")
    out["tok_s"] = throughput(run, args.skip)
    return out


def summary(ms: list[float]) -> str:
    ms = sorted(x * 1000 for x in ms)
    if not ms:
        return "no presses"
    return f"median {statistics.median(ms):.0f} ms, p90 {ms[int(0.9 * (len(ms) - 1))]:.0f} ms, max {ms[-1]:.0f} ms " \
           f"({len(ms)} presses)"


def main() -> int:
    from mypt_tui.services.demo import demos, ensure_prepared

    demo = demos(ROOT)["chat"]
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default=str(ROOT / demo.config))
    p.add_argument("--dataset", default=None, help="a prepared dataset (default: the demo chat set, prepared if needed)")
    p.add_argument("--max_iters", type=int, default=40)
    p.add_argument("--presses", type=int, default=20)
    p.add_argument("--skip", type=int, default=3, help="warm-up steps left out of tokens/s")
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--timeout", type=float, default=1800)
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads in both runs (OMP_NUM_THREADS; default: torch's own choice)")
    p.add_argument("extra", nargs="*", help="more `mypt train` flags, after --")
    args = p.parse_args()
    if args.threads is not None:
        os.environ["OMP_NUM_THREADS"] = str(args.threads)  # inherited by both runs
    if args.dataset is None:
        ensure_prepared(demo)
        args.dataset = str(ROOT / demo.dataset)
    tmp = Path(tempfile.mkdtemp(prefix="mypt-bench-tui-"))
    try:
        lat: dict[str, list[float]] = {}
        heads, apps = [], []
        for r in range(args.rounds):
            heads.append(headless(args, tmp, f"headless{r}"))
            print(f"round {r + 1}: headless {heads[-1]:,.0f} tok/s", file=sys.stderr)
            got = in_app(args, tmp, f"app{r}")
            apps.append(got.pop("tok_s"))
            for k, v in got.items():
                lat.setdefault(k, []).extend(v)
            print(f"round {r + 1}: in app {apps[-1]:,.0f} tok/s; typing {summary(got['typing'])}", file=sys.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    head, app = statistics.median(heads), statistics.median(apps)
    print(f"job: {Path(args.config).name} on {Path(args.dataset).name}, {args.max_iters} steps, torch threads "
          f"{os.environ.get('OMP_NUM_THREADS', 'default')}, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f}")
    print(f"typing a character while training:  {summary(lat['typing'])}  (target: median < 100 ms)")
    print(f"switching screens while training:   {summary(lat['switching'])}")
    print(f"typing, nothing training:           {summary(lat['typing_idle'])}")
    print(f"switching screens, nothing training: {summary(lat['switching_idle'])}")
    print(f"throughput: headless {head:,.0f} tok/s, in app {app:,.0f} tok/s: {app / head:.2f}x (target >= 0.90x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
