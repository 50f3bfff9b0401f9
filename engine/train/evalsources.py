"""Opening what a run evaluates on, before step 0: the fixed train subset, the run's val split, the
named eval sets (`eval_sets`, `eval_dataset_dir`), the prompts file and the probe sample.

Every problem a user can cause is a TrainError naming the key, where it was set and the path:
a missing folder, a folder that is neither a prepared dataset nor a MyPT token-stream dataset,
another tokenizer, token ids outside the vocabulary, nothing that fits the run's block_size.
Relative paths are read from the current folder, as MyPT reads them from its project root.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from .. import jsonio
from ..config import TrainConfig
from ..config.evaluation import find_eval_path
from ..dataset import DatasetError, EpisodeSplit, open_dataset
from ..episode import Message
from ..layout import INDEX_FILE, METADATA_FILE, TOKENIZER_FILE
from ..sampler import Eligibility
from ..tokenizer import Tokenizer, TokenizerError, from_state
from .evalset import EvalSet, EvalSets, NamedSet, TokenWindows
from .gates import metric_problem
from .job import TrainError
from .probes import Probes, PromptProbe

Census = Callable[[EpisodeSplit, TrainConfig], Eligibility]


def build_eval_sets(tok: Tokenizer, train: EpisodeSplit, val: EpisodeSplit | None, elig: Eligibility,
                    cfg: TrainConfig, pad_id: int, census: Census) -> EvalSets:
    """Every eval set of the run, opened and checked, with the probes over them."""
    sets: list[NamedSet] = []
    if val is not None:
        val_elig = census(val, cfg)
        if len(val_elig.eligible):
            sets.append(NamedSet("val", "", "val", EvalSet(val, val_elig, cfg, pad_id), val))
    for name, (path, where) in named_paths(cfg).items():
        sets.append(open_set(name, path, where, tok, cfg, pad_id, census))
    origin = cfg.origins.get("eval_prompts_file")
    prompts = read_prompts(str(find_eval_path(cfg.eval_prompts_file, origin)), origin, tok) \
        if cfg.eval_prompts_file else []
    problem = metric_problem(cfg.early_stopping_metric, [s.name for s in sets] + (["prompts"] if prompts else []),
                             probes=cfg.probe_interval > 0)
    if cfg.early_stopping_patience and problem:
        raise TrainError(f"early_stopping_metric{_at(cfg.origins.get('early_stopping_metric'))}: {problem}")
    _check_gate_script(cfg)
    evals = EvalSets(EvalSet(train, elig, cfg, pad_id), sets)
    evals.probes = Probes(tok, cfg, [(s.name, s.episodes) for s in sets if s.episodes is not None], prompts)
    return evals


def _at(origin: str | None) -> str:
    return f" ({origin})" if origin else ""


def named_paths(cfg: TrainConfig) -> dict[str, tuple[str, str]]:
    """name -> (path, "eval_sets.name (where it was set)"); --eval_dataset_dir adds one named after its folder."""
    origin = cfg.origins.get("eval_sets")
    out = {name: (str(find_eval_path(path, origin)), f"eval_sets.{name}{_at(origin)}")
           for name, path in (cfg.eval_sets or {}).items()}
    if cfg.eval_dataset_dir:
        name = Path(cfg.eval_dataset_dir).name or "eval"
        where = f"eval_dataset_dir{_at(cfg.origins.get('eval_dataset_dir'))}"
        if name in out or name in ("val", "train", "prompts"):
            raise TrainError(f"{where}: its folder name '{name}' is taken by another eval set; "
                             "name it in eval_sets instead")
        out[name] = (str(find_eval_path(cfg.eval_dataset_dir, cfg.origins.get("eval_dataset_dir"))), where)
    return out


def open_set(name: str, path: str, where: str, tok: Tokenizer, cfg: TrainConfig, pad_id: int,
             census: Census) -> NamedSet:
    """One named set: a prepared dataset (its val split, else train) or a MyPT token stream."""
    root = Path(path)
    if not root.is_dir():
        raise TrainError(f"{where}: {path}: {'not a folder' if root.exists() else 'no such folder'} "
                         "(an eval set is a folder made by `mypt prepare`, or a MyPT token-stream dataset)")
    if _token_stream_splits(root):
        return _open_token_stream(name, root, where, tok, cfg)
    try:
        ds = open_dataset(root)
    except DatasetError as e:
        raise TrainError(f"{where}: {e}") from None
    _check_same_tokenizer(tok, ds.tokenizer_state, where, path)
    split_name = "val" if ds.split("val") is not None else "train"
    split = ds.split(split_name)
    assert split is not None  # open_dataset refuses a dataset without training episodes
    try:
        split.check_token_range(tok.model_vocab_size)
    except DatasetError as e:
        raise TrainError(f"{where}: {e}") from None
    elig = census(split, cfg)
    if not len(elig.eligible):
        raise TrainError(f"{where}: {path}: no episode of its {split_name} split fits the run "
                         f"(block_size {cfg.block_size}, episode_min_tokens {cfg.episode_min_tokens}, "
                         f'overlong "{cfg.overlong}")')
    return NamedSet(name, path, split_name, EvalSet(split, elig, cfg, pad_id), split)


def _check_same_tokenizer(tok: Tokenizer, state: dict, where: str, path: str) -> None:
    try:
        theirs = from_state(state)
    except (TokenizerError, TypeError, ValueError) as e:
        raise TrainError(f"{where}: {path}: unreadable tokenizer state ({e})") from None
    if not tok.same_as(theirs.state()):
        raise TrainError(f"{where}: {path} was prepared with the {theirs.kind} tokenizer "
                         f"({theirs.model_vocab_size} ids), but the run uses {tok.kind} "
                         f"({tok.model_vocab_size} ids): prepare it again with --tokenization {tok.kind}")


def _token_stream_splits(root: Path) -> dict[str, list[Path]]:
    """A MyPT token-stream dataset's shard files by split (empty for anything else)."""
    out = {}
    for split in ("val", "train"):
        folder = root / split
        if folder.is_dir() and not (folder / INDEX_FILE).exists():
            shards = sorted(folder.glob("*.bin"))
            if shards:
                out[split] = shards
    return out


