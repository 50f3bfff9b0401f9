"""`mypt generate --model M --prompt P --max_new_tokens 50`: one completion from a checkpoint.

The prompt may be written with the tags, as the guide writes it; a prompt without any tag is
asked as a user turn (rendered like training data) and the model answers as the assistant, or
with --raw (the default for a base model: imported GPT-2, MyPT pretraining) continued as plain
text. MyPT's `--mode` picks its sampling settings; `--show_info` describes the checkpoint.
The completion goes to stdout (streamed on a terminal); token count and speed go to stderr.
"""

from __future__ import annotations

import argparse
import re
import sys
import time

from mypt_tui.flags import add_sampling_flags, flag, sampling_from_args
from mypt_tui.present.text import printable

# MyPT's generate.py modes and the preset each samples with (basic: --preset and the flags)
MODES = {"basic": None, "qa": "factual", "creative": "creative", "factual": "factual", "code": "code"}


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
    p.add_argument("--mode", choices=list(MODES), default=None,
                   help="MyPT's generation modes: basic (--preset, default chat), qa (the prompt is a question, "
                        "factual settings), creative, factual, code (those presets); \\n and \\t in the prompt "
                        "become a newline and a tab, as in MyPT")
    p.add_argument("--raw", action="store_true",
                   help="continue the prompt as plain text instead of asking it as a user turn (the default for "
                        "a base model that never had SFT, e.g. an imported GPT-2)")
    flag(p, "--show_info", action="store_true",
         help="describe the checkpoint (format, architecture, tokenizer, step) on stderr before generating")
    flag(p, "--no_cache", action="store_true", help="re-run the whole context every token (reference path)")
    p.add_argument("--device", default="auto", help="auto (cuda when available), cpu, cuda, cuda:N, mps")
    p.add_argument("--checkpoints", default="checkpoints", help="folder that --model names are looked up in")
    p.set_defaults(handler=run)


def prompt_ids(text: str, tok, system: str | None, raw: bool = False) -> list[int]:
    """Tags in the text are parsed (the guide's form); plain text becomes a user turn, or stays
    plain text to continue (`raw`)."""
    from engine.episode import Message
    from engine.render import render_prompt

    ids = tok.encode_prompt(text)
    if raw or any(tok.is_tag(i) for i in ids):
        return ids
    return render_prompt([Message("user", text)], tok, system)


def myPT_escapes(text: str) -> str:
    """MyPT's prompt escapes: \\n a newline, \\t a tab, \\\\ a backslash (nothing else: MyPT's
    unicode_escape decoding garbles text beyond Latin-1)."""
    return re.sub(r"\\([nt\\])", lambda m: {"n": "\n", "t": "\t", "\\": "\\"}[m.group(1)], text)


def checkpoint_info(ckpt, model) -> list[str]:
    """--show_info: what the checkpoint is (MyPT's generate.py prints the same facts)."""
    c = ckpt.config
    kind = {"mypt_checkpoint_v1": "mypt checkpoint", "myPT_folder": "MyPT checkpoint"}.get(ckpt.meta.get("format"),
                                                                                         ckpt.meta.get("format"))
    tok = ckpt.tokenizer_state.get("tokenization") or ckpt.tokenizer_state.get("token_kind")
    return [f"checkpoint: {ckpt.path} ({kind}, step {ckpt.step if ckpt.step is not None else 'unknown'})",
            f"  {c.n_layer} layers, {c.n_head} heads, {c.n_embd} wide, context {c.block_size}, vocabulary "
            f"{c.vocab_size}; {c.pos_encoding} positions, {c.mlp_type} MLP, {c.norm_type}"
            + (", tied embeddings" if c.tie_weights else ""),
            f"  {model.num_params() / 1e6:,.2f}M parameters, tokenizer {tok}",
            "  a base model (never fine-tuned on chat): prompts are continued as plain text" if ckpt.base_model
            else "  chat-trained: a prompt without tags is asked as a user turn (--raw continues it)"]


def run(args: argparse.Namespace) -> int:
    from engine.checkpoint import CheckpointError, load_model
    from engine.device import pick_device
    from engine.generate import StreamDecoder, default_stop_ids, fit_prompt, generate
    from engine.tokenizer import TokenizerError, from_state

    if args.mode is not None and MODES[args.mode] and args.preset:
        print(f"error: --mode {args.mode} samples with the {MODES[args.mode]} preset: drop --preset "
              "(or use --mode basic --preset ...)", file=sys.stderr)
        return 2
    try:
        sampling = sampling_from_args(args, MODES.get(args.mode))
        model, ckpt = load_model(args.model, device=str(pick_device(args.device)), root=args.checkpoints)
        tok = from_state(ckpt.tokenizer_state)
        text = myPT_escapes(args.prompt) if args.mode else args.prompt
        ids = prompt_ids(text, tok, args.system, raw=args.raw or ckpt.base_model)
    except (CheckpointError, TokenizerError, ValueError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if args.show_info:
        for line in checkpoint_info(ckpt, model):
            print(line, file=sys.stderr)
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
