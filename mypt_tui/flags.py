"""The flags of `mypt`: made once here, read by the CLI commands and by the app's Train form.

Every config key is a flag `--<key>` (and `--<key-with-dashes>`), generated from the config
schema; the job flags of `mypt train` (--model, --config, --dataset, --output, ...) and the
sampling flags of `generate`/`chat` are declared here once. A `TrainRequest` goes both ways:
`request_from_args` reads it from parsed flags, `train_argv` writes it back as flags (a detached
run is `mypt train --no-ui <those flags>`).
"""

from __future__ import annotations

import argparse
import shlex
from typing import Any, Callable

from engine.config import FIELDS, GROUPS, ConfigError, format_value, parse_flag
from engine.errors import MyptError
from engine.layout import PRESET_NAMES, TOKENIZATIONS
from engine.train.job import SCRATCH, TrainRequest


class UsageError(MyptError):
    """Flags that `mypt train` would reject, with argparse's message."""


def flag(parser: argparse._ActionsContainer, name: str, *more: str, **kw: Any) -> argparse.Action:
    """Add `--name_with_underscores` and its dashed spelling `--name-with-underscores` as one flag."""
    names = [name]
    if "_" in name:
        names.append(name.replace("_", "-"))
    return parser.add_argument(*names, *more, **kw)


# -- config keys ---------------------------------------------------------------------------------

_METAVARS = {"int": "N", "float": "X", "str": "TEXT", "bool": "BOOL", "steps": "N|FRACTION", "curriculum": "JSON",
             "table": "JSON"}


def _flag_type(name: str) -> Callable[[str], Any]:
    def parse(raw: str) -> Any:
        try:
            return parse_flag(name, raw)
        except ConfigError as e:
            raise argparse.ArgumentTypeError(e.by_key.get(name, str(e))) from None
    return parse


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """`--<key>` for every config key, default None, one argument group per config group.
    A bool flag alone means true (`--compile`); it also takes true/false/1/0/yes/no."""
    for group_id, title in GROUPS:
        group = parser.add_argument_group(f"config: {title}")
        for f in FIELDS.values():
            if f.group != group_id:
                continue
            kw: dict[str, Any] = dict(
                dest=f.name, default=None, type=_flag_type(f.name),
                help=f"{f.help}; {f.allowed} (default: {format_value(f.name, f.default) or 'unset'})"
                .replace("%", "%%"),
                metavar="{" + ",".join(f.choices) + "}" if f.kind == "choice" else _METAVARS[f.kind],
            )
            if f.kind == "bool" or (f.kind == "choice" and "true" in f.choices):
                kw.update(nargs="?", const=True)
            flag(group, f"--{f.name}", **kw)


def overrides_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The config keys given as flags (and only those), as key -> value."""
    return {name: getattr(args, name) for name in FIELDS if getattr(args, name, None) is not None}


# -- mypt train ----------------------------------------------------------------------------------

def add_train_flags(p: argparse.ArgumentParser) -> None:
    """The job flags of `mypt train`, then every config key."""
    job = p.add_argument_group("job")
    flag(job, "--model", dest="model",
         help="checkpoint to continue from: a name under checkpoints/, a run folder or a checkpoint folder "
              "(a MyPT run's AdamW state comes along where its layout fits)")
    flag(job, "--model_name", dest="model_name",
         help="the guide's spelling of --model; with --init_from_model (MyPT's train.py) the run to write, "
              "as --output")
    flag(job, "--init_from_model", dest="init_from_model",
         help="MyPT's spelling: start from this checkpoint's weights only (no optimizer state)")
    flag(job, "--init", help=f"'{SCRATCH}' to start from random weights (the default without --model)")
    flag(job, "--config", "--config_file", "--config-file", dest="config",
         help="TOML config (or MyPT JSON); with --resume the run's own config is used")
    flag(job, "--dataset", "--dataset_dir", "--dataset-dir", dest="dataset",
         help="prepared dataset folder (mypt prepare, or MyPT's prepare scripts); with a curriculum, its first phase's")
    flag(job, "--input_file", dest="input_file",
         help="MyPT's train.py: a raw text file to pretrain on, prepared first as a token stream "
              "(data/prepared/<name>_stream, reused while the file is unchanged); instead of --dataset")
    flag(job, "--output", "--output_dir", "--output-dir", dest="output",
         help="run folder; a bare name goes under checkpoints/")
    flag(job, "--tokenization", choices=list(TOKENIZATIONS), help="must match the dataset's (checked)")
    flag(job, "--resume", action="store_true", help="continue the run in --output from its latest checkpoint")
    flag(job, "--overwrite", action="store_true", help="replace an existing run in --output")
    flag(job, "--no_ui", action="store_true", help="run headless: progress on stderr, results on stdout")
    flag(job, "--checkpoints", default="checkpoints", help="where names are looked up (default: checkpoints)")
    add_config_flags(p)


def request_from_args(args: argparse.Namespace, command: list[str] | None = None) -> TrainRequest:
    """The TrainRequest that parsed `mypt train` flags describe."""
    model, output = args.model, args.output
    if args.model_name is not None:
        if args.init_from_model is not None and output is None and model is None:
            output = args.model_name  # MyPT's train.py: --model_name names the run it writes
        else:
            model = model or args.model_name  # the phase 3a guide's train.py: the checkpoint to continue
    req = TrainRequest(output=output, dataset=args.dataset, config=args.config, model=model,
                       init_from_model=args.init_from_model, init=args.init, resume=args.resume,
                       overwrite=args.overwrite,
                       tokenization=args.tokenization, checkpoints=args.checkpoints,
                       overrides=overrides_from_args(args), input_file=getattr(args, "input_file", None))
    if command is not None:
        req.command = command
    return req


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing and exiting (the app shows the message)."""

    def error(self, message: str):  # noqa: ANN201 - argparse's signature
        raise UsageError(message)

    def exit(self, status: int = 0, message: str | None = None):  # noqa: ANN201
        raise UsageError((message or "").strip() or "usage: see `mypt train --help`")


