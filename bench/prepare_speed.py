"""Benchmark `mypt prepare chat`: episodes/s and peak memory at 50,000 and 200,000 episodes.

    python bench/prepare_speed.py [--sizes 50000 200000] [--workers N] [--keep DIR]

Generates synthetic episodes (multi-turn, the three input schemas, system prompts, tool calls,
think blocks, a few invalid lines), prepares each size in a fresh subprocess and prints:
episodes/s of the whole command (interpreter start included) and of the job itself, the
episodes per CPU-second (all processes; what a busy shared machine cannot hide), the
command's peak RSS (the largest single process, from wait4), the peak RSS summed over the
command's process tree (sampled from /proc every 20 ms), and the 200k/50k memory ratios.
Targets on a 2-core machine: >= 10,000 episodes/s; peak RSS at 200k <= 1.2x that at 50k.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

WORDS = ("the a an of to in is it that for on with as be at by this from or have not are was but "
         "what which when how why who number answer question result value list file tool call sum "
         "seven twelve forty hundred quickly slowly carefully model token train data step loss "
         "python function return print error check please thanks sure here first second then").split()
SYSTEMS = ["You are a helpful assistant.", "You are MyPT, a concise assistant. Answer briefly.",
           "You are a careful math tutor. Show the result only."]


def sentence(rng: random.Random, lo: int, hi: int) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(lo, hi))]
    if rng.random() < 0.3:
        words.insert(rng.randrange(len(words)), str(rng.randint(0, 99999)))
    return " ".join(words).capitalize() + rng.choice(".?!")


def episode(i: int, rng: random.Random) -> dict:
    """One synthetic episode in one of the three input schemas, 1-4 turns."""
    turns = rng.choice((1, 1, 2, 2, 3, 4))
    schema = rng.random()
    system = rng.choice(SYSTEMS) if rng.random() < 0.7 else None
    meta = {"family": rng.choice(("math", "chat", "tools", "facts"))}
    if schema < 0.6:  # MyPT gold
        msgs = []
        for t in range(turns):
            msgs.append({"role": "user", "content": sentence(rng, 4, 30)})
            if rng.random() < 0.15:
                a, b = rng.randint(1, 999), rng.randint(1, 999)
                msgs.append({"role": "assistant_toolcall", "name": "calculator",
                             "arguments": {"expression": f"{a}*{b}"}})
                msgs.append({"role": "toolresult", "name": "calculator", "content": {"result": a * b}})
                msgs.append({"role": "assistant", "content": f"The result is {a * b}."})
            else:
                m = {"role": "assistant", "content": sentence(rng, 4, 60)}
                if rng.random() < 0.1:
                    m["think"] = sentence(rng, 4, 20)
                msgs.append(m)
        ep = {"episode_id": f"gold-{i:07d}", "messages": msgs, "meta": meta}
        if system:
            ep["system"] = system
        return ep
    if schema < 0.85:  # OpenAI chat
        msgs = [{"role": "system", "content": system}] if system else []
        for t in range(turns):
            msgs.append({"role": "user", "content": sentence(rng, 4, 30)})
            if rng.random() < 0.1:
                msgs.append({"role": "assistant", "content": None, "tool_calls": [
                    {"type": "function",
                     "function": {"name": "lookup", "arguments": json.dumps({"q": sentence(rng, 2, 5)})}}]})
                msgs.append({"role": "tool", "content": json.dumps({"answer": sentence(rng, 3, 10)})})
            msgs.append({"role": "assistant", "content": sentence(rng, 4, 60)})
        return {"id": f"oa-{i:07d}", "messages": msgs, "metadata": meta}
    conv = [{"from": "system", "value": system}] if system else []
    for t in range(turns):
        conv.append({"from": "human", "value": sentence(rng, 4, 30)})
        conv.append({"from": "gpt", "value": sentence(rng, 4, 60)})
    return {"conversations": conv}  # no id: "<file>:<line>"


def generate(path: Path, n: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(n):
            if i % 5000 == 4999:
                fh.write('{"messages": [{"role": "user", "content": "broken"}\n')  # invalid JSON
                continue
            fh.write(json.dumps(episode(i, rng), ensure_ascii=False) + "\n")


def tree_rss_kb(root: int) -> int:
    """Sum of VmRSS over a process and its descendants (Linux /proc)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            status = Path(f"/proc/{d}/status").read_text()
        except OSError:
            continue
        ppid = int(re.search(r"^PPid:\s+(\d+)", status, re.M).group(1))
        m = re.search(r"^VmRSS:\s+(\d+)", status, re.M)
        children.setdefault(ppid, []).append(int(d))
        rss[int(d)] = int(m.group(1)) if m else 0
    total, todo = 0, [root]
    while todo:
        p = todo.pop()
        total += rss.get(p, 0)
        todo += children.get(p, [])
    return total


def run_prepare(inp: Path, out: Path, workers: str | None) -> dict:
    cmd = [sys.executable, "-m", "mypt_tui.cli", "prepare", "chat", "--input", str(inp), "--output", str(out)]
    if workers is not None:
        cmd += ["--workers", workers]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak_tree = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak_tree
        while not done.is_set():
            peak_tree = max(peak_tree, tree_rss_kb(proc.pid))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout = proc.stdout.read()
    stderr = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    done.set()
    sampler.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"prepare failed ({proc.returncode}):\n{stderr}")
    m = re.search(r"Time: ([\d.]+) s", stdout)
    train = int(re.search(r"Train episodes: (\d+)", stdout).group(1))
    val = int(re.search(r"Val episodes:\s+(\d+)", stdout).group(1))
    return {"wall": wall, "job": float(m.group(1)), "episodes": train + val,
            "cpu": usage.ru_utime + usage.ru_stime,
            "maxrss_mb": usage.ru_maxrss / 1024, "tree_mb": peak_tree / 1024}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[50_000, 200_000])
    ap.add_argument("--workers", default=None, help="passed to mypt prepare --workers (default: auto)")
    ap.add_argument("--keep", default=None, help="keep inputs and outputs in this folder")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(args.keep or tmp)
        base.mkdir(parents=True, exist_ok=True)
        results = {}
        for n in args.sizes:
            inp = base / f"episodes_{n}.jsonl"
            if not inp.exists():
                generate(inp, n)
            out = base / f"prepared_{n}"
            if out.exists():
                import shutil
                shutil.rmtree(out)
            r = run_prepare(inp, out, args.workers)
            results[n] = r
            print(f"{n:>8,} lines: {r['episodes']:>8,} episodes  "
                  f"{r['episodes'] / r['wall']:>8,.0f} episodes/s (command)  "
                  f"{r['episodes'] / r['job']:>8,.0f} episodes/s (job)  "
                  f"{r['episodes'] / r['cpu']:>7,.0f} episodes/CPU-s  "
                  f"peak RSS {r['maxrss_mb']:6.1f} MB (largest process), {r['tree_mb']:6.1f} MB (process tree)  "
                  f"input {inp.stat().st_size / 1e6:.1f} MB", flush=True)
        if len(args.sizes) >= 2:
            a, b = results[args.sizes[0]], results[args.sizes[-1]]
            print(f"RSS ratio {args.sizes[-1]:,}/{args.sizes[0]:,}: {b['maxrss_mb'] / a['maxrss_mb']:.3f} "
                  f"(largest process), {b['tree_mb'] / a['tree_mb']:.3f} (process tree)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
