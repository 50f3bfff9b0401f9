"""`mypt train`: the guide's `python train.py --model --config --dataset --output --tokenization`."""

from __future__ import annotations

import argparse
import signal
import sys

from engine.train.job import TrainRequest
from mypt_tui.flags import add_train_flags, request_from_args

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_STOPPED = 0, 1, 2, 130


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train", help="fine-tune a checkpoint (or train from scratch) on a prepared dataset",
        usage="mypt train [--model NAME | --init scratch] --config FILE --dataset DIR --output RUN "
              "[--resume | --overwrite] [--no-ui] [--<config key> VALUE ...]",
        description="Continue training a checkpoint on an episode dataset with assistant-only loss. "
                    "Every config key is also a flag that overrides the file (e.g. --max_iters 20).")
    add_train_flags(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    request = request_from_args(args)
    if not args.no_ui and sys.stdin.isatty() and sys.stdout.isatty():  # a terminal: train in the app
        from mypt_tui.app.app import run_app

        return run_app(train_request=request, autostart=True, checkpoints=args.checkpoints)
    return train_headless(request)


def train_headless(request: TrainRequest) -> int:
    """Train with progress on stderr and the final checkpoint on stdout; ctrl+c stops cleanly."""
    from engine.config import ConfigError
    from engine.sizing import SizeError
    from engine.train.job import TrainError, build_job
    from engine.train.loop import run_training
    from mypt_tui.present.console import ConsoleSink

    try:
        job = build_job(request)
        check_scratch_memory(job)
    except (ConfigError, TrainError, FileNotFoundError, SizeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE

    stop = {"requested": False}

    def on_sigint(signum, frame):  # noqa: ANN001 - signal handler signature
        if stop["requested"]:
            raise KeyboardInterrupt
        stop["requested"] = True
        print("\nstopping after this step (a final checkpoint is saved); ctrl+c again to abort",
              file=sys.stderr)

    old = signal.signal(signal.SIGINT, on_sigint)
    signal.signal(signal.SIGTERM, on_sigint)
    try:
        result = run_training(job, [ConsoleSink(sys.stderr, job.config.log_interval)],
                              should_stop=lambda: stop["requested"])
    except TrainError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        signal.signal(signal.SIGINT, old)
    if result.final_checkpoint:
        print(result.final_checkpoint)
    return {"completed": EXIT_OK, "stopped": EXIT_STOPPED}.get(result.reason, EXIT_FAILED)


def check_scratch_memory(job) -> None:  # noqa: ANN001 - engine.train.job.TrainJob
    """A model from scratch is sized by the config alone: refuse one that cannot fit before the
    trainer allocates it (a checkpoint's size is checked when it is read)."""
    from engine.config import ARCHITECTURE_KEYS
    from engine.device import DeviceError, pick_device
    from engine.model import GPTConfig
    from engine.sizing import check_memory
    from engine.tokenizer import GPT2_MODEL_VOCAB

    if job.init is not None or job.resume:
        return
    cfg = job.config
    try:
        device = pick_device(cfg.device)
    except DeviceError:
        return  # the trainer says why
    arch = {k: getattr(cfg, k) for k in ARCHITECTURE_KEYS}
    check_memory(GPTConfig(**{**arch, "vocab_size": cfg.vocab_size or GPT2_MODEL_VOCAB}), device)
