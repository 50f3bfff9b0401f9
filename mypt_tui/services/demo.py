"""The demo catalogue, the embedded default job: the demo configs and demo gold sets, prepared on first use.

`mypt` opens the app on it and `mypt --no-ui` trains it headless. Where the files come from:
the current directory when it is a mypt checkout (it has configs/demo/ and data/demo_*.jsonl),
else the checkout the package was installed from (an editable install). Paths are shown
relative to the current directory when they are under it. Runs go to `checkpoints/` under the
current directory, as for every other mypt command.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import tomli

from engine.config.evaluation import eval_path_candidates
from engine.provenance import prepared_from
from engine.train.job import SCRATCH, TrainRequest
from mypt_tui.flags import parse_train_flags

PREPARED_DIR = Path("data") / "prepared"  # git-ignored
INSTALLED_ROOT = Path(__file__).resolve().parents[2]  # the checkout mypt was installed from (pip install -e)


class DemoMissing(Exception):
    """Neither the current directory nor the installed package is a mypt checkout."""


@dataclass(frozen=True)
class Demo:
    """One training type of the app's form (the guide's WebUI "Training Type")."""

    kind: str  # "chat" | "tool" | "pretrain": the `mypt prepare` kind
    title: str
    config: Path
    input: Path
    val_file: Path | None  # None for pretraining: its val split is drawn from the prose (PRETRAIN_VAL_SPLIT)
    dataset: Path  # where it is prepared (gpt2 tokenization)
    run_prefix: str  # default run names are <prefix>_<timestamp>
    companions: tuple[Demo, ...] = ()  # the other demos its config evaluates on (eval_sets): prepared with it


TITLES = {"pretrain": "Pre-training", "chat": "Chat SFT", "tool": "Tool SFT"}
PRETRAIN_VAL_SPLIT = 0.1  # of the demo prose's paragraphs: enough val tokens for a window of block_size 256


def is_checkout(path: Path) -> bool:
    return (path / "configs" / "demo" / "chat.toml").is_file() and (path / "data" / "demo_chat.jsonl").is_file()


def workspace() -> Path:
    """The folder the demo files are read from (see the module docstring)."""
    here = Path.cwd()
    if is_checkout(here):
        return here
    if is_checkout(INSTALLED_ROOT):
        return INSTALLED_ROOT
    raise DemoMissing("the demo config and gold sets were not found: run mypt from the mypt checkout "
                      "(the folder with configs/demo/ and data/demo_chat.jsonl), or install it with "
                      "`pip install -e .` from there")


def shown(path: Path) -> Path:
    """A path as the user should read it: relative when under the current directory."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return path


def demos(root: Path | None = None) -> dict[str, Demo]:
    root = workspace() if root is None else root
    out = {}
    for kind in ("chat", "tool"):
        out[kind] = Demo(kind=kind, title=TITLES[kind], config=shown(root / "configs" / "demo" / f"{kind}.toml"),
                         input=shown(root / "data" / f"demo_{kind}.jsonl"),
                         val_file=shown(root / "data" / f"demo_{kind}_heldout.jsonl"),
                         dataset=shown(root / PREPARED_DIR / f"demo_{kind}"), run_prefix=f"demo_{kind}")
    if (root / "data" / "demo_base.txt").is_file():  # the base model's prose (data/make_demo_base.py)
        out["pretrain"] = Demo(kind="pretrain", title=TITLES["pretrain"], val_file=None,
                               config=shown(root / "configs" / "demo" / "base.toml"),
                               input=shown(root / "data" / "demo_base.txt"),
                               dataset=shown(root / PREPARED_DIR / "demo_base"), run_prefix="demo_base")
    for kind, demo in out.items():
        named = _eval_set_paths(demo.config)
        out[kind] = replace(demo, companions=tuple(d for d in out.values() if d is not demo
                                                   and d.dataset.resolve() in named))
    return {kind: out[kind] for kind in TITLES if kind in out}  # the Type list's order: the guide's pipeline


def _eval_set_paths(config: Path) -> set[Path]:
    """Where the demo config's eval sets may be (engine.config.evaluation's lookup rule)."""
    try:
        sets = tomli.loads(config.read_text(encoding="utf-8")).get("eval_sets") or {}
    except (OSError, ValueError):
        return set()
    return {c.resolve() for path in sets.values() if isinstance(path, str)
            for c in eval_path_candidates(path, f"{config}:1")}


