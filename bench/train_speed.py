"""Training throughput on the demo chat set: pad vs pack, supervised-only vs full output layer,
and the trainer against a bare loop on the same batches.

    python bench/train_speed.py [--steps 30] [--block_size 512]

Prints supervised tokens/s for each variant and the ratios. Targets on a 2-core CPU: pack at least
3x pad; the output layer at supervised positions only at least 2x the full output layer; the
trainer at least 0.9x the bare loop (its own overhead: events, audit, bookkeeping).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.batching import collate  # noqa: E402
from engine.config import TrainConfig, load_config  # noqa: E402
from engine.dataset import open_dataset  # noqa: E402
from engine.events import Step  # noqa: E402
from engine.model import GPT, GPTConfig  # noqa: E402
from engine.prepare import PrepareOptions, prepare  # noqa: E402
from engine.sampler import EpisodeSampler  # noqa: E402
from engine.train.job import TrainJob  # noqa: E402
from engine.train.loop import run_training  # noqa: E402
from engine.train.setup import census  # noqa: E402


def demo_dataset(workdir: Path) -> Path:
    out = workdir / "demo_chat"
    prepare(PrepareOptions(input=ROOT / "data" / "demo_chat.jsonl", output=out,
                           val_file=ROOT / "data" / "demo_chat_heldout.jsonl"))
    return out


def batches(split, cfg: TrainConfig, n: int, batching: str) -> list:
    elig = census(split, dataclasses.replace(cfg, batching=batching))
    sampler = EpisodeSampler(elig.eligible, split.lengths, batch_size=cfg.batch_size, block_size=cfg.block_size,
                             batching=batching, seed=cfg.epoch_seed)
    tok_pad = 50275
    return [collate(sampler.next_batch().rows, split, block_size=cfg.block_size, batching=batching, pad_id=tok_pad)
            for _ in range(n)]


def model_for(cfg: TrainConfig) -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig(n_layer=cfg.n_layer, n_head=cfg.n_head, n_embd=cfg.n_embd, block_size=cfg.block_size,
                         vocab_size=50304, tie_weights=cfg.tie_weights, bias=cfg.bias))


def bare_loop(model: GPT, bs: list, cfg: TrainConfig, full_output: bool = False) -> tuple[float, int]:
    """Forward, backward, clip, AdamW step over the batches: (seconds, supervised tokens)."""
    opt = torch.optim.AdamW(model.param_groups(cfg.weight_decay), lr=cfg.learning_rate)
    model.train()
    sup = 0
    t0 = time.perf_counter()
    for b in bs:
        loss = model.supervised_loss(b.x, b.y, b.mask, segment_ids=b.segment_ids, position_ids=b.position_ids,
                                     full_output=full_output) / max(b.supervised, 1)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        sup += b.supervised
    return time.perf_counter() - t0, sup


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--block_size", type=int, default=512)
    args = ap.parse_args()
    base = load_config(ROOT / "configs" / "demo" / "chat.toml")
    cfg = dataclasses.replace(base, block_size=args.block_size, max_iters=args.steps + 1, eval_interval=10_000,
                              save_every=10_000, warmup_iters=0, dropout=0.0, device="cpu", precision="fp32")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; model {cfg.n_layer}x{cfg.n_embd}, "
          f"block {cfg.block_size}, batch {cfg.batch_size}, {args.steps} steps each")
    with tempfile.TemporaryDirectory() as tmp:
        data = demo_dataset(Path(tmp))
        split = open_dataset(data).split("train")
        n = args.steps + 1  # the first step warms up and is not counted
        results = {}
        rows = (("pad", "pad", False), ("pack", "pack", False), ("pack, full output", "pack", True))
        for name, batching, full in rows:
            bs = batches(split, cfg, n, batching)
            model = model_for(cfg)
            bare_loop(model, bs[:1], cfg, full)
            secs, sup = bare_loop(model, bs[1:], cfg, full)
            results[name] = sup / secs
            print(f"{name:>18}: {sup / secs:10,.0f} supervised tokens/s ({secs / args.steps * 1000:.0f} ms/step)")
        print(f"pack / pad: {results['pack'] / results['pad']:.2f}x (target >= 3)")
        print(f"supervised-only / full output: {results['pack'] / results['pack, full output']:.2f}x (target >= 2)")

        # The trainer against the bare loop: same config, same batches (same sampler seed).
        steps: list[Step] = []
        run_training(TrainJob(config=cfg, dataset=data, output=Path(tmp) / "run"),
                     [lambda ev: steps.append(ev) if isinstance(ev, Step) else None])
        trainer_secs = steps[-1].elapsed - steps[0].elapsed
        trainer_sup = sum(s.supervised for s in steps[1:])
        bs = batches(split, cfg, n, cfg.batching)
        model = model_for(cfg)
        bare_loop(model, bs[:1], cfg)
        bare_secs, bare_sup = bare_loop(model, bs[1:], cfg)
        ratio = (trainer_sup / trainer_secs) / (bare_sup / bare_secs)
        print(f"trainer: {trainer_sup / trainer_secs:,.0f} vs bare loop {bare_sup / bare_secs:,.0f} supervised "
              f"tokens/s: {ratio:.2f}x (target >= 0.9)")


if __name__ == "__main__":
    main()
