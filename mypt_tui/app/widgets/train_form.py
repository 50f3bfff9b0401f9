"""The Train screen's form, the guide's WebUI: Type, Init, Config, Dataset, Output and Flags.

It turns into a `TrainRequest` (`request()`) and back (`fill()`), never into an argv: the
Flags field holds further `mypt train` flags, read by the same flag definitions as the CLI.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Grid
from textual.message import Message
from textual.widgets import Input, Label, Select

from engine.train.job import SCRATCH, TrainRequest
from mypt_tui.flags import parse_train_flags, split_flags, train_argv
from mypt_tui.services.demo import Demo, unique_run_name

SCRATCH_OPTION = ("scratch (random weights)", SCRATCH)
TEXT_FIELDS = ("config", "dataset", "output")


class TrainForm(Grid):
    class Checkpoints(Message):
        """The checkpoints found for Init, from the rescan worker."""

        def __init__(self, names: list[tuple[str, str]]) -> None:
            super().__init__()
            self.names = names

    DEFAULT_CSS = """
    TrainForm { grid-size: 4; grid-columns: 8 1fr 8 1fr; grid-rows: 1; grid-gutter: 0 1;
                height: auto; padding: 0 1; }
    TrainForm Label { color: $text-muted; }
    """

    def __init__(self, demos: dict[str, Demo], root: Path, *, id: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id)
        self.demos = demos
        self.root = root
        self.kind = "chat"
        self._auto_output = ""  # the generated output name, while the user has not typed their own
        self._found_init: list[tuple[str, str]] = []  # checkpoints under the root (rescanned)
        self._pinned_init: list[tuple[str, str]] = []  # a --model the app was opened with

    def compose(self) -> ComposeResult:
        yield Label("Type")
        yield Select([(d.title, k) for k, d in self.demos.items()] or [("Chat SFT", "chat")], value="chat",
                     allow_blank=False, compact=True, id="type")
        yield Label("Init")
        yield Select([SCRATCH_OPTION], value=SCRATCH, allow_blank=False, compact=True, id="init")
        yield Label("Config")
        yield Input(compact=True, id="config", placeholder="a TOML config")
        yield Label("Dataset")
        yield Input(compact=True, id="dataset", placeholder="a prepared dataset folder")
        yield Label("Output")
        yield Input(compact=True, id="output", placeholder="run name (under checkpoints/) or folder")
        yield Label("Flags")
        yield Input(compact=True, id="flags", placeholder="more mypt train flags: --max_iters 50 --resume")

    def value(self, key: str) -> str:
        return self.query_one(f"#{key}", Input).value.strip()

    def set_value(self, key: str, value: str) -> None:
        self.query_one(f"#{key}", Input).value = value

    def focus_field(self, label: str) -> None:
        """Focus the field a problem is about (by its label: Type, Init, Config, ...)."""
        key = label.lower()
        if key in ("type", "init", *TEXT_FIELDS, "flags"):
            self.query_one(f"#{key}").focus()

    # -- request <-> form --------------------------------------------------------------------------

    def request(self) -> TrainRequest:
        """The form as a request; UsageError for a Flags field `mypt train` would reject."""
        req = parse_train_flags(split_flags(self.query_one("#flags", Input).value))
        for key in TEXT_FIELDS:
            if getattr(req, key) is None and self.value(key):
                setattr(req, key, self.value(key))
        if not req.resume and req.model is None and req.init is None:  # a resumed run continues its own weights
            init = self.query_one("#init", Select).value
            if init in (SCRATCH, Select.NULL):
                req.init = SCRATCH
            else:
                req.model = str(init)
        req.checkpoints = str(self.root)
        req.command = ["mypt", "train", *train_argv(req)]
        return req

    def fill(self, req: TrainRequest) -> None:
        """The form as the request describes it (what has no field of its own goes to Flags)."""
        for key in TEXT_FIELDS:
            self.set_value(key, getattr(req, key) or "")
        if req.model:
            self._pinned_init = [(req.model, req.model)]
            self.set_init_options(value=req.model)
        self.set_value("flags", shlex.join(train_argv(req, job_fields=("tokenization",))))

    def fill_for_resume(self, run_dir: Path) -> None:
        """Continue a run from its latest checkpoint: the form shows the run as it was started (its
        run.json and resolved config.toml), under its own name (never replaced by a fresh one)."""
        from engine.layout import CONFIG_FILE
        from engine.runs import read_run_file

        try:
            started = read_run_file(run_dir)
        except (OSError, ValueError):
            started = {}
        config = run_dir / CONFIG_FILE
        for key, value in (("config", str(config) if config.exists() else ""),
                           ("dataset", str(started.get("dataset") or "")), ("output", str(run_dir)),
                           ("flags", "--resume")):
            self.set_value(key, value)
        self._auto_output = ""
        init = str(started.get("init") or SCRATCH)
        if init != SCRATCH:
            self._pinned_init = [(init, init)]
        self.set_init_options(value=init)

    # -- type, init, output --------------------------------------------------------------------------

    def apply_type(self, kind: str) -> None:
        """Chat SFT / Tool SFT: the demo config and dataset of that type, and a fresh run name."""
        demo = self.demos.get(kind)
        if demo is None:
            return
        self.kind = kind
        self.set_value("config", str(demo.config))
        self.set_value("dataset", str(demo.dataset))
        self.new_output()

    def new_output(self) -> None:
        """A fresh default run name (after a start, or a new type)."""
        demo = self.demos.get(self.kind)
        if demo is not None:
            self._auto_output = unique_run_name(demo.run_prefix, self.root)
            self.set_value("output", self._auto_output)

    @property
    def output_is_generated(self) -> bool:
        return bool(self._auto_output)

    @work(thread=True, exclusive=True, exit_on_error=False, group="scan")
    def rescan(self) -> None:
        """List the checkpoints under the root for Init (in a worker: the folder may be large)."""
        from engine.checkpoint import list_checkpoints

        found = list_checkpoints(self.root)
        self.post_message(self.Checkpoints([(c.name + (f" (step {c.step})" if c.step is not None else ""), c.name)
                                            for c in found]))

    def on_train_form_checkpoints(self, message: Checkpoints) -> None:
        self.set_init_options(message.names)

    def set_init_options(self, found: list[tuple[str, str]] | None = None, value: str | None = None) -> None:
        """The Init choices: scratch, the checkpoints found, and one given by `mypt train --model`."""
        select = self.query_one("#init", Select)
        current = value or select.value
        if found is not None:
            self._found_init = found
        extra = [o for o in self._pinned_init if o[1] not in {v for _, v in self._found_init}]
        options = [SCRATCH_OPTION, *self._found_init, *extra]
        with self.prevent(Select.Changed):
            select.set_options(options)
            if current in [v for _, v in options]:
                select.value = current

    @on(Select.Changed, "#type")
    def type_changed(self, event: Select.Changed) -> None:
        if event.value == self.kind:  # the Select announces its first value too; the screen hears the rest
            event.stop()
            return
        self.apply_type(str(event.value))

    @on(Input.Changed, "#output")
    def output_edited(self, event: Input.Changed) -> None:
        if event.value != self._auto_output:
            self._auto_output = ""
