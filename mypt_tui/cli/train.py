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
    from engine.errors import user_message
    from engine.train.job import TrainError, build_job
    from engine.train.loop import run_training
    from mypt_tui.present.console import ConsoleSink, console_log_sinks

    try:
        if request.input_file:
            from mypt_tui.cli.prepare_text import stream_of

            request.dataset = stream_of(request)
        job = build_job(request)
    except (ConfigError, TrainError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE

    stop = {"requested": False}
    console = ConsoleSink(sys.stderr, job.config.log_interval)

    def on_sigint(signum, frame):  # noqa: ANN001 - signal handler signature
        if stop["requested"]:
            raise KeyboardInterrupt
        stop["requested"] = True
        print("\nstopping after this step (a final checkpoint is saved); ctrl+c again to abort",
              file=sys.stderr)

    old = signal.signal(signal.SIGINT, on_sigint)
    signal.signal(signal.SIGTERM, on_sigint)
    try:
        result = run_training(job, [console, *console_log_sinks(job.config)], should_stop=lambda: stop["requested"])
    except TrainError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as e:  # noqa: BLE001 - once the run started, the console printed its error line
        if not console.started or user_message(e) is None:
            raise  # not yet started, or a bug: the CLI's boundary reports it (with its traceback log)
        return EXIT_FAILED
    finally:
        signal.signal(signal.SIGINT, old)
    if result.final_checkpoint:
        print(result.final_checkpoint)
    return {"completed": EXIT_OK, "stopped": EXIT_STOPPED}.get(result.reason, EXIT_FAILED)
