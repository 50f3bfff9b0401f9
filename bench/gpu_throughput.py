"""Training throughput of the GPU fast path: the trainer's own step on synthetic chat episodes.

    python bench/gpu_throughput.py                  # on a GPU: everything below, in one command
    python bench/gpu_throughput.py --tiny --device cpu   # a smoke test of the script (seconds)

Models: GPT-2 124M-class (12 x 768, 12 heads, tied output layer) and the guide's 750M (32 x 1280,
20 heads), block 1024, vocabulary 50,304, precision "auto" (bf16 on GPUs that have it). For
each model, at batch 10 (the guide's): the fast path (pack, compiled, output layer at supervised
positions only), then one factor changed at a time: pad rows, no compile, the full output
layer; at the largest batch that fits: the fast path and pad (`--full-matrix`: every
combination at both batches). Plus, for 750M at batch 10, the guide's run as its config has it
(pad, dropout 0.15). Each row: tokens/s (real
tokens), supervised tokens/s, model TFLOP/s and MFU (engine.sizing.training_flops over the
device's peak), peak GPU memory, graphs compiled while warming up and recompiles while timed,
and the time of the guide's 50,000 rows (5,000 steps of 10) at that speed.

The step is the trainer's (engine.train.loop.step): batches drawn by the sampler, collated,
pinned and copied one step ahead; values read back every log_interval (10) steps. Episodes are
synthetic: lengths log-normal around `--median-len` tokens (cut at block_size + 1), the first
20-60% of each a prompt (not trained), random token ids. Results go to stdout and, with `--out`
(default: $OUT when set), to gpu_throughput.jsonl and gpu_throughput.md there, row by row, so a
run cut short keeps what it measured. `--budget-s` (500) stops starting new rows when the time left
would not fit one, so that the whole command ends within a 10-minute limit.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gc
import json
import math
import os
import sys
import time
import types
from pathlib import Path

try:  # the GPU image has Python 3.12 and no tomli: its tomllib is the same parser
    import tomli  # noqa: F401
except ImportError:  # pragma: no cover
    import tomllib

    sys.modules["tomli"] = tomllib

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine import distributed  # noqa: E402
from engine.batching import collate  # noqa: E402
from engine.config import TrainConfig  # noqa: E402
from engine.device import fast_math, peak_flops, pick_device, pick_dtype, use_compile  # noqa: E402
from engine.model import GPT, GPTConfig  # noqa: E402
from engine.sampler import EpisodeSampler  # noqa: E402
from engine.sizing import count_params, format_bytes, training_flops  # noqa: E402
from engine.train import loop  # noqa: E402
from engine.train.setup import Progress, SupervisedLoss  # noqa: E402

GUIDE_ROWS = 5000 * 10  # the guide's phase 3a: 5,000 steps of batch 10

MODELS = {
    "124M": dict(n_layer=12, n_head=12, n_embd=768, bias=True, tie_weights=True),
    "750M": dict(n_layer=32, n_head=20, n_embd=1280, bias=False, tie_weights=False),
    "tiny": dict(n_layer=2, n_head=4, n_embd=64, bias=False, tie_weights=False),
}


class SyntheticChat:
    """Chat-like episodes made on the fly from their index: a prompt (not trained) then a reply."""

    def __init__(self, n: int, median: int, block: int, vocab: int, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.lengths = np.clip(rng.lognormal(math.log(median), 0.7, n).astype(np.int64), 16, block + 1)
        self.vocab, self.seed = vocab, seed
        self.ids = [f"syn-{i}" for i in range(n)]
        self.hashes = ["0" * 16] * n

    def episode(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng([self.seed, i])
        n = int(self.lengths[i])
        mask = np.zeros(n, dtype=np.uint8)
        mask[int(n * rng.uniform(0.2, 0.6)):] = 1
        return rng.integers(0, self.vocab, n), mask


@dataclasses.dataclass
class Row:
    model: str
    batch: int
    batching: str
    compiled: bool
    supervised_only: bool
    dropout: float = 0.0
    label: str = ""

    @property
    def name(self) -> str:
        parts = [self.model, f"b{self.batch}", self.batching, "compiled" if self.compiled else "eager",
                 "sup-only" if self.supervised_only else "full-out"]
        if self.dropout:
            parts.append(f"dropout {self.dropout}")
        if self.label:
            parts.append(f"({self.label})")
        return " ".join(parts)


class Quiet:
    """What the trainer's outputs would do with the steps: kept, not written."""

    def __init__(self) -> None:
        self.steps = []

    def emit(self, ev) -> None:  # noqa: ANN001
        self.steps.append(ev)

    def audit_step(self, step, per_rank) -> None:  # noqa: ANN001
        pass

    def epoch_closed(self, step, d) -> None:  # noqa: ANN001
        pass


