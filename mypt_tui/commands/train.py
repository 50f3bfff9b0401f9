"""`mypt train`: the guide's `python train.py --model --config --dataset --output --tokenization`."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from mypt_tui.cli import flag

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_STOPPED = 0, 1, 2, 130


def register(sub: argparse._SubParsersAction) -> None:
    from engine.config import add_config_flags

    p = sub.add_parser(
        "train", help="fine-tune a checkpoint (or train from scratch) on a prepared dataset",
        usage="mypt train [--model NAME | --init scratch] --config FILE --dataset DIR --output RUN "
              "[--resume | --overwrite] [--no-ui] [--<config key> VALUE ...]",
        description="Continue training a checkpoint on an episode dataset with assistant-only loss. "
                    "Every config key is also a flag that overrides the file (e.g. --max_iters 20).")
    job = p.add_argument_group("job")
    flag(job, "--model", "--model_name", "--model-name", dest="model",
         help="checkpoint to continue from: a name under checkpoints/, a run folder or a checkpoint folder")
    flag(job, "--init", help="'scratch' to start from random weights (the default without --model)")
    flag(job, "--config", "--config_file", "--config-file", dest="config",
         help="TOML config (or MyPT JSON); with --resume the run's own config is used")
    flag(job, "--dataset", help="prepared dataset folder (mypt prepare)")
    flag(job, "--output", "--output_dir", "--output-dir", dest="output",
         help="run folder; a bare name goes under checkpoints/")
    flag(job, "--tokenization", choices=["gpt2", "char"], help="must match the dataset's (checked)")
    flag(job, "--resume", action="store_true", help="continue the run in --output from its latest checkpoint")
    flag(job, "--overwrite", action="store_true", help="replace an existing run in --output")
    flag(job, "--no_ui", action="store_true", help="run headless: progress on stderr, results on stdout")
    flag(job, "--checkpoints", default="checkpoints", help="where names are looked up (default: checkpoints)")
    add_config_flags(p, flag)
    p.set_defaults(handler=run)


def under_root(name: str, root: str) -> Path:
    """A bare name means a folder under the checkpoints root (the guide's WebUI form writes names)."""
    p = Path(name)
    return p if len(p.parts) > 1 or p.is_absolute() or p.exists() else Path(root) / name


def build_job(args: argparse.Namespace):
    """The TrainJob the flags describe (raises ConfigError/TrainError with a user message)."""
    from engine.config import TrainConfig, apply_overrides, load_config, overrides_from_args, resolve_config_path
    from engine.runs import CONFIG_FILE, read_run_file
    from engine.trainer import TrainError, TrainJob

    if not args.output:
        raise TrainError("--output is required (the run folder, e.g. checkpoints/my_run)")
    output = under_root(args.output, args.checkpoints)
    if args.init not in (None, "scratch"):
        raise TrainError(f"--init takes 'scratch'; to continue from {args.init!r} use --model {args.init}")
    if args.init == "scratch" and args.model:
        raise TrainError("--init scratch and --model contradict each other: choose one")
    if args.resume and args.overwrite:
        raise TrainError("--resume and --overwrite contradict each other: choose one")
    dataset = args.dataset
    if args.resume:
        saved = read_run_file(output)
        config_path = Path(args.config) if args.config else output / CONFIG_FILE
        dataset = dataset or saved.get("dataset")
    else:
        config_path = resolve_config_path(args.config) if args.config else None
    if not dataset:
        raise TrainError("--dataset is required (a folder written by `mypt prepare`)")
    cfg = load_config(config_path) if config_path else TrainConfig()
    overrides = overrides_from_args(args)
    if overrides:
        cfg = apply_overrides(cfg, overrides)
    return TrainJob(config=cfg, dataset=Path(dataset), output=output, init=args.model, resume=args.resume,
                    overwrite=args.overwrite, tokenization=args.tokenization,
                    checkpoints_root=Path(args.checkpoints))


def run(args: argparse.Namespace) -> int:
    if not args.no_ui and sys.stdin.isatty() and sys.stdout.isatty():  # a terminal: train in the app
        from mypt_tui.app import run_app
        from mypt_tui.jobs import argv_from_args

        return run_app(train_argv=argv_from_args(args), autostart=True, checkpoints=args.checkpoints)
    from engine.config import ConfigError
    from engine.trainer import TrainError, run_training
    from mypt_tui.console import ConsoleSink

    try:
        job = build_job(args)
    except (ConfigError, TrainError, FileNotFoundError) as e:
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