def find_demo(dataset: str | Path, root: Path | None = None) -> Demo | None:
    """The demo whose prepared dataset this path is (the app prepares those on first use)."""
    try:
        candidates = demos(root).values()
    except DemoMissing:
        return None
    target = Path(dataset).resolve()
    return next((d for d in candidates if d.dataset.resolve() == target), None)


def is_prepared(demo: Demo) -> bool:
    """The demo's set and its companions' (its eval sets) prepared, from the gold files as they are now."""
    return all(_current(d) for d in (demo, *demo.companions))


def _current(demo: Demo) -> bool:
    """Prepared, and from the gold files as they are now (an edited gold set is prepared again)."""
    return prepared_from(demo.dataset, [p for p in (demo.input, demo.val_file) if p is not None]) is not None


_prepare_lock = threading.Lock()  # the app may ask from two workers at once


def ensure_prepared(demo: Demo, on_progress: Callable[[int, int | None], None] | None = None,
                    should_stop: Callable[[], bool] | None = None) -> bool:
    """Prepare the demo's gold set and its companions' unless they are prepared already; True when
    it prepared now."""
    from engine.prepare import PrepareOptions, prepare

    with _prepare_lock:
        made = False
        for d in (demo, *demo.companions):
            if _current(d):
                continue
            if d.kind == "pretrain":
                _prepare_stream(d, on_progress, should_stop)
            else:
                prepare(PrepareOptions(input=d.input, output=d.dataset, kind=d.kind, tokenization="gpt2",
                                       val_file=d.val_file, overwrite=d.dataset.exists()),
                        on_progress=on_progress, should_stop=should_stop)
            made = True
        return made


def _prepare_stream(demo: Demo, on_progress: Callable[[int, int | None], None] | None,
                    should_stop: Callable[[], bool] | None) -> None:
    """`mypt prepare pretrain` of the demo prose; a cancel is PrepareCancelled, as for episodes."""
    from engine.corpus import CorpusError, CorpusOptions, prepare_corpus
    from engine.prepare import PrepareCancelled

    stop = should_stop or (lambda: False)
    try:
        prepare_corpus(CorpusOptions(demo.input, demo.dataset, tokenization="gpt2", val_split=PRETRAIN_VAL_SPLIT,
                                     overwrite=demo.dataset.exists()),
                       on_progress=(lambda n: on_progress(n, None)) if on_progress else None, should_stop=stop)
    except CorpusError:
        if stop():
            raise PrepareCancelled("prepare cancelled: nothing was written") from None
        raise


def unique_run_name(prefix: str, root: Path, now: float | None = None) -> str:
    """`<prefix>_<YYYYmmdd_HHMMSS>`, with `_2`, `_3`... when that folder exists already."""
    base = f"{prefix}_{time.strftime('%Y%m%d_%H%M%S', time.localtime(now))}"
    name, n = base, 1
    while (Path(root) / name).exists():
        n += 1
        name = f"{base}_{n}"
    return name


JOB_FIELDS = ("output", "dataset", "config", "model", "init", "tokenization")


def default_request(demo: Demo, root: Path = Path("checkpoints"), flags: list[str] = ()) -> TrainRequest:
    """The default job: the demo config trained from scratch into a new run under `root`, changed
    by `mypt train` flags as `mypt train` would read them (UsageError for flags it rejects)."""
    given = parse_train_flags(list(flags))
    root = Path(given.checkpoints) if given.checkpoints != "checkpoints" else Path(root)
    req = TrainRequest(init=SCRATCH, config=str(demo.config), dataset=str(demo.dataset),
                       output=unique_run_name(demo.run_prefix, root), checkpoints=str(root))
    for name in JOB_FIELDS:
        if getattr(given, name) is not None:
            setattr(req, name, getattr(given, name))
    if given.model is not None and given.init is None:
        req.init = None  # continuing a checkpoint, not from scratch
    req.resume, req.overwrite = given.resume, given.overwrite
    req.overrides = dict(given.overrides)
    return req