def graphs() -> int:
    """Graphs torch.compile has made in this process (dynamo's count)."""
    try:
        from torch._dynamo.utils import counters
    except ImportError:  # pragma: no cover
        return 0
    return int(counters["stats"]["unique_graphs"])


def arch(name: str, block: int, vocab: int, dropout: float) -> GPTConfig:
    return GPTConfig(block_size=block, vocab_size=vocab, dropout=dropout, **MODELS[name])


def build(row: Row, args: argparse.Namespace, device: torch.device, data: SyntheticChat):
    """The run the trainer would set up for this row (model on the device, fused AdamW on a GPU)."""
    a = arch(row.model, args.block, args.vocab, row.dropout)
    cfg = TrainConfig(n_layer=a.n_layer, n_head=a.n_head, n_embd=a.n_embd, block_size=args.block, dropout=row.dropout,
                      vocab_size=args.vocab, bias=a.bias, tie_weights=a.tie_weights, batch_size=row.batch,
                      batching=row.batching, compile=row.compiled, max_iters=args.warmup + args.steps,
                      warmup_iters=0, log_interval=args.log_interval, eval_interval=10**9, save_every=10**9,
                      device=str(device), precision=args.precision, peak_tflops=args.peak_tflops,
                      learning_rate=1e-5, episode_min_tokens=0)
    torch.manual_seed(0)
    with torch.device(device):
        model = GPT(a)
    model.train()
    dtype = pick_dtype(cfg.precision, device)
    fast_math(device, cfg.precision)
    optimizer = torch.optim.AdamW(model.param_groups(cfg.weight_decay), lr=cfg.learning_rate,
                                  betas=(cfg.beta1, cfg.beta2), **({"fused": True} if device.type == "cuda" else {}))
    train_model = SupervisedLoss(model, compiled=use_compile(cfg.compile, device), full_output=not row.supervised_only)
    sampler = EpisodeSampler(np.arange(len(data.lengths)), data.lengths, batch_size=row.batch, block_size=args.block,
                             batching=row.batching, seed=1)
    return types.SimpleNamespace(
        cfg=cfg, progress=Progress(0), dist=distributed.Dist(), device=device, dtype=dtype, model=model,
        train_model=train_model, optimizer=optimizer, scaler=torch.amp.GradScaler(device.type, enabled=False),
        sampler=sampler, data=types.SimpleNamespace(train=data, pad_id=0),
        enter_phase=lambda step: None)  # no curriculum: one phase


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(row: Row, args: argparse.Namespace, device: torch.device, data: SyntheticChat) -> dict:
    """Warm up (compiling), then time `args.steps` steps of the trainer's step; the numbers of one row."""
    torch._dynamo.reset()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    run = build(row, args, device, data)
    out = Quiet()
    steps = loop.Steps(run, out, time.time())
    flops: list[float] = []
    take, config = steps.feed.take, run.model.config

    def counted_take():
        fed = take()
        flops.append(sum(training_flops(config, positions=b.positions,
                                        outputs=b.supervised if row.supervised_only else b.positions,
                                        attention_pairs=b.attention_pairs) for b in fed.batches))
        return fed
    steps.feed.take = counted_take
    g0, t0 = graphs(), time.perf_counter()
    for _ in range(args.warmup):
        loop.step(run, steps)
    steps.flush()
    sync(device)
    g1, t1 = graphs(), time.perf_counter()
    for _ in range(args.steps):
        loop.step(run, steps)
    steps.flush()
    sync(device)
    g2, t2 = graphs(), time.perf_counter()
    if steps.failed is not None:
        raise RuntimeError(f"loss not finite at step {steps.failed[0]}")
    timed = out.steps[args.warmup:]
    secs = t2 - t1
    tokens, sup = sum(s.tokens for s in timed), sum(s.supervised for s in timed)
    model_flops = sum(flops[args.warmup:])
    peak = peak_flops(device, args.peak_tflops)
    step_s = secs / args.steps
    res = {
        **dataclasses.asdict(row), "name": row.name, "device": device_name(device), "torch": torch.__version__,
        "dtype": str(run.dtype).replace("torch.", "") if run.dtype else "float32",
        "params": count_params(run.model.config), "step_s": step_s,
        "tokens_per_s": tokens / secs, "supervised_per_s": sup / secs, "tflops": model_flops / secs / 1e12,
        "mfu": model_flops / secs / peak if peak else None,
        "peak_memory_bytes": int(torch.cuda.max_memory_allocated(device)) if device.type == "cuda" else None,
        "graphs_warmup": g1 - g0, "recompiles_timed": g2 - g1, "warmup_s": t1 - t0,
        "guide_rows_s": GUIDE_ROWS / row.batch * step_s, "readback": "deferred" if steps.deferred else "every step",
        "loss_last": timed[-1].loss,
    }
    del steps, out
    gc.collect()
    return res


