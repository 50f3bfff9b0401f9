"""Decoding speed with and without the KV cache.

A 6-layer, 384-wide GPT (block 1024, GPT-2 vocabulary, random weights) generates 512 tokens
after a 256-token prompt, greedily, once with the cache and once re-running the whole context
each token. Prints tokens/s for both and the ratio (target: the cache at least 5x faster on CPU),
and checks that both produced the same tokens.

    .venv/bin/python bench/generate_speed.py [--new_tokens 512] [--prompt_tokens 256] [--device cpu] [--threads N]
"""

from __future__ import annotations

import argparse
import time

import torch

from engine.generate import SamplingConfig, generate
from engine.model import GPT, GPTConfig


def timed(model: GPT, prompt: list[int], sampling: SamplingConfig, use_cache: bool) -> tuple[list[int], float]:
    start = time.perf_counter()
    out = list(generate(model, prompt, sampling, use_cache=use_cache))
    if model.transformer.wte.weight.is_cuda:
        torch.cuda.synchronize()
    return out, time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--new_tokens", type=int, default=512)
    ap.add_argument("--prompt_tokens", type=int, default=256)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    cfg = GPTConfig(n_layer=6, n_head=6, n_embd=384, block_size=1024, vocab_size=50304)
    model = GPT(cfg).to(args.device).eval()
    prompt = torch.randint(0, 50257, (args.prompt_tokens,)).tolist()
    sampling = SamplingConfig(temperature=0.0, max_new_tokens=args.new_tokens)
    print(f"model: {model.num_params() / 1e6:.1f}M parameters, {cfg.n_layer} layers x {cfg.n_embd}, "
          f"block {cfg.block_size}; {args.prompt_tokens}-token prompt, {args.new_tokens} new tokens, "
          f"device {args.device}, {torch.get_num_threads()} threads")
    list(generate(model, prompt[:16], SamplingConfig(temperature=0.0, max_new_tokens=4)))  # warm-up
    cached, t_cache = timed(model, prompt, sampling, use_cache=True)
    print(f"KV cache:  {len(cached) / t_cache:8.1f} tokens/s ({t_cache:.2f} s)")
    full, t_full = timed(model, prompt, sampling, use_cache=False)
    print(f"no cache:  {len(full) / t_full:8.1f} tokens/s ({t_full:.2f} s)")
    print(f"speed-up:  {t_full / t_cache:.1f}x; same tokens: {cached == full}")


if __name__ == "__main__":
    main()