_train_parser: _Parser | None = None


def parse_train_flags(argv: list[str]) -> TrainRequest:
    """The request `mypt train ARGV` describes; UsageError for flags it would reject."""
    global _train_parser
    if _train_parser is None:
        _train_parser = _Parser(prog="mypt train", add_help=False)
        add_train_flags(_train_parser)
    return request_from_args(_train_parser.parse_args(argv), command=["mypt", "train", *argv])


def split_flags(text: str) -> list[str]:
    """A typed line of flags (e.g. `--max_iters 50 --resume`) as argv."""
    try:
        return shlex.split(text)
    except ValueError as e:
        raise UsageError(f"flags: {e}") from None


JOB_FIELDS = ("model", "init_from_model", "init", "config", "dataset", "output", "tokenization")


def train_argv(req: TrainRequest, *, job_fields: tuple[str, ...] = JOB_FIELDS) -> list[str]:
    """`mypt train` flags that give back `req` (those of `job_fields`, the switches, the overrides)."""
    out: list[str] = []
    for name in job_fields:
        value = getattr(req, name)
        if value is not None:
            out += [f"--{name}", str(value)]
    if "checkpoints" in job_fields or (req.checkpoints != "checkpoints" and job_fields == JOB_FIELDS):
        out += ["--checkpoints", str(req.checkpoints)]
    out += [f"--{name}" for name in ("resume", "overwrite") if getattr(req, name)]
    for key, value in req.overrides.items():
        out += [f"--{key}", format_value(key, value) if not isinstance(value, str) else value]
    return out


# -- generate and chat ---------------------------------------------------------------------------

def add_sampling_flags(p: argparse.ArgumentParser, max_tokens_help: str) -> None:
    """--preset and the flags that override its values (read back by sampling_from_args)."""
    flag(p, "--max_new_tokens", type=int, default=None, help=f"{max_tokens_help} (default: the preset's, 256)")
    p.add_argument("--preset", default=None, choices=PRESET_NAMES,
                   help="sampling preset (default chat); the flags below override its values")
    p.add_argument("--temperature", type=float, default=None, help="0 = greedy")
    flag(p, "--top_k", type=int, default=None, help="sample among the k most likely tokens (0 = no limit)")
    flag(p, "--top_p", type=float, default=None, help="nucleus sampling mass (1 = no limit)")
    flag(p, "--repetition_penalty", type=float, default=None, help="> 1 discourages repeating context tokens")
    p.add_argument("--seed", type=int, default=None, help="make sampling repeatable")


def sampling_from_args(args: argparse.Namespace, preset_name: str | None = None):  # noqa: ANN201 - SamplingConfig
    """The preset (--preset, else `preset_name`, else chat), with every flag the user gave replacing its value."""
    from engine.generate import preset

    overrides = {k: getattr(args, k) for k in ("temperature", "repetition_penalty", "seed", "max_new_tokens")
                 if getattr(args, k) is not None}
    if args.top_k is not None:
        overrides["top_k"] = args.top_k or None
    if args.top_p is not None:
        overrides["top_p"] = None if args.top_p >= 1 else args.top_p
    return preset(args.preset or preset_name or "chat", **overrides)