def device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def fits(row: Row, args: argparse.Namespace, device: torch.device, data: SyntheticChat) -> bool:
    """Whether a row's batch trains (two steps) without running out of memory."""
    short = argparse.Namespace(**{**vars(args), "warmup": 1, "steps": 1})
    try:
        measure(row, short, device, data)
        return True
    except torch.cuda.OutOfMemoryError:
        return False
    finally:
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()


def largest_batch(model: str, at10: dict | None, args: argparse.Namespace, device: torch.device,
                  data: SyntheticChat) -> int:
    """The largest batch that fits uncompiled (compiled code keeps fewer activations, so every row
    but the full output layer's fits too): estimated from batch 10's peak memory (a fixed part +
    10 rows), then checked, 15% smaller while it does not fit."""
    if args.max_batch:
        return args.max_batch
    if device.type != "cuda" or at10 is None or not at10.get("peak_memory_bytes"):
        return 2 * 10
    total = torch.cuda.get_device_properties(device).total_memory
    n = count_params(arch(model, args.block, args.vocab, 0.0))
    fixed = 16 * n  # fp32 weights, gradients and AdamW's two moments
    per_row = max((at10["peak_memory_bytes"] - fixed) / 10, 1)
    batch = max(10, int((0.92 * total - fixed) / per_row))
    for _ in range(4):
        if fits(Row(model, batch, "pack", False, True), args, device, data):
            return batch
        batch = max(10, int(batch * 0.85))
    return batch


def flex_check(args: argparse.Namespace, device: torch.device) -> str:
    """FlexAttention against the dense mask on packed rows, on this device and dtype: loss and gradients."""
    a = GPTConfig(n_layer=2, n_head=12, n_embd=768, block_size=args.block, vocab_size=args.vocab, dropout=0.0)
    data = SyntheticChat(64, args.median_len, args.block, args.vocab, seed=7)
    sampler = EpisodeSampler(np.arange(64), data.lengths, batch_size=4, block_size=args.block, batching="pack")
    b = collate(sampler.next_batch().rows, data, block_size=args.block, batching="pack", pad_id=0).to(device)
    dtype = pick_dtype(args.precision, device)
    torch.manual_seed(0)
    with torch.device(device):
        m = GPT(a).train()
    res = {}
    for mode in ("dense", "flex"):
        m.packed_attention = mode
        m.zero_grad(set_to_none=True)
        with contextlib.ExitStack() as stack:
            if dtype is not None:
                stack.enter_context(torch.autocast(device.type, dtype=dtype))
            loss = SupervisedLoss(m)(b)
        loss.backward()
        res[mode] = loss.item(), torch.cat([p.grad.float().flatten() for p in m.parameters()])
    (ld, gd), (lf, gf) = res["dense"], res["flex"]
    cos = torch.nn.functional.cosine_similarity(gd, gf, dim=0).item()
    ok = abs(lf - ld) / abs(ld) < 2e-2 and cos > 0.999
    return (f"flex vs dense on {device_name(device)} ({str(dtype).replace('torch.', '') if dtype else 'fp32'}), "
            f"{int(b.mask.sum())} supervised tokens in {b.x.shape[0]} packed rows: loss {lf:.5f} vs {ld:.5f} "
            f"(rel {abs(lf - ld) / abs(ld):.1e}), gradient cosine {cos:.6f}: {'ok' if ok else 'MISMATCH'}")


