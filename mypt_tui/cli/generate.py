"""`mypt generate --model M --prompt P --max_new_tokens 50`: one completion from a checkpoint.

The prompt may be written with the tags, as the guide writes it; a prompt without any tag is
asked as a user turn (rendered like training data) and the model answers as the assistant.
The completion goes to stdout (streamed on a terminal); token count and speed go to stderr.
"""

from __future__ import annotations

import argparse
import sys
import time

from mypt_tui.flags import add_sampling_flags, flag, sampling_from_args
from mypt_tui.present.text import printable


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "generate", help="generate a completion from a checkpoint",
        description="Generate a completion from a checkpoint with KV-cached sampling. A prompt without "
                    "tags is sent as a user turn; a prompt with tags (<myPT_user>...) is used as written.")
    p.add_argument("--model", "--model_name", "--model-name", dest="model", required=True,
                   help="checkpoint name under --checkpoints, a path, a run folder (its newest step), "
                        "or a MyPT checkpoint folder")
    p.add_argument("--prompt", required=True, help="the prompt text (tags allowed)")
    add_sampling_flags(p, "most tokens to generate")
    p.add_argument("--system", default=None, help="system prompt, used when the prompt has no tags")
    flag(p, "--no_cache", action="store_true", help="re-run the whole context every token (reference path)")
    p.add_argument("--device", default="auto", help="auto (cuda when available), cpu, cuda, cuda:N, mps")
    p.add_argument("--checkpoints", default="checkpoints", help="folder that --model names are looked up in")
    p.set_defaults(handler=run)


def prompt_ids(text: str, tok, system: str | None) -> list[int]:
    """Tags in the text are parsed (the guide's form); plain text becomes a user turn."""
    from engine.episode import Message
    from engine.render import render_prompt

    ids = tok.encode_prompt(text)
    if any(tok.is_tag(i) for i in ids):
        return ids
    return render_prompt([Message("user", text)], tok, system)


def run(args: argparse.Namespace) -> int:
    from engine.checkpoint import CheckpointError, load_model
    from engine.device import pick_device
    from engine.generate import StreamDecoder, default_stop_ids, fit_prompt, generate
    from engine.tokenizer import TokenizerError, from_state

    try:
        sampling = sampling_from_args(args)
        model, ckpt = load_model(args.model, device=str(pick_device(args.device)), root=args.checkpoints)
        tok = from_state(ckpt.tokenizer_state)
        ids = prompt_ids(args.prompt, tok, args.system)
    except (CheckpointError, TokenizerError, ValueError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    kept = fit_prompt(ids, model.config.block_size, sampling.max_new_tokens)
    if len(kept) < len(ids):
        print(f"note: the prompt has {len(ids)} tokens; its first {len(ids) - len(kept)} were dropped to fit "
              f"the context of {model.config.block_size}", file=sys.stderr)
    stops = default_stop_ids(tok)
    decoder = StreamDecoder(tok)
    stream = sys.stdout.isatty()
    text: list[str] = []
    count, last = 0, None
    start = time.perf_counter()
    try:
        for token in generate(model, ids, sampling, stop_ids=stops, use_cache=not args.no_cache):
            count, last = count + 1, token
            if token in stops:
                break
            piece = printable(decoder.feed(token))  # model output is data, never terminal commands
            text.append(piece)
            if stream and piece:
                sys.stdout.write(piece)
                sys.stdout.flush()
    except KeyboardInterrupt:
        print(file=sys.stderr)
        print("interrupted", file=sys.stderr)
        return 130
    elapsed = time.perf_counter() - start
    tail = printable(decoder.flush())
    if stream:
        sys.stdout.write(tail + "\n")
    else:
        sys.stdout.write("".join(text) + tail + "\n")
    sys.stdout.flush()
    why = f"stopped at {tok.id_to_tag[last]}" if last in stops else "max_new_tokens reached"
    print(f"{count} tokens in {elapsed:.2f} s ({count / max(elapsed, 1e-9):.1f} tokens/s, "
          f"{'no cache' if args.no_cache else 'KV cache'}); {why}", file=sys.stderr)
    return 0
