"""How the app holds up while it trains: key-press latency and training throughput, for the test
suite's tiny config (many tiny steps: the hardest case for the UI) and the demo config.

    python bench/tui_responsiveness.py                    # both configs, one after the other
    python bench/tui_responsiveness.py --configs tiny --presses 30

For each config:
1. Headless: `mypt train --no-ui` for a fixed number of steps; its throughput. Once before the
   in-app run and once after, so that a shared machine's drift does not decide the ratio.
2. In the app: the same job through `mypt train` on a pseudo-terminal (100x30), which opens the
   real app and starts the run (many more steps, so it outlasts the presses). First the run is
   watched: the Train screen shows it and no key is pressed. Then, while it trains, key presses
   are timed from writing the key until the terminal output shows its effect:
   - typing: a character typed into the form's Flags field appears;
   - switching: F2 / F1 switch between the Runs and Train screens (a whole-screen repaint);
   - quit dialog: `q` and ctrl+c on the Runs screen open "Training is running"; `escape` closes it.
   Then the run is stopped (ctrl+t) and typing and switching are timed again with nothing
   training, and `q` quits.

Throughput is wall-clock: the tokens of each step over the time since the step before (so time
the trainer spends outside its own step timing, giving the UI its turn, counts), median over the
steps after warm-up, or over the steps in a window of time. The in-app run's is read from its
events twice: while it was watched, and while keys were pressed (a key every third of a second
for a minute or more, half of them whole-screen switches: far more UI work than watching a run
asks for; reported beside the target). Targets: while training, median key-to-screen < 100 ms
and p95 < 250 ms over the keys handled on the screen shown (typing, q / ctrl+c, escape; a screen
switch re-lays out and repaints the whole terminal, and is reported beside them); in-app
throughput while watched >= 0.9x headless (the mean of the two headless runs).
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
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

TYPED = "¤"  # a character no other text on the screen has
KEYS = {"f1": b"\x1bOP", "f2": b"\x1bOQ", "tab": b"\t", TYPED: TYPED.encode(), "ctrl+u": b"\x15", "end": b"\x1b[F",
        "q": b"q", "ctrl+c": b"\x03", "escape": b"\x1b", "ctrl+t": b"\x14", "enter": b"\r",
        "click_flags": b"\x1b[<0;70;4M\x1b[<0;70;4m"}  # a mouse click (SGR) on the Flags field, at 100x30
MARKERS = {"f2": "Best Val", "f1": "Dataset", "dialog": "Training is running", "escape": "Stop run"}
ANSI = re.compile(rb"\x1b\[[0-9;?<>=]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)|\x1b[()][A-Z0-9]|\x1b[=>78]"
                  rb"|\x1bP[^\x1b]*\x1b\\")
KINDS = ("typing", "switching", "quit dialog", "escape")
TARGETED = ("typing", "quit dialog", "escape")  # a key handled on the screen shown (switching repaints all)


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


def throughput(run: Path, skip: int, window: tuple[float, float] | None = None) -> float:
    """Median wall-clock tokens/s over the steps after the first `skip` (warm-up), or over the
    steps that ended within `window` (unix seconds)."""
    steps = steps_of(run)[skip:]
    pairs = [(a, b) for a, b in zip(steps, steps[1:]) if b["time"] > a["time"]]
    if window is not None:
        pairs = [(a, b) for a, b in pairs if window[0] <= a["time"] and b["time"] <= window[1]]
    if not pairs:
        raise SystemExit(f"{run}: no steps after the first {skip}" + (" in the window" if window else ""))
    return statistics.median(b["tokens"] / (b["time"] - a["time"]) for a, b in pairs)


class Job:
    """One config on one dataset: the flags of `mypt train` for a run of it."""

    def __init__(self, name: str, config: Path, dataset: Path, headless_steps: int, skip: int,
                 watch_s: float) -> None:
        self.name, self.config, self.dataset = name, config, dataset
        self.headless_steps, self.skip, self.watch_s = headless_steps, skip, watch_s

    def argv(self, root: Path, run: str, steps: int) -> list[str]:
        return ["train", "--init", "scratch", "--config", str(self.config), "--dataset", str(self.dataset),
                "--output", run, "--checkpoints", str(root), "--max_iters", str(steps),
                "--eval_interval", str(steps), "--save_every", str(steps)]


def make_jobs(names: list[str], tmp: Path) -> list[Job]:
    from helpers_app import tiny_config, tiny_dataset
    from mypt_tui.services.demo import demos, ensure_prepared

    jobs = []
    for name in names:
        if name == "tiny":
            jobs.append(Job("tiny (tests/helpers_app.py TINY_TOML, char set)", tiny_config(tmp, max_iters=10),
                            tiny_dataset(tmp / "tiny_data"), headless_steps=1000, skip=20, watch_s=15))
        elif name == "demo":
            demo = demos(ROOT)["chat"]
            ensure_prepared(demo)
            jobs.append(Job("demo (configs/demo/chat.toml, demo chat set)", ROOT / demo.config, ROOT / demo.dataset,
                            headless_steps=40, skip=3, watch_s=45))
        else:
            raise SystemExit(f"unknown config {name!r}: tiny or demo")
    return jobs


def headless(job: Job, root: Path, run: str) -> float:
    cmd = [sys.executable, "-m", "mypt_tui.cli", *job.argv(root, run, job.headless_steps), "--no-ui"]
    subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return throughput(root / run, job.skip)


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

    def press(self, key: str, marker: str, timeout: float = 30.0) -> float:
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
    """The timed presses (see the module docstring)."""

    def __init__(self, term: Terminal) -> None:
        self.term = term
        self.typed = 0
        self.rng = random.Random(0)

    def focus_flags(self) -> None:
        """Click the form's Flags field and empty it (from its end: the click may land inside a long text)."""
        self.term.send("click_flags")
        self.term.send("end")
        self.term.send("ctrl+u")
        self.typed = 0

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
        time.sleep(self.rng.uniform(0.15, 0.5))  # off the beat of the app's update timers


