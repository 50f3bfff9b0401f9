"""The one event stream of a training run.

The trainer emits these dataclasses to sinks (plain callables). The JSONL sink always writes
`<run>/events.jsonl`; the headless console and the terminal app render the same events, and the
app can attach to a headless run, or replay a finished one, from that file alone. A line is one
JSON object: `type`, `step`, `time` (unix seconds) and the event's own fields.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterator

from . import jsonio


@dataclass
class Event:
    type: ClassVar[str] = "event"
    step: int
    time: float = field(default_factory=time.time, kw_only=True)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, **{k: _finite(v) for k, v in asdict(self).items()}}


@dataclass
class RunStart(Event):
    """A run (or a resumed run) begins; `preflight` is what the pre-flight report printed."""

    type: ClassVar[str] = "run_start"
    run_dir: str
    max_iters: int
    config: dict[str, Any]
    model: dict[str, Any]  # model config + parameter count
    preflight: dict[str, Any]
    notes: list[str] = field(default_factory=list)  # e.g. "Using loss masking ..."
    resumed: bool = False
    init: str = "scratch"  # "scratch", or the checkpoint the weights came from
    pid: int = field(default_factory=os.getpid)
    name: str = ""  # the config's name and description (MyPT configs carry them)
    description: str = ""


@dataclass
class Step(Event):
    """One optimizer step. `loss` is the mean over all supervised tokens of the step.

    Every step has its event. On a GPU the trainer reads values back only every log_interval
    steps (and before an eval, a save or the end), so the events of those steps arrive together,
    each with its own exact loss; tokens_per_s, mfu and the times are the interval's average.
    """

    type: ClassVar[str] = "step"
    loss: float
    lr: float
    grad_norm: float
    tokens: int
    supervised: int
    tokens_per_s: float
    supervised_per_s: float
    epoch: int
    epoch_progress: float  # fraction of the current epoch done after this step
    elapsed: float
    eta_s: float
    episodes: list[str] = field(default_factory=list)  # ids trained in this step, in order
    mfu: float | None = None  # model FLOPs per second / the device's peak (None: no peak known, e.g. the CPU)
    peak_memory_bytes: int | None = None  # most bytes the run's tensors held on the GPU so far (None: CPU)


@dataclass
class Eval(Event):
    """Masked loss and token accuracy on fixed samples. `sets` has one entry per eval set (the run's
    own val split as "val", then each of eval_sets): {loss, token_accuracy, tokens, kind, split, path};
    a number that is not finite is null there."""

    type: ClassVar[str] = "eval"
    val_loss: float | None
    train_loss: float  # on a fixed train subset, never the training stream
    val_accuracy: float | None = None  # masked next-token accuracy
    val_tokens: int = 0
    train_accuracy: float | None = None  # masked next-token accuracy on the train subset (saturation)
    sets: dict[str, dict[str, Any]] = field(default_factory=dict)
    seconds: float = 0.0  # what this eval took


@dataclass
class Probe(Event):
    """Greedy replies on the fixed probe sample of each set, scored like `mypt eval`.

    `sets`: name -> {turns, exact, formatted, tool_turns, tool_valid, exact_match, format_compliance,
    tool_call_validity, families: {family: same counts and rates}}; `replies`: [{set, episode, turn,
    family, gold, reply, exact, formatted, problem}]. `skipped` says why no round ran (its budget)."""

    type: ClassVar[str] = "probe"
    sets: dict[str, dict[str, Any]] = field(default_factory=dict)
    replies: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0  # this round
    spent: float = 0.0  # every probe round of this process so far
    share: float = 0.0  # spent / the process's run time so far
    budget: float = 0.0  # the share probes may take (probe_budget)
    skipped: str = ""


@dataclass
class Gate(Event):
    """The checkpoint choice after an eval: whether these weights became best/ and why.

    `guards`: the loss guards that fired (code -> what they saw: overfit, rises, regression);
    `regressed`: the eval sets whose loss regressed past gold_selection's eval_regression;
    `gate`: the external gate's run ({ran, ok, returncode, passed, metric, error, seconds,
    output_json}); `saturation`: the token-accuracy detector ({detected, reason, first_step});
    `early_stop`: why the run stops here, empty when it goes on."""

    type: ClassVar[str] = "gate"
    strategy: str
    chosen: bool
    reason: str
    val_loss: float | None = None
    best_step: int | None = None  # the step best/ holds after this decision
    blocked: bool = False  # a guard or the external gate kept these weights out of best/
    guards: dict[str, str] = field(default_factory=dict)
    regressed: list[str] = field(default_factory=list)
    gate: dict[str, Any] | None = None
    saturation: dict[str, Any] | None = None
    early_stop: str = ""


@dataclass
class EpochStart(Event):
    type: ClassVar[str] = "epoch_start"
    epoch: int
    episodes: int
    seed: int | None


@dataclass
class EpochEnd(Event):
    type: ClassVar[str] = "epoch_end"
    epoch: int
    trained: int
    dropped: int  # the incomplete last batch under epoch_drop_last


@dataclass
class PhaseStart(Event):
    """A curriculum phase begins after `step`: its dataset trains from the next step on."""

    type: ClassVar[str] = "phase_start"
    phase: int  # 1-based
    name: str
    dataset: str
    eligible: int
    until: int | None = None  # the step it ends at (None: the end of the run)
    description: str = ""


@dataclass
class CheckpointSaved(Event):
    type: ClassVar[str] = "checkpoint"
    path: str
    kind: str  # "periodic", "best", "final"
    val_loss: float | None = None
    audit_records: int | None = None  # the audit's anchor at this save: its record count ...
    audit_hash: str | None = None  # ... and the hash of its last record


@dataclass
class RunWarning(Event):
    type: ClassVar[str] = "warning"
    message: str
    code: str = ""  # "overfitting", "nan", ...


@dataclass
class Done(Event):
    type: ClassVar[str] = "done"
    reason: str  # "completed" or "stopped"
    elapsed: float
    final_checkpoint: str | None = None
    best_val_loss: float | None = None
    audit_records: int | None = None  # the audit as the run left it (see CheckpointSaved)
    audit_hash: str | None = None
    early_stop: str = ""  # why the run ended before max_iters (saturation, early stopping), if it did


@dataclass
class RunError(Event):
    type: ClassVar[str] = "error"
    message: str
    last_checkpoint: str | None = None


EVENT_TYPES: dict[str, type[Event]] = {c.type: c for c in (
    RunStart, Step, Eval, Probe, Gate, EpochStart, EpochEnd, PhaseStart, CheckpointSaved, RunWarning, Done, RunError)}

Sink = Callable[[Event], None]


def _finite(v: Any) -> Any:
    """JSON has no NaN: a non-finite loss is written as the string "nan"/"inf" (null inside a
    table or list, where no reader converts strings back)."""
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    if isinstance(v, (dict, list)):
        return json_safe(v)
    return v


def json_safe(v: Any) -> Any:
    """A value JSON can hold: a non-finite number nested anywhere becomes null."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: json_safe(x) for k, x in v.items()}
    if isinstance(v, list):
        return [json_safe(x) for x in v]
    return v


