"""`mypt inspect DATASET`: counts, length percentiles, mask ratio, families, and one episode
decoded with its trained tokens marked (green on a terminal, `[[...]]` when piped)."""

from __future__ import annotations

import argparse
import os
import sys

from mypt_tui.flags import flag
from mypt_tui.present.dataset_stats import COLUMNS, dataset_stats, notes, title
from mypt_tui.present.text import printable

TRAINED_OPEN, TRAINED_CLOSE = "[[", "]]"  # marks trained text when the output is not a terminal
_GREEN, _RESET = "\033[1;32m", "\033[0m"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "inspect", help="show a prepared dataset's statistics and one episode with its loss mask",
        description="Counts, length percentiles, mask ratio and skill families of a prepared "
                    "dataset, and one episode decoded with its trained tokens marked.")
    p.add_argument("dataset", help="a prepared dataset folder (made by `mypt prepare`)")
    flag(p, "--split", choices=("train", "val"), default="train", help="the split to show an episode of")
    flag(p, "--episode", default=None,
         help="an episode id, or an index in the split (default: the first episode)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from engine.dataset import DatasetError, open_dataset

    try:
        ds = open_dataset(args.dataset)
        check_damage(ds)
        split = ds.split(args.split)
        if split is None:
            raise DatasetError(f"{ds.root}: the {args.split} split is empty")
        i = _pick(ds, split, args.episode)
        print_stats(ds)
        print()
        show_episode(ds, split, i)
    except DatasetError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


def check_damage(ds) -> None:  # noqa: ANN001 - engine.dataset.Dataset
    """What would make the statistics wrong or the episode shown a lie: token ids outside the
    vocabulary, mask bytes other than 0/1, an episodes.jsonl that does not match the index
    (DatasetError naming the file and the place)."""
    vocab = ds.tokenizer().model_vocab_size
    for name in ("train", "val"):
        split = ds.split(name)
        if split is not None:
            split.check_token_range(vocab)
            split.check_mask()
            split.ids  # noqa: B018 - reads and cross-checks episodes.jsonl


def _pick(ds, split, wanted: str | None) -> int:
    """An id match wins; otherwise a number is an index into the split."""
    from engine.dataset import DatasetError

    if wanted is None:
        return 0
    found = split.locate(wanted)
    if found is not None:
        return found
    other = ds.split("val" if split.name == "train" else "train")
    if other is not None and other.find(wanted) is not None:
        raise DatasetError(f"episode {wanted!r} is in the {other.name} split: add --split {other.name}")
    where = (f"the \"id\" field of {split.folder / 'episodes.jsonl'}" if split.has_sidecar
             else f"\"{split.name}:INDEX\" (this dataset has no episodes.jsonl)")
    raise DatasetError(f"no episode {wanted!r} in {split.name} ({len(split)} episodes): give an index "
                       f"0..{len(split) - 1} or an id; ids are {where}")


def print_stats(ds) -> None:  # noqa: ANN001 - engine.dataset.Dataset
    stats = dataset_stats(ds)
    print(f"Dataset: {title(ds)}")
    widths = (6, 10, 13, 12, 8, 7, 7, 7, 7)
    print("  " + "".join(c.ljust(w) if k == 0 else c.rjust(w) for k, (c, w) in enumerate(zip(COLUMNS, widths))))
    shown = {s.name: s for s in stats}
    for name in ("train", "val"):
        if name not in shown:
            print(f"  {name:<6}{0:>10}")
            continue
        cells = shown[name].cells()
        print("  " + "".join(c.ljust(w) if k == 0 else c.rjust(w) for k, (c, w) in enumerate(zip(cells, widths))))
    for line in notes(ds, stats):
        print(f"  {line}")


def show_episode(ds, split, i: int, color: bool | None = None) -> None:
    """Print episode i of a split decoded, its trained (mask = 1) text marked."""
    from engine.dataset import mask_segments

    ids, mask = split.episode(i)
    rec = split.meta(i)
    sup = int(mask.sum())
    src = f", source {printable(str(rec['source']))}" if rec.get("source") else ""
    print(f"Episode {i} of {split.name}: id {printable(repr(rec['id']))}{src}, {len(ids)} tokens, {sup} trained")
    if color is None:
        color = sys.stdout.isatty() and "NO_COLOR" not in os.environ
    if color:
        print(f"(trained tokens in {_GREEN}green{_RESET})")
    else:
        print(f"(trained tokens between {TRAINED_OPEN} and {TRAINED_CLOSE})")
    parts = []
    for raw, trained in mask_segments(ids, mask, ds.tokenizer()):
        text = printable(raw)  # episode text is data: never terminal commands
        if trained:
            parts.append(f"{_GREEN}{text}{_RESET}" if color else f"{TRAINED_OPEN}{text}{TRAINED_CLOSE}")
        else:
            parts.append(text)
    print("".join(parts))