def _open_token_stream(name: str, root: Path, where: str, tok: Tokenizer, cfg: TrainConfig) -> NamedSet:
    splits = _token_stream_splits(root)
    split = "val" if "val" in splits else "train"
    state: Any = None
    try:
        if (root / TOKENIZER_FILE).exists():
            state = jsonio.read_json_object(root / TOKENIZER_FILE)
        elif (root / METADATA_FILE).exists():
            kind = jsonio.read_json_object(root / METADATA_FILE).get("tokenization")
            state = {"tokenization": kind} if kind == "gpt2" else None
    except (OSError, ValueError) as e:
        raise TrainError(f"{where}: {e}") from None
    if state is None:
        raise TrainError(f"{where}: {root}: a token-stream dataset without {TOKENIZER_FILE} (or a gpt2 "
                         f"tokenization in {METADATA_FILE}): its tokenizer cannot be checked")
    _check_same_tokenizer(tok, state, where, str(root))
    shards = []
    for f in splits[split]:
        if f.stat().st_size % 4:
            raise TrainError(f"{where}: {f}: not a whole number of uint32 tokens")
        shards.append(np.memmap(f, dtype=np.uint32, mode="r"))
    windows = TokenWindows(shards, cfg)
    if not windows.windows:
        raise TrainError(f"{where}: {root}: no {split} shard holds block_size + 1 = {cfg.block_size + 1} tokens")
    top = max(int(w.max()) for w in windows.windows)
    if top >= tok.model_vocab_size:
        raise TrainError(f"{where}: {root}: token id {top} is outside the vocabulary of {tok.model_vocab_size} "
                         "(a damaged shard, or another tokenizer)")
    return NamedSet(name, str(root), split, windows, None)


def read_prompts(path: str, origin: str | None, tok: Tokenizer) -> list[PromptProbe]:
    """MyPT's eval prompts: {"prompts": {name: raw prompt with tags}, "expected_outputs": {name: text}}.
    A prompt without an expected output is probed and shown, not scored."""
    where = f"eval_prompts_file{_at(origin)}"
    try:
        data = jsonio.read_json_object(path, "eval prompts file")
    except FileNotFoundError:
        raise TrainError(f"{where}: {path}: no such file") from None
    except (OSError, ValueError) as e:
        raise TrainError(f"{where}: {e}") from None
    prompts, expected = data.get("prompts"), data.get("expected_outputs") or {}
    if not isinstance(prompts, dict) or not prompts or not isinstance(expected, dict):
        raise TrainError(f'{where}: {path}: expected {{"prompts": {{name: prompt}}, "expected_outputs": '
                         "{name: reply}} with at least one prompt")
    out = []
    for name, text in prompts.items():
        want = expected.get(name)
        if not isinstance(text, str) or not (want is None or isinstance(want, str)):
            raise TrainError(f"{where}: {path}: prompt '{name}' and its expected output must be strings")
        gold = Message("assistant", want) if want is not None else None
        gold_ids = len(tok.encode(want)) + 1 if want is not None else 0
        out.append(PromptProbe(str(name), tok.encode_prompt(text), gold, gold_ids))
    return out


def _check_gate_script(cfg: TrainConfig) -> None:
    gate = (cfg.gold_selection or {}).get("external_gate") or {}
    if gate.get("enabled") and not Path(gate["script"]).is_file():  # run from the current folder, as MyPT
        raise TrainError(f"gold_selection{_at(cfg.origins.get('gold_selection'))}: external_gate.script "
                         f"{gate['script']}: no such file")