def from_dict(d: dict[str, Any]) -> Event:
    """An events.jsonl line back into its dataclass (unknown fields are ignored: newer writers)."""
    if not isinstance(d, dict):
        raise ValueError("an event must be a JSON object")
    cls = EVENT_TYPES.get(d.get("type", ""))
    if cls is None:
        raise ValueError(f"unknown event type {d.get('type')!r}")
    types = {f.name: str(f.type) for f in fields(cls)}
    kw = {k: (float(v) if isinstance(v, str) and "float" in types[k] else v)
          for k, v in d.items() if k in types}
    wrong = [k for k, v in kw.items() if not _fits(v, types[k])]
    if wrong:  # a damaged or forged line: readers compare and sort these values
        raise ValueError(f"event field {wrong[0]!r} has the wrong type")
    return cls(**kw)


_KINDS: dict[str, Callable[[Any], bool]] = {
    "int": lambda v: type(v) is int, "float": lambda v: type(v) in (int, float), "str": lambda v: type(v) is str,
    "bool": lambda v: type(v) is bool, "None": lambda v: v is None, "dict[str, Any]": lambda v: type(v) is dict,
    "list[str]": lambda v: type(v) is list and all(type(x) is str for x in v)}


def _fits(value: Any, annotation: str) -> bool:
    """Whether a value read from a file fits a field's annotation ("int | None", "list[str]"...)."""
    kinds = [a.strip() for a in annotation.split("|")]
    return any(_KINDS.get(k, lambda v: True)(value) for k in kinds)


class JsonlSink:
    """Appends each event as one line and flushes, so a reader can follow the file live."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._fh = open(self.path, "a", encoding="utf-8")

    def __call__(self, event: Event) -> None:
        try:
            self._fh.write(json.dumps(event.to_dict(), ensure_ascii=False) + "\n")
            self._fh.flush()
        except OSError as e:  # a write to an open file names no path: name it (disk full, size limit)
            raise OSError(e.errno, e.strerror, str(self.path)) from e

    def close(self) -> None:
        self._fh.close()


def read_events(path: Path) -> Iterator[Event]:
    """Every complete event in a file (a half-written last line of a live run is skipped)."""
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.endswith("\n"):
                try:
                    yield from_dict(jsonio.loads(line))
                except (ValueError, TypeError):  # a damaged line (JsonError is a ValueError) is skipped
                    continue


class EventFollower:
    """Tails an events.jsonl that another process is writing: `poll()` returns the new events."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._offset = 0
        self._partial = b""

    @property
    def offset(self) -> int:
        """Bytes of the file read so far (a file now shorter was rewritten: follow it afresh)."""
        return self._offset

    def poll(self) -> list[Event]:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self._offset)
                chunk = fh.read()
        except FileNotFoundError:
            return []
        self._offset += len(chunk)
        lines = (self._partial + chunk).split(b"\n")
        self._partial = lines.pop()  # b"" when the chunk ended with a newline
        out = []
        for line in lines:
            try:
                out.append(from_dict(jsonio.loads(line)))
            except (ValueError, TypeError):
                continue
        return out
