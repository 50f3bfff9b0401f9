"""Peak memory of one training step with and without activation checkpointing (`use_checkpoint`).

    python bench/memory_checkpointing.py [--n_layer 8] [--n_embd 384] [--block_size 1024] [--batch_size 8]

Each variant runs in a fresh process: it builds the model and AdamW, then takes two steps (forward,
backward, optimizer step) on random tokens of a 128-token vocabulary (so the output layer is small
and activations dominate). On CPU it reports the peak resident memory of the steps above what the
process held before them (VmHWM - VmRSS, from /proc), and on CUDA torch.cuda.max_memory_allocated;
with the time of the second step and the pre-flight estimate (engine.sizing.model_report) beside it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _status(key: str) -> int:
    """A /proc/self/status figure in bytes (VmRSS, VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(key)


def child(args: argparse.Namespace) -> dict:
    import torch

    sys.path.insert(0, str(ROOT))
    from engine.model import GPT, GPTConfig
    from engine.sizing import model_report

    torch.manual_seed(0)
    device = torch.device(args.device)
    cfg = GPTConfig(n_layer=args.n_layer, n_head=args.n_head, n_embd=args.n_embd, block_size=args.block_size,
                    vocab_size=128, dropout=0.0, bias=False)
    model = GPT(cfg).to(device).train()
    model.checkpointing = args.checkpointing
    opt = torch.optim.AdamW(model.param_groups(0.1), lr=1e-4)
    x = torch.randint(0, 128, (args.batch_size, args.block_size), device=device)
    mask = torch.ones_like(x, dtype=torch.bool)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
    else:
        before = _status("VmRSS")
    seconds = 0.0
    for _ in range(2):
        t0 = time.perf_counter()
        loss = model.supervised_loss(x, x, mask)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
    peak = (torch.cuda.max_memory_allocated(device) if device.type == "cuda" else _status("VmHWM")) - before
    est = model_report(cfg, args.batch_size, checkpointing=args.checkpointing)["activations_bytes"]
    return {"checkpointing": args.checkpointing, "peak_bytes": peak, "step_s": seconds, "estimate_bytes": est}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n_layer", type=int, default=8)
    p.add_argument("--n_head", type=int, default=6)
    p.add_argument("--n_embd", type=int, default=384)
    p.add_argument("--block_size", type=int, default=1024)
    p.add_argument("--batch_size", type=int, default=8)
    p.add_argument("--device", default="cpu")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--checkpointing", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(child(args)))
        return
    base = [sys.executable, __file__, "--child", *sys.argv[1:]]
    runs = [json.loads(subprocess.run(base + flag, check=True, capture_output=True, text=True).stdout)
            for flag in ([], ["--checkpointing"])]
    mib = 1 << 20
    print(f"model: {args.n_layer} layers x {args.n_embd} wide, batch {args.batch_size} x {args.block_size} tokens, "
          f"{args.device}")
    for r in runs:
        print(f"  use_checkpoint={str(r['checkpointing']).lower():5}  peak step memory {r['peak_bytes'] / mib:8.0f} MiB"
              f"  (estimate of activations {r['estimate_bytes'] / mib:6.0f} MiB)  step {r['step_s']:.2f} s")
    off, on = runs
    print(f"  checkpointing: {on['peak_bytes'] / off['peak_bytes']:.2f}x the memory, "
          f"{on['step_s'] / off['step_s']:.2f}x the step time")


if __name__ == "__main__":
    main()