class InApp:
    """What the in-app run gave: key latencies by kind, and the windows (unix seconds) in which it
    was watched and had keys pressed."""

    def __init__(self) -> None:
        self.latency: dict[str, list[float]] = {k: [] for k in (*KINDS, "typing, idle", "switching, idle")}
        self.watched = self.pressed = (0.0, 0.0)


def in_app(job: Job, root: Path, presses: int, timeout: float) -> InApp:
    term = Terminal([sys.executable, "-m", "mypt_tui.cli", *job.argv(root, "app", 1_000_000)], 100, 30)
    run = root / "app"
    deadline = time.monotonic() + timeout
    while len(steps_of(run)) < job.skip + 2:
        if time.monotonic() > deadline:
            raise SystemExit(f"the in-app run made no steps in {timeout}s")
        time.sleep(0.1)
    result = InApp()
    out = result.latency
    time.sleep(2.0)  # the app lists checkpoints for the Init field just after it starts
    start = time.time()
    time.sleep(job.watch_s)
    result.watched = (start, time.time())
    start = time.time()
    keys = Presses(term)
    keys.focus_flags()
    for _ in range(presses):
        out["typing"].append(keys.type_one())
        keys.pause()
    for i in range(presses):
        out["switching"].append(keys.switch(i))
        keys.pause()
    if presses % 2 == 0:
        term.press("f2", MARKERS["f2"])  # on Runs: no text field has the focus, q is not text
    for i in range(max(presses // 2, 1)):
        out["quit dialog"].append(term.press("q" if i % 2 == 0 else "ctrl+c", MARKERS["dialog"]))
        keys.pause()
        out["escape"].append(term.press("escape", MARKERS["escape"]))
        keys.pause()
    term.press("f1", MARKERS["f1"])
    result.pressed = (start, time.time())
    term.send("ctrl+t", settle=0.5)  # stop the run (a final checkpoint), then the same with nothing training
    while not done(run):
        if time.monotonic() > deadline:
            raise SystemExit(f"the in-app run did not stop in {timeout}s")
        time.sleep(0.2)
    time.sleep(1.0)
    keys.focus_flags()
    for _ in range(min(presses, 10)):
        out["typing, idle"].append(keys.type_one())
        keys.pause()
    for i in range(min(presses, 10)):
        out["switching, idle"].append(keys.switch(i))
        keys.pause()
    if min(presses, 10) % 2 == 0:
        term.press("f2", MARKERS["f2"])
    os.write(term.fd, b"q")  # nothing trains: q quits at once
    code = term.close()
    if code != 0:
        raise SystemExit(f"the app exited with {code}")
    return result


def ms(values: list[float]) -> list[float]:
    return sorted(v * 1000 for v in values)


def summary(values: list[float]) -> str:
    v = ms(values)
    if not v:
        return "no presses"
    p95 = v[min(len(v) - 1, round(0.95 * (len(v) - 1)))]
    return f"median {statistics.median(v):5.0f} ms, p95 {p95:5.0f} ms, max {v[-1]:5.0f} ms ({len(v)} presses)"


def bench(job: Job, presses: int, timeout: float, threads: str) -> bool:
    tmp = Path(tempfile.mkdtemp(prefix="mypt-bench-tui-"))
    try:
        load = os.getloadavg()[0]
        before = headless(job, tmp, "headless-before")
        measured = in_app(job, tmp, presses, timeout)
        watched = throughput(tmp / "app", job.skip, measured.watched)
        pressed = throughput(tmp / "app", job.skip, measured.pressed)
        after = headless(job, tmp, "headless-after")
        head = (before + after) / 2
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    lat = measured.latency
    busy = [x for k in TARGETED for x in lat[k]]
    print(f"== {job.name}: torch threads {threads}, load average {load:.1f} at the start, "
          f"{os.getloadavg()[0]:.1f} at the end")
    for kind, values in lat.items():
        print(f"  {kind + (', training' if 'idle' not in kind else ''):24} {summary(values)}")
    v = ms(busy)
    med, p95 = statistics.median(v), v[min(len(v) - 1, round(0.95 * (len(v) - 1)))]
    print(f"  {'keys, training':24} {summary(busy)}  (typing, q/ctrl+c, escape; targets: median < 100 ms, "
          "p95 < 250 ms)")
    print(f"  throughput, headless       {head:,.0f} tok/s (before {before:,.0f}, after {after:,.0f})")
    print(f"  throughput, app, watched   {watched:,.0f} tok/s: {watched / head:.2f}x headless (target >= 0.90x)")
    print(f"  throughput, app, keys      {pressed:,.0f} tok/s: {pressed / head:.2f}x headless (while the keys above "
          "were pressed)")
    return med < 100 and p95 < 250 and watched / head >= 0.9


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--configs", default="tiny,demo", help="comma-separated: tiny, demo (default both)")
    p.add_argument("--presses", type=int, default=20, help="timed presses of each kind while training")
    p.add_argument("--timeout", type=float, default=1800)
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads in both runs (OMP_NUM_THREADS; default: torch's and the app's own choice)")
    args = p.parse_args()
    if args.threads is not None:
        os.environ["OMP_NUM_THREADS"] = str(args.threads)  # inherited by both runs
    threads = os.environ.get("OMP_NUM_THREADS", "default")
    print(f"machine: {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f} at the start")
    with tempfile.TemporaryDirectory(prefix="mypt-bench-data-") as data:
        ok = [bench(job, args.presses, args.timeout, threads) for job in make_jobs(args.configs.split(","), Path(data))]
    print("all targets met" if all(ok) else "some targets missed")
    return 0 if all(ok) else 1


if __name__ == "__main__":
    sys.exit(main())