def rows_for(args: argparse.Namespace, model: str, batch: int, guide: bool, large: bool) -> list[Row]:
    """The fast path and pad first, then (at batch 10) one factor changed at a time; with
    --full-matrix every combination at both batches."""
    if args.full_matrix:
        rows = [Row(model, batch, b, c, s) for b in ("pack", "pad") for c in (True, False) for s in (True, False)]
    else:
        rows = [Row(model, batch, "pack", True, True), Row(model, batch, "pad", True, True)]
        if not large:
            rows += [Row(model, batch, "pack", False, True), Row(model, batch, "pack", True, False)]
    if guide:
        rows.append(Row(model, batch, "pad", True, True, dropout=0.15, label="the guide's run"))
    if not args.cpu_compile and args.device_obj.type == "cpu":
        rows = [dataclasses.replace(r, compiled=False) for r in rows]
        rows = list({r.name: r for r in rows}.values())
    return rows


def fmt(x: float | None, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def table_line(r: dict) -> str:
    mem = format_bytes(r["peak_memory_bytes"]) if r["peak_memory_bytes"] else "-"
    return (f"| {r['name']} | {r['tokens_per_s']:,.0f} | {r['supervised_per_s']:,.0f} | {r['tflops']:.3g} | "
            f"{fmt(r['mfu'] and 100 * r['mfu'], '.1f')} | {mem} | {r['graphs_warmup']} / {r['recompiles_timed']} | "
            f"{r['step_s'] * 1000:.0f} | {r['guide_rows_s'] / 60:.1f} |")


HEADER = ("| row | tokens/s | supervised tokens/s | model TFLOP/s | MFU % | peak memory | graphs warm-up / "
          "recompiles timed | ms/step | guide's 50k rows, min |\n|---|---|---|---|---|---|---|---|---|")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--tiny", action="store_true", help="a tiny model, block 128, a few steps: a smoke test")
    ap.add_argument("--models", default=None, help="comma-separated: 124M,750M (default both; tiny with --tiny)")
    ap.add_argument("--steps", type=int, default=None, help="timed steps per row (default 20; 4 with --tiny)")
    ap.add_argument("--warmup", type=int, default=None, help="warm-up steps per row (default 10; 2 with --tiny)")
    ap.add_argument("--log-interval", type=int, default=10)
    ap.add_argument("--block", type=int, default=None)
    ap.add_argument("--vocab", type=int, default=None)
    ap.add_argument("--median-len", type=int, default=None, help="median episode length in tokens (default 350)")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--peak-tflops", type=float, default=None, help="override the device's peak (MFU)")
    ap.add_argument("--max-batch", type=int, default=None, help="the large batch (default: the largest that fits)")
    ap.add_argument("--no-max-batch", action="store_true", help="batch 10 only")
    ap.add_argument("--full-matrix", action="store_true", help="every pad/pack x compile x output combination")
    ap.add_argument("--cpu-compile", action="store_true", help="include compiled rows on the CPU (minutes)")
    ap.add_argument("--budget-s", type=float, default=500.0, help="start no row after this many seconds")
    ap.add_argument("--out", default=os.environ.get("OUT"), help="folder for gpu_throughput.jsonl/.md")
    args = ap.parse_args(argv)
    tiny = args.tiny
    args.steps = args.steps or (4 if tiny else 20)
    args.warmup = args.warmup if args.warmup is not None else (2 if tiny else 10)
    args.block = args.block or (128 if tiny else 1024)
    args.vocab = args.vocab or (512 if tiny else 50304)
    args.median_len = args.median_len or (40 if tiny else 350)
    if tiny:
        args.log_interval = min(args.log_interval, 2)
    device = pick_device(args.device)
    args.device_obj = device
    models = (args.models or ("tiny" if tiny else "750M,124M")).split(",")
    started = time.perf_counter()
    out_dir = Path(args.out) if args.out else None
    if out_dir:
        out_dir.mkdir(parents=True, exist_ok=True)
    peak = peak_flops(device, args.peak_tflops)
    head = (f"torch {torch.__version__}, {device_name(device)}, peak {fmt(peak and peak / 1e12, '.0f')} TFLOP/s, "
            f"block {args.block}, vocab {args.vocab}, median episode {args.median_len} tokens, "
            f"{args.warmup} warm-up + {args.steps} timed steps a row, read-back every {args.log_interval}")
    print(head, flush=True)
    lines = [head, ""]
    if device.type == "cuda":
        try:
            check = flex_check(args, device)
        except Exception as e:  # noqa: BLE001 - reported, and the rows still run
            check = f"flex vs dense check failed: {type(e).__name__}: {e}"[:500]
        print(check, flush=True)
        lines += [check, ""]
    lines.append(HEADER)
    print(HEADER, flush=True)
    data = SyntheticChat(40_000 if not tiny else 2_000, args.median_len, args.block, args.vocab)
    results: list[dict] = []
    plan: list[tuple[str, int | None, bool]] = []  # (model, batch or None: the largest, the guide's row)
    for model in models:
        plan.append((model, 10 if not tiny else 4, model == "750M"))
        if not args.no_max_batch:
            plan.append((model, None, False))
    slowest = 0.0
    for model, batch, guide in plan:
        if batch is None:
            if args.budget_s - (time.perf_counter() - started) < 2 * slowest:
                msg = f"| {model} largest batch | skipped: too little of the budget left to find it |"
                print(msg, flush=True)
                lines.append(msg)
                continue
            at10 = next((r for r in results if r["model"] == model and r["batch"] == (10 if not tiny else 4)
                         and r["batching"] == "pack" and not r["compiled"] and r["supervised_only"]), None)
            batch = largest_batch(model, at10, args, device, data) if not tiny else 8
        for row in rows_for(args, model, batch, guide, large=batch != (10 if not tiny else 4)):
            left = args.budget_s - (time.perf_counter() - started)
            if left < slowest * 1.2:
                msg = f"| {row.name} | skipped: {left:.0f} s of the budget left |"
                print(msg, flush=True)
                lines.append(msg)
                continue
            t = time.perf_counter()
            try:
                r = measure(row, args, device, data)
            except Exception as e:  # noqa: BLE001 - one row's failure (out of memory, a compile error) ends that row only
                what = "out of memory" if isinstance(e, torch.cuda.OutOfMemoryError) else \
                    f"failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:300]
                msg = f"| {row.name} | {what} |"
                print(msg, flush=True)
                lines.append(msg)
                gc.collect()
                if device.type == "cuda":
                    torch.cuda.empty_cache()
                continue
            slowest = max(slowest, time.perf_counter() - t)
            results.append(r)
            line = table_line(r)
            print(line, flush=True)
            lines.append(line)
            if out_dir:
                with open(out_dir / "gpu_throughput.jsonl", "a", encoding="utf-8") as fh:
                    fh.write(json.dumps(r) + "\n")
                (out_dir / "gpu_throughput.md").write_text("\n".join(lines) + "\n")
    summary = summarize(results)
    print(summary, flush=True)
    if out_dir:
        (out_dir / "gpu_throughput.md").write_text("\n".join(lines + ["", summary]) + "\n")
    if not results:
        raise SystemExit("no row could be measured (see each row's reason above)")


def summarize(results: list[dict]) -> str:
    """The targets, in words, from the rows measured."""
    out = [f"rows measured: {len(results)}; recompiles while timed: {sum(r['recompiles_timed'] for r in results)}"]
    for r in results:
        if r["label"] == "the guide's run":
            out.append(f"the guide's run ({r['name']}): {r['step_s'] * 1000:.0f} ms/step, 5,000 steps in "
                       f"{r['guide_rows_s'] / 60:.1f} min")
    for model in sorted({r["model"] for r in results}):
        mine = {(r["batch"], r["batching"], r["compiled"], r["supervised_only"], r["dropout"]): r
                for r in results if r["model"] == model}
        for batch in sorted({k[0] for k in mine}):
            pad, pack = mine.get((batch, "pad", True, True, 0.0)), mine.get((batch, "pack", True, True, 0.0))
            if pad and pack:
                out.append(f"{model} batch {batch}: pad MFU {fmt(pad['mfu'] and 100 * pad['mfu'], '.1f')}%, pack "
                           f"MFU {fmt(pack['mfu'] and 100 * pack['mfu'], '.1f')}%; supervised tokens/s pack / pad "
                           f"{pack['supervised_per_s'] / pad['supervised_per_s']:.2f}x")
    return "\n".join(out)


if __name__ == "__main__":
    main()
